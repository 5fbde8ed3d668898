"""Inboxes: which open tasks a person sees, filtered, sorted and counted, in one indexed query per page.

Reads only the `human_tasks` projection (never a workflow). Who sees what:
- `mine`: tasks assigned to me;
- `group`: unassigned tasks of my role (or of no role) whose case lies in my area, ready to claim;
- `all`: for roles that read everything in their area, every open task there; for the others, every open
  task of their role in their area, whoever holds it, plus their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from . import access, cases, clock, tasks
from .elders import in_area
from .errors import PermissionDenied, ValidationFailed
from .listing import query_args
from .models import Area, Case, Elder, HumanTask, ProcessVersion, Role, TaskStatus, User
from .rules.idnumber import mask_id_number

TOWNSHIP_CODE_LENGTH = 9
DUE_SOON = timedelta(days=2)
PER_PAGE = 50
MAX_PER_PAGE = 200


class Scope(StrEnum):
    MINE = "mine"
    GROUP = "group"
    ALL = "all"


class DueState(StrEnum):
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"  # due within two days
    ON_TIME = "on_time"
    NO_DUE = "no_due"


DUE_LABELS = {
    DueState.OVERDUE: "已逾期",
    DueState.DUE_SOON: "即将到期",
    DueState.ON_TIME: "未到期",
    DueState.NO_DUE: "无期限",
}


class Sort(StrEnum):
    DUE = "due"  # soonest due first, tasks without a deadline last
    NEWEST = "newest"
    OLDEST = "oldest"
    ELDER = "elder"


@dataclass
class InboxFilter:
    """What a person asked the inbox for; every field is optional."""

    scope: Scope = Scope.MINE
    process: str | None = None
    step: str | None = None
    township: str | None = None
    due: DueState | None = None
    q: str | None = None
    sort: Sort = Sort.DUE
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, args) -> InboxFilter:
        """Build a filter from query-string arguments, refusing values that are not allowed."""
        errors = {}

        def choice(name, enum_cls, default):
            value = (args.get(name) or "").strip()
            if not value:
                return default
            try:
                return enum_cls(value)
            except ValueError:
                errors[name] = "不是允许的选项"
                return default

        def number(name, default, upper):
            value = (args.get(name) or "").strip()
            if not value:
                return default
            if not value.isdigit() or not 1 <= int(value) <= upper:
                errors[name] = f"应为 1 到 {upper} 之间的整数"
                return default
            return int(value)

        township = (args.get("township") or "").strip() or None
        if township is not None and not (township.isdigit() and len(township) == TOWNSHIP_CODE_LENGTH):
            errors["township"] = "乡镇代码应为9位数字"
        result = cls(
            scope=choice("scope", Scope, Scope.MINE),
            process=(args.get("process") or "").strip() or None,
            step=(args.get("step") or "").strip() or None,
            township=township,
            due=choice("due", DueState, None),
            q=(args.get("q") or "").strip()[:50] or None,
            sort=choice("sort", Sort, Sort.DUE),
            page=number("page", 1, 100000),
            per_page=number("per_page", PER_PAGE, MAX_PER_PAGE),
        )
        if errors:
            raise ValidationFailed("查询条件有误", field_errors=errors)
        return result

    def as_args(self, **changes) -> dict[str, str]:
        """Query-string arguments for this filter with some fields changed (for links)."""
        values = {
            "scope": self.scope.value,
            "process": self.process,
            "step": self.step,
            "township": self.township,
            "due": self.due.value if self.due else None,
            "q": self.q,
            "sort": self.sort.value if self.sort != Sort.DUE else None,
        }
        values.update(changes)
        return query_args(values)


@dataclass
class InboxRow:
    id: str
    case_id: int
    process_key: str
    process_name: str
    task_spec: str
    name: str
    role: str | None
    area_code: str | None
    area_name: str | None
    elder_id: int | None
    elder_name: str | None
    elder_id_number_masked: str | None
    assignee_id: int | None
    assignee_name: str | None
    due_at: datetime | None
    created_at: datetime
    due_state: DueState


@dataclass
class Facet:
    value: str
    label: str
    count: int
    selected: bool = False


@dataclass
class InboxPage:
    filter: InboxFilter
    rows: list[InboxRow]
    total: int  # rows matching every filter (all pages)
    facets: dict[str, list[Facet]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filter.per_page))


_T = HumanTask.__table__


def _due_state_column(now: datetime):
    return case(
        (_T.c.due_at.is_(None), literal(DueState.NO_DUE.value)),
        (_T.c.due_at < now, literal(DueState.OVERDUE.value)),
        (_T.c.due_at < now + DUE_SOON, literal(DueState.DUE_SOON.value)),
        else_=literal(DueState.ON_TIME.value),
    )


def _area_condition(actor: User):
    cond = in_area(_T.c.area_code, actor.area_code)
    if access.covers(actor, None):  # county-wide people also see tasks of cases with no area
        cond = or_(cond, _T.c.area_code.is_(None))
    return cond


def _scope_condition(actor: User, scope: Scope):
    ready = _T.c.status == TaskStatus.READY.value
    if scope == Scope.MINE:
        return and_(_T.c.assignee_id == actor.id, ready)
    own_role = (
        _T.c.role == actor.role.value
        if access.reads_only_own_cases(actor)  # tasks without a lane are the office's own
        else or_(_T.c.role == actor.role.value, _T.c.role.is_(None))
    )
    if scope == Scope.GROUP:
        if actor.role == Role.AUDITOR:  # auditors read; they never work tasks
            return literal(False)
        return and_(ready, _area_condition(actor), own_role, _T.c.assignee_id.is_(None), _organisation(actor))
    if access.reads_all(actor):
        return and_(ready, _area_condition(actor))
    if access.reads_only_own_cases(actor):
        # Outside staff: their own tasks and their role's unassigned ones, not another organisation's.
        open_to_them = and_(
            _area_condition(actor), own_role, _T.c.assignee_id.is_(None), _organisation(actor)
        )
        return and_(ready, or_(open_to_them, _T.c.assignee_id == actor.id))
    return and_(ready, or_(and_(_area_condition(actor), own_role), _T.c.assignee_id == actor.id))


def _organisation(actor: User):
    """Outside staff of an organisation see the tasks of the cases given to it (or to none yet)."""
    if not access.reads_only_own_cases(actor) or actor.organisation_id is None:
        return literal(True)
    given_to = select(Case.organisation_id).where(Case.id == _T.c.case_id).scalar_subquery()
    return or_(given_to.is_(None), given_to == actor.organisation_id)


def _search_condition(q: str):
    q = "".join(q.split())
    return or_(Elder.name.contains(q, autoescape=True), Elder.id_number.contains(q.upper(), autoescape=True))


def _township_column():
    return func.substr(_T.c.area_code, 1, TOWNSHIP_CODE_LENGTH)


def list_inbox(session: Session, actor: User, flt: InboxFilter) -> InboxPage:
    """One page of the actor's inbox, with counts for every filter value."""
    if not actor.is_active:
        raise PermissionDenied("账号已停用")
    now = clock.now()
    due_state = _due_state_column(now)
    base = [_scope_condition(actor, flt.scope)]
    if flt.q:
        base.append(_search_condition(flt.q))
    filters = []
    if flt.process:
        filters.append(_T.c.process_key == flt.process)
    if flt.step:
        filters.append(_T.c.task_spec == flt.step)
    if flt.township:
        filters.append(in_area(_T.c.area_code, flt.township))
    if flt.due:
        filters.append(due_state == flt.due.value)

    order = {
        Sort.DUE: [_T.c.due_at.asc().nulls_last(), _T.c.created_at.asc()],
        Sort.NEWEST: [_T.c.created_at.desc()],
        Sort.OLDEST: [_T.c.created_at.asc()],
        Sort.ELDER: [Elder.name.asc(), _T.c.created_at.asc()],
    }[flt.sort]
    inner = select(_T.c.id, due_state.label("due_state")).where(*base, *filters)
    if flt.q or flt.sort == Sort.ELDER:
        inner = inner.outerjoin(Elder, Elder.id == _T.c.elder_id)
    inner = inner.order_by(*order, _T.c.id).limit(flt.per_page).offset((flt.page - 1) * flt.per_page)
    page = inner.subquery("page")

    village = aliased(Area)
    assignee = aliased(User)
    process_name = (
        select(ProcessVersion.name)
        .where(ProcessVersion.process_key == _T.c.process_key)
        .order_by(ProcessVersion.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows_query = (
        select(
            _T,
            page.c.due_state,
            process_name.label("process_name"),
            village.name.label("area_name"),
            Elder.name.label("elder_name"),
            Elder.id_number.label("elder_id_number"),
            assignee.display_name.label("assignee_name"),
        )
        .select_from(page)
        .join(_T, _T.c.id == page.c.id)
        .outerjoin(village, village.code == _T.c.area_code)
        .outerjoin(Elder, Elder.id == _T.c.elder_id)
        .outerjoin(assignee, assignee.id == _T.c.assignee_id)
    )
    # The page's own order again (the join does not keep it).
    outer_order = {
        Sort.DUE: [_T.c.due_at.asc().nulls_last(), _T.c.created_at.asc()],
        Sort.NEWEST: [_T.c.created_at.desc()],
        Sort.OLDEST: [_T.c.created_at.asc()],
        Sort.ELDER: [Elder.name.asc(), _T.c.created_at.asc()],
    }[flt.sort]
    rows = [
        InboxRow(
            id=r.id,
            case_id=r.case_id,
            process_key=r.process_key,
            process_name=r.process_name or r.process_key,
            task_spec=r.task_spec,
            name=r.name,
            role=r.role,
            area_code=r.area_code,
            area_name=r.area_name,
            elder_id=r.elder_id,
            elder_name=r.elder_name,
            elder_id_number_masked=mask_id_number(r.elder_id_number) if r.elder_id_number else None,
            assignee_id=r.assignee_id,
            assignee_name=r.assignee_name,
            due_at=r.due_at,
            created_at=r.created_at,
            due_state=DueState(r.due_state),
        )
        for r in session.execute(rows_query.order_by(*outer_order, _T.c.id))
    ]
    facets, total = _facets(session, actor, flt, base, due_state)
    return InboxPage(flt, rows, total, facets)


def _facets(session: Session, actor: User, flt: InboxFilter, base, due_state) -> tuple[dict, int]:
    """Counts per filter value (each counted under the other active filters), and the total."""
    township = _township_column()
    grouped = select(
        _T.c.process_key.label("process"),
        _T.c.task_spec.label("step"),
        func.max(_T.c.name).label("step_name"),
        township.label("township"),
        due_state.label("due"),
        func.count().label("n"),
    ).where(*base)
    if flt.q:
        grouped = grouped.outerjoin(Elder, Elder.id == _T.c.elder_id)
    grouped = grouped.group_by(_T.c.process_key, _T.c.task_spec, township, due_state).subquery("g")
    town = aliased(Area)
    process_name = (
        select(ProcessVersion.name)
        .where(ProcessVersion.process_key == grouped.c.process)
        .order_by(ProcessVersion.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    groups = session.execute(
        select(grouped, process_name.label("process_name"), town.name.label("township_name")).outerjoin(
            town, town.code == grouped.c.township
        )
    ).all()

    chosen = {
        "process": flt.process,
        "step": flt.step,
        "township": flt.township,
        "due": flt.due.value if flt.due else None,
    }

    def matches(g, skip: str | None = None) -> bool:
        for dim, value in chosen.items():
            if dim == skip or value is None:
                continue
            have = getattr(g, dim)
            if dim == "township":
                if not (g.township or "").startswith(value):
                    return False
            elif have != value:
                return False
        return True

    facets: dict[str, list[Facet]] = {}
    for dim in ("process", "step", "township", "due"):
        counts: dict[str, list] = {}
        for g in groups:
            if not matches(g, skip=dim):
                continue
            value = getattr(g, dim) or ""
            label = {
                "process": g.process_name or g.process,
                "step": g.step_name,
                "township": g.township_name or value or "（无辖区）",
                "due": DUE_LABELS[DueState(g.due)] if g.due else "",
            }[dim]
            entry = counts.setdefault(value, [label, 0])
            entry[1] += g.n
        items = [Facet(v, label, n, v == chosen[dim]) for v, (label, n) in counts.items()]
        if dim == "due":
            items.sort(key=lambda f: list(DueState).index(DueState(f.value)))
        else:
            items.sort(key=lambda f: (f.label, f.value))
        facets[dim] = items
    total = sum(g.n for g in groups if matches(g))
    return facets, total


# --------------------------------------------------------------------------------------------------
# One task, as its page shows it


@dataclass
class TaskAccess:
    """What the actor may do with one task."""

    task: HumanTask
    can_work: bool  # complete it (claimed by them, or open to their role)
    can_claim: bool
    can_release: bool
    can_assign: bool


def open_task(session: Session, actor: User, task_id: str) -> TaskAccess:
    """Load a task the actor may see: in their area, of their role or readable by their role, and of a case
    they may read."""
    task = tasks.get_task(session, actor, task_id)  # area check
    if not (
        access.reads_all(actor)
        or task.role is None
        or task.role == actor.role.value
        or task.assignee_id == actor.id
    ):
        raise PermissionDenied("您的角色不能查看此任务")
    cases.require_read(session, actor, session.get(Case, task.case_id))
    ready = task.status == TaskStatus.READY
    workable = ready and access.can_work_task(actor, task)
    return TaskAccess(
        task=task,
        can_work=workable,
        can_claim=workable and task.assignee_id is None,
        can_release=ready
        and task.assignee_id is not None
        and (task.assignee_id == actor.id or access.is_supervisor(actor)),
        can_assign=ready and access.is_supervisor(actor),
    )


def assignable_users(session: Session, actor: User, task: HumanTask) -> list[User]:
    """Colleagues a supervisor may hand a task to: active, of the task's role, covering its area."""
    if not access.is_supervisor(actor):
        raise PermissionDenied("只有审批人或管理员可以改派任务")
    query = select(User).where(User.is_active.is_(True))
    if task.role:
        query = query.where(User.role == Role(task.role))
    given_to = cases.organisation_of(session, task.case_id)
    if given_to is not None and task.role in access.OUTSIDE_ROLES:
        query = query.where(User.organisation_id == given_to)  # never another organisation's staff
    candidates = session.scalars(query.order_by(User.display_name)).all()
    return [u for u in candidates if access.covers(u, task.area_code)]


def case_tasks(session: Session, actor: User, case: Case) -> list[HumanTask]:
    """The open tasks of a case the actor may read (the case itself was checked by the caller)."""
    cases.require_read(session, actor, case)
    return list(
        session.scalars(
            select(HumanTask)
            .where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
            .order_by(HumanTask.created_at, HumanTask.id)
        )
    )
