"""What the case and elder pages (and the API) show, gathered and checked for role and area in one place.

Reads projections and the audit trail; the engine is asked only for the diagram's completed steps.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import access, attachments, cases, elders, engine, matching, processes, tasks
from .errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from .models import (
    Assessment,
    Case,
    CaseEvent,
    CaseStatus,
    Elder,
    HumanTask,
    ProcessVersion,
    Role,
    TaskStatus,
    User,
)
from .models.attachments import Attachment
from .rules import catalogue as catalogue_rules
from .rules.idnumber import mask_id_number
from .rules.phone import mask_phone

# Who may start a case for an elder from the web or the API.
START_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ADMIN})


@dataclass
class ElderSummary:
    """An elder as shown beside a case or task: identifiers masked."""

    id: int
    name: str
    id_number_masked: str
    phone_masked: str | None
    sex: str
    age: int
    area_path: str
    address: str
    flags: list[str]
    disability_level: str | None
    status: str


def summarize_elder(session: Session, elder: Elder) -> ElderSummary:
    day = elders.today()
    level = elder.current_disability_level(day)
    return ElderSummary(
        id=elder.id,
        name=elder.name,
        id_number_masked=mask_id_number(elder.id_number),
        phone_masked=mask_phone(elder.phone) if elder.phone else None,
        sex=elder.sex.value,
        age=elder.age_on(day),
        area_path=elders.area_path(session, elder.residence_area_code),
        address=elder.address,
        flags=[f for f in elders.SUPPORT_FLAGS if getattr(elder, f, False)],
        disability_level=level.value if level else None,
        status=elder.status.value,
    )


def case_elder(session: Session, actor: User, case: Case) -> ElderSummary | None:
    """The elder of a case the actor may read, masked (providers see it through the case, not the register)."""
    if not access.can_read_case(actor, case.area_code):
        raise PermissionDenied("无权查看其他辖区的案件")
    elder = session.get(Elder, case.elder_id) if case.elder_id else None
    return summarize_elder(session, elder) if elder else None


@dataclass
class EventView:
    seq: int
    at: object
    actor_name: str | None
    kind: str
    task_name: str | None
    comment: str | None
    detail: dict


@dataclass
class CaseLink:
    id: int
    title: str
    process_key: str
    status: str
    relation: str  # parent / child / same_elder
    started_at: object


@dataclass
class CaseDossier:
    case: Case
    version: int
    process_name: str
    data: dict
    elder: ElderSummary | None
    open_tasks: list[HumanTask]
    events: list[EventView]
    documents: list[Attachment]
    related: list[CaseLink]
    started_by: str | None
    can_comment: bool
    forms: list[dict] = field(default_factory=list)  # the version's step forms, to label the data


def _names(session: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def case_dossier(session: Session, actor: User, case_id: int) -> CaseDossier:
    """Everything the case page shows, if the actor may read the case."""
    case = cases.get_case(session, actor, case_id)
    version = session.get(ProcessVersion, case.process_version_id)
    events = list(
        session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq))
    )
    names = _names(session, [e.actor_id for e in events] + [case.started_by])
    elder = session.get(Elder, case.elder_id) if case.elder_id else None
    related_query = (
        select(Case)
        .where(
            Case.id != case.id,
            or_(
                Case.id == case.parent_case_id if case.parent_case_id else False,
                Case.parent_case_id == case.id,
                Case.elder_id == case.elder_id if case.elder_id else False,
            ),
        )
        .order_by(Case.started_at.desc())
        .limit(50)
    )
    related = []
    for other in session.scalars(related_query):
        if not access.can_read_case(actor, other.area_code):
            continue
        relation = (
            "parent"
            if other.id == case.parent_case_id
            else "child"
            if other.parent_case_id == case.id
            else "same_elder"
        )
        related.append(
            CaseLink(other.id, other.title, other.process_key, other.status.value, relation, other.started_at)
        )
    return CaseDossier(
        case=case,
        version=version.version,
        process_name=version.name,
        data=cases.case_data(case),
        elder=summarize_elder(session, elder) if elder else None,
        open_tasks=list(
            session.scalars(
                select(HumanTask)
                .where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
                .order_by(HumanTask.created_at, HumanTask.id)
            )
        ),
        events=[
            EventView(
                e.seq,
                e.at,
                names.get(e.actor_id),
                e.kind.value,
                e.task_name,
                e.comment,
                json.loads(e.detail or "{}"),
            )
            for e in events
        ],
        documents=attachments.list_attachments(session, actor, case.id),
        related=related,
        started_by=names.get(case.started_by),
        can_comment=actor.role != Role.AUDITOR,
        forms=[step["form"] for step in cases.runtime_of(session, case).steps.values() if step.get("form")],
    )


@dataclass
class Diagram:
    xml: str
    completed: list[str]
    current: list[str]


def case_diagram(session: Session, actor: User, case_id: int) -> Diagram:
    """The case's BPMN diagram with the steps passed and the steps open now."""
    case = cases.get_case(session, actor, case_id)
    sources = json.loads(
        session.scalar(select(ProcessVersion.sources).where(ProcessVersion.id == case.process_version_id))
        or "{}"
    )
    pattern = re.compile(r"<(?:\w+:)?process\b[^>]*\bid=\"" + re.escape(case.process_key) + '"')
    bpmn = [text for name, text in sources.items() if name.lower().endswith(".bpmn")]
    xml = next((text for text in bpmn if pattern.search(text)), bpmn[0] if bpmn else "")
    current = sorted(
        set(
            session.scalars(
                select(HumanTask.task_spec).where(
                    HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY
                )
            )
        )
    )
    try:
        completed = cases.completed_steps(session, case)
    except Exception:  # noqa: BLE001 - a diagram that cannot be restored still shows, unmarked
        completed = []
    return Diagram(xml, [s for s in completed if s not in current], current)


# --------------------------------------------------------------------------------------------------
# Elders


@dataclass
class MatchView:
    number: int
    name: str
    reason: str
    amount: Decimal | None
    amount_kind: str
    period: str | None
    status: str
    status_label: str
    note: str | None


@dataclass
class ElderDossier:
    elder: Elder
    summary: ElderSummary
    contacts: list[dict]
    matches: list[MatchView]
    catalogue_title: str | None
    matching_error: str | None
    cases: list[Case]
    visits: list[Case]
    assessments: list[Assessment]
    can_start: bool


def _matches(session: Session, elder: Elder, day: date) -> tuple[list[MatchView], str | None]:
    """Catalogue items for the elder (政策找人), from the catalogue in force in the elder's jurisdiction."""
    found = matching.match_for_elder(session, elder, on=day)
    return [_match_view(m) for m in found.matches], found.catalogue.title


def _match_view(m) -> MatchView:
    item = getattr(m, "item", None)
    status = getattr(m, "status", "")
    return MatchView(
        number=getattr(item, "number", getattr(m, "number", 0)),
        name=(item.title if item is not None else getattr(m, "name", ""))
        + (f"（{m.part}）" if getattr(m, "part", None) else ""),
        reason=getattr(m, "reason", ""),
        amount=getattr(m, "amount", None),
        amount_kind=str(getattr(getattr(m, "amount_kind", ""), "value", getattr(m, "amount_kind", ""))),
        period=getattr(m, "period", None),
        status=str(getattr(status, "value", status)),
        status_label=getattr(status, "label", str(status)),
        note=getattr(m, "note", None),
    )


def elder_dossier(session: Session, actor: User, elder_id: int) -> ElderDossier:
    """Everything the elder page shows, if the actor may read the elder's record."""
    elder = elders.get_elder(session, actor, elder_id)
    day = elders.today()
    try:
        matches, title = _matches(session, elder, day)
        error = None
    except (catalogue_rules.CatalogueError, DomainError, ValueError) as exc:
        matches, title, error = [], None, str(exc)
    all_cases = [
        c
        for c in session.scalars(
            select(Case).where(Case.elder_id == elder.id).order_by(Case.started_at.desc())
        )
        if access.can_read_case(actor, c.area_code)
    ]
    visits = [c for c in all_cases if "visit" in c.process_key]
    return ElderDossier(
        elder=elder,
        summary=summarize_elder(session, elder),
        contacts=[
            {**c, "phone": mask_phone(c["phone"]) if c.get("phone") else ""} for c in elder.contact_list()
        ],
        matches=matches,
        catalogue_title=title,
        matching_error=error,
        cases=[c for c in all_cases if c not in visits],
        visits=visits,
        assessments=list(
            session.scalars(
                select(Assessment)
                .where(Assessment.elder_id == elder.id)
                .order_by(Assessment.assessed_on.desc())
            )
        ),
        can_start=actor.role in START_ROLES,
    )


# --------------------------------------------------------------------------------------------------
# Starting a case for an elder


def require_starter(actor: User) -> None:
    if not actor.is_active or actor.role not in START_ROLES:
        raise PermissionDenied("您的角色不能发起业务申请")


def startable_processes(session: Session, actor: User) -> list[ProcessVersion]:
    require_starter(actor)
    return processes.list_latest(session)


@dataclass
class FirstStep:
    """The step a new case stops at first, and whether the person starting it fills it in."""

    spec_id: str
    name: str
    role: str | None
    form: dict | None
    ui_form: dict | None
    instructions: str | None
    for_actor: bool


def first_step(session: Session, actor: User, process_key: str, elder: Elder) -> FirstStep | None:
    """Run a new instance in memory only (nothing is stored) to find the step a case starts at."""
    version = processes.latest(session, process_key)
    runtime = processes.runtime_of(session, version)
    seed = {"case_area_code": elder.residence_area_code, "elder_id": elder.id}
    try:
        steps = engine.Instance.start(runtime.spec, seed).human_steps()
    except (engine.ScriptError, engine.EngineError):
        return None
    if not steps:
        return None
    step = steps[0]
    info = runtime.steps.get(step.spec_id, {})
    role = access.role_for_lane(step.lane)
    return FirstStep(
        spec_id=step.spec_id,
        name=step.name,
        role=role,
        form=info.get("form"),
        ui_form=info.get("ui_form"),
        instructions=info.get("instructions"),
        for_actor=role is None or role == actor.role.value,
    )


@dataclass
class Started:
    case: Case
    completed_first: bool
    next_tasks: list[cases.NewTask] = field(default_factory=list)


def start_for_elder(
    session: Session,
    actor: User,
    process_key: str,
    elder_id: int,
    data: dict | None = None,
    *,
    comment: str | None = None,
) -> Started:
    """Start a case for an elder in the elder's area; if its first step is the starter's, complete it with
    `data` at once (a form error then undoes the start, in the caller's transaction)."""
    require_starter(actor)
    if not process_key:
        raise ValidationFailed("请选择业务流程", field_errors={"process": "请选择业务流程"})
    elder = elders.get_elder(session, actor, elder_id)
    version = processes.latest(session, process_key)
    data = dict(data or {})
    case = cases.start_case(
        session,
        actor,
        process_key,
        area_code=elder.residence_area_code,
        elder_id=elder.id,
        data=data,
        title=f"{version.name}（{elders.mask_name(elder.name)}）",
    )
    ready = [t for t in tasks.ready_tasks(session, case.id) if access.can_work_task(actor, t)]
    if not ready:
        return Started(case, False)
    outcome = tasks.complete(session, actor, ready[0].id, data, comment=comment)
    return Started(case, True, outcome.new_tasks)


def form_errors(schema: dict | None, data: dict) -> dict[str, str]:
    """Check data against a step's JSON Schema: {field path: Chinese message}."""
    return engine.validate_form(schema, data)


def find_elder(session: Session, actor: User, elder_id: int) -> Elder:
    elder = session.get(Elder, elder_id)
    if elder is None:
        raise NotFound("老人档案不存在")
    return elders.get_elder(session, actor, elder_id)


def case_status_label(status: CaseStatus | str) -> str:
    return {"running": "办理中", "completed": "已办结", "cancelled": "已终止", "error": "出错"}.get(
        str(status), str(status)
    )
