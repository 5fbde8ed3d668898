"""What the case and elder pages (and the API) show, gathered and checked for role and area in one place.

Reads projections and the audit trail; the engine is asked only for the diagram's completed steps.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import (
    access,
    adaptation,
    assessments,
    attachments,
    cases,
    config,
    elders,
    engine,
    home_care,
    matching,
    processes,
    tasks,
    visiting,
    waitlist,
)
from .errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from .models import (
    Area,
    AreaLevel,
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
from .models.base import is_row_id
from .models.elders import SUPPORT_FLAGS
from .rules import catalogue as catalogue_rules
from .rules.assessment import AssessmentReason
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
    cases.require_read(session, actor, case)
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
    data = cases.case_data(case)
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
        if not cases.may_read(session, actor, other):
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
        data=mask_personal_numbers(data),
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
        forms=[
            _people_named(session, data),
            *([application] if (application := _application_form(session, actor, case.process_key)) else []),
            *(step["form"] for step in cases.runtime_of(session, case).steps.values() if step.get("form")),
            COMPUTED_DATA,
        ],
    )


def mask_personal_numbers(value):
    """Case data for reading: phone and ID numbers masked, like the elder's own on every summary.

    The case page and the case API only show the record; the task pages, where someone has to call or
    check a number, show it whole.
    """
    if isinstance(value, dict):
        return {key: _masked(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_personal_numbers(item) for item in value]
    return value


def _masked(key, value):
    if isinstance(value, str) and isinstance(key, str) and value:
        if key.endswith("phone"):
            return mask_phone(value)
        if key.endswith("id_number"):
            return mask_id_number(value)
    return mask_personal_numbers(value)


# Titles of the facts the shipped processes work out themselves (no form writes them), for the case page.
COMPUTED_DATA = {
    "type": "object",
    "properties": {
        "applied_on": {"title": "申请日期"},
        "household_label": {"title": "困难类别"},
        "disability_level_label": {"title": "能力等级"},
        "assessment_valid_until": {"title": "评估有效期至"},
        "eligibility_reason": {"title": "资格审核结果"},
        "total": {"title": "能力评估总分"},
        "monthly_quota": {"title": "月度服务额度（元）"},
        "month_label": {"title": "服务月份"},
        "request_note": {"title": "申请说明"},
    },
}


def _people_named(session: Session, data: dict) -> dict:
    """Labels for the accounts a case's data names by id (the provider dispatched, those that declined)."""
    ids = [data.get("provider_id"), *(data.get("declined_providers") or [])]
    names = _names(session, [i for i in ids if isinstance(i, int) and not isinstance(i, bool)])
    if not names:
        return {}
    choices = [{"const": user_id, "title": name} for user_id, name in names.items()]
    return {
        "type": "object",
        "properties": {
            "provider_id": {"title": "服务机构", "oneOf": choices},
            "declined_providers": {"title": "已拒单或未响应的服务机构", "items": {"oneOf": choices}},
        },
    }


def _application_form(session: Session, actor: User, process_key: str) -> dict | None:
    """The application form a case of this process was started with, if it has a starter's own."""
    starter = STARTERS.get(process_key)
    try:
        return starter.form(session, actor) if starter is not None else None
    except DomainError:  # e.g. the admission form reads a version this reader cannot: label without it
        return None


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
    open_steps = set(
        session.scalars(
            select(HumanTask.task_spec).where(
                HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY
            )
        )
    )
    # A step open inside a called process (the assessment a home-care case calls) is not in this diagram:
    # mark the call activity that runs it instead.
    steps = cases.runtime_of(session, case).steps
    calls = _call_activities(xml)
    marked = set()
    for spec in open_steps:
        process_id = steps.get(spec, {}).get("process_id") or case.process_key
        marked.add(spec if process_id == case.process_key else calls.get(process_id, spec))
    try:
        completed = cases.completed_steps(session, case)
        marked.update(cases.waiting_steps(session, case))
    except Exception:  # noqa: BLE001 - a diagram that cannot be restored still shows, unmarked
        completed = []
    current = sorted(marked)
    return Diagram(xml, [s for s in completed if s not in current], current)


def _call_activities(xml: str) -> dict[str, str]:
    """{called process id: call activity id} of a diagram's call activities."""
    found = {}
    for tag in re.findall(r"<(?:\w+:)?callActivity\b[^>]*>", xml):
        element = re.search(r'\bid="([^"]+)"', tag)
        called = re.search(r'\bcalledElement="([^"]+)"', tag)
        if element and called:
            found.setdefault(called.group(1), element.group(1))
    return found


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
#
# A process whose start has rules of its own (one running application per elder, the register's facts,
# a facility to choose) is started through its use case, with the application form that use case takes.
# Any other deployed process starts generically: run to its first step and, when that step is the
# starter's, complete it with the submitted form.


@dataclass(frozen=True)
class Starter:
    """How the pages and the API start one process for an elder: the use case and the form it takes."""

    title: str  # the form's heading on the start page
    roles: frozenset[Role]
    start: Callable[[Session, User, Elder, dict], Case]
    form: Callable[[Session, User], dict | None] = lambda session, actor: None
    instructions: str | None = None
    check: Callable[[dict], dict[str, str]] | None = None  # the use case's own field checks, to show at once


def _shipped_form(relative: str) -> dict:
    """A form file shipped under bpmn/ that no diagram step references (an application form)."""
    return json.loads((config.bpmn_dir() / relative).read_text(encoding="utf-8"))


def _start_home_care(session: Session, actor: User, elder: Elder, data: dict) -> Case:
    return home_care.apply_home_care(session, actor, elder.id, data)


def _home_care_check(data: dict) -> dict[str, str]:
    return home_care.clean_application(data)[1]


# What waitlist.apply takes from the register itself: not the applicant's to state on the form.
_ADMISSION_REGISTER_FIELDS = frozenset(
    {
        "elder_age",
        "hukou_type",
        "tekun",
        "dibao",
        "near_dibao",
        "disability_level",
        "entitled_veteran_family",
        "family_planning_special",
    }
)


def _admission_form(session: Session, actor: User) -> dict | None:
    """The admission diagram's application form, without the register's facts, facilities to choose from."""
    step = processes.runtime_of(session, processes.latest(session, waitlist.PROCESS_KEY)).steps.get(
        "application"
    )
    schema = copy.deepcopy((step or {}).get("form") or {})
    if not schema:
        return None
    props = {
        k: v
        for k, v in (schema.get("properties") or {}).items()
        if k not in _ADMISSION_REGISTER_FIELDS and v.get("format") != "data-url"  # uploads: on the case page
    }
    if "facility_id" in props:
        facilities = waitlist.list_facilities(session, actor)
        props["facility_id"] = {**props["facility_id"], "title": "申请入住的公办养老机构"}
        if facilities:
            props["facility_id"]["oneOf"] = [{"const": f.id, "title": f.name} for f in facilities]
    schema["properties"] = props
    schema["required"] = [k for k in schema.get("required") or [] if k in props]
    return schema


def _start_admission(session: Session, actor: User, elder: Elder, data: dict) -> Case:
    answers = dict(data)
    facility_id = answers.pop("facility_id", None)
    if not is_row_id(facility_id):
        message = "请选择申请入住的养老机构"
        raise ValidationFailed(message, field_errors={"facility_id": message})
    return waitlist.apply(session, actor, elder.id, facility_id, answers)


def _start_adaptation(session: Session, actor: User, elder: Elder, data: dict) -> Case:
    return adaptation.start_application(session, actor, elder.id)


_VISITING_FORM = {
    "title": "登记探访关爱对象",
    "type": "object",
    "properties": {
        "note": {"title": "摸排情况说明（居住、身体、家庭照料情况）", "type": "string", "maxLength": 500},
    },
}


def _start_visiting(session: Session, actor: User, elder: Elder, data: dict) -> Case:
    return visiting.enrol_visiting_care(session, actor, elder.id, str(data.get("note") or ""))


_ASSESSMENT_FORM = {
    "title": "申请能力评估",
    "type": "object",
    "required": ["reason"],
    "properties": {
        "reason": {
            "title": "评估类型",
            "type": "string",
            "oneOf": [{"const": r.value, "title": r.label} for r in AssessmentReason],
        },
        "note": {"title": "申请说明", "type": "string", "maxLength": 500},
    },
}


def _start_assessment(session: Session, actor: User, elder: Elder, data: dict) -> Case:
    return assessments.request_assessment(
        session,
        actor,
        elder.id,
        data.get("reason") or AssessmentReason.INITIAL,
        note=str(data.get("note") or ""),
    )


STARTERS: dict[str, Starter] = {
    home_care.PROCESS_KEY: Starter(
        title="居家养老服务申请",
        roles=home_care.APPLY_ROLES,
        start=_start_home_care,
        form=lambda session, actor: _shipped_form("home_care/forms/home_care_application.json"),
        instructions="请核实老人身份证件和困难证明后填写。提交后系统核对困难类别；无有效能力评估的，转评估员入户评估。",
        check=_home_care_check,
    ),
    waitlist.PROCESS_KEY: Starter(
        title="公办养老机构入住申请",
        roles=frozenset(waitlist.APPLY_ROLES),
        start=_start_admission,
        form=_admission_form,
        instructions="户籍、困难类别和能力等级取自老人档案；请当面核实以下情况后受理。",
    ),
    adaptation.PROCESS_KEY: Starter(
        title="家庭适老化改造申请",
        roles=frozenset(adaptation.START_ROLES),
        start=_start_adaptation,
        instructions="发起后按老人档案预填申请表，请在下一步核对并补充材料。",
    ),
    visiting.PROCESS_KEY: Starter(
        title="登记探访关爱对象",
        roles=visiting.ENROL_ROLES,
        start=_start_visiting,
        form=lambda session, actor: _VISITING_FORM,
        instructions="提交后由乡镇经办人审核纳入，并确定探访频次。",
    ),
    assessments.PROCESS_KEY: Starter(
        title="申请能力评估",
        roles=assessments.REQUEST_ROLES,
        start=_start_assessment,
        form=lambda session, actor: _ASSESSMENT_FORM,
    ),
}
# Opened by the background jobs from an enrolment, one short case per period; never by hand.
SYSTEM_STARTED = frozenset({home_care.MONTH_PROCESS_KEY, visiting.VISIT_PROCESS_KEY})


def require_starter(actor: User) -> None:
    if not actor.is_active or actor.role not in START_ROLES:
        raise PermissionDenied("您的角色不能发起业务申请")


def startable_processes(session: Session, actor: User) -> list[ProcessVersion]:
    """The deployed processes this person may start for an elder."""
    require_starter(actor)
    return [
        version
        for version in processes.list_latest(session)
        if version.process_key not in SYSTEM_STARTED
        and (version.process_key not in STARTERS or actor.role in STARTERS[version.process_key].roles)
    ]


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
    """The form a new case starts with: its starter's application form, else its first step's."""
    starter = STARTERS.get(process_key)
    if starter is not None:
        return FirstStep(
            spec_id="application",
            name=starter.title,
            role=None,
            form=starter.form(session, actor),
            ui_form=None,
            instructions=starter.instructions,
            for_actor=actor.role in starter.roles,
        )
    # Run a new instance in memory only (nothing is stored) to find the step a case starts at.
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
    """Start a case for an elder in the elder's area: through the process's starter with its application
    form, or else generically, completing the first step with `data` when it is the starter's (a form
    error then undoes the start, in the caller's transaction)."""
    require_starter(actor)
    if not process_key:
        raise ValidationFailed("请选择业务流程", field_errors={"process": "请选择业务流程"})
    if process_key in SYSTEM_STARTED:
        raise ValidationFailed(
            "该业务由系统按服务周期自动发起，不能手工发起", field_errors={"process": "不能手工发起"}
        )
    elder = elders.get_elder(session, actor, elder_id)
    data = dict(data or {})
    starter = STARTERS.get(process_key)
    if starter is not None:
        return _start_with(session, actor, starter, elder, data, comment)
    version = processes.latest(session, process_key)
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


def _start_with(
    session: Session, actor: User, starter: Starter, elder: Elder, data: dict, comment: str | None
) -> Started:
    if actor.role not in starter.roles:
        raise PermissionDenied(f"您的角色不能发起{starter.title}")
    schema = starter.form(session, actor)
    if schema:
        errors = {**form_errors(schema, data), **(starter.check(data) if starter.check else {})}
        if errors:
            raise ValidationFailed("表单填写有误，请按提示修改", field_errors=errors)
    else:
        data = {}
    case = starter.start(session, actor, elder, data)
    if comment:
        attachments.add_comment(session, actor, case.id, comment)
    ready = sorted(tasks.ready_tasks(session, case.id), key=lambda t: (t.created_at, t.id))
    return Started(case, True, [cases.NewTask(t.id, t.task_spec, t.name, t.role) for t in ready])


# --------------------------------------------------------------------------------------------------
# Step forms with choices only the case knows


def _provider_options(session: Session, case: Case) -> list[tuple[int, str]]:
    return [(u.id, u.display_name) for u in home_care.provider_choices(session, case)]


@dataclass(frozen=True)
class Choices:
    """The valid values of one form field for one case, as (value, label), and the field's title as a list."""

    options: Callable[[Session, Case], list[tuple[object, str]]]
    title: str | None = None


# Per (process, step): {field: its choices}. The stored form keeps a plain field (the step's own checks
# refuse a wrong value from every caller); the page offers the valid ones as a list.
_CHOICES: dict[tuple[str, str], dict[str, Choices]] = {
    (home_care.PROCESS_KEY, "dispatch_provider"): {"provider_id": Choices(_provider_options, "服务机构")},
}


def step_form(session: Session, actor: User, task: HumanTask) -> dict:
    """A task's step (name, form, instructions) with the choices its form can only have for this case."""
    if not access.covers(actor, task.area_code):
        raise PermissionDenied("无权访问其他辖区的任务")
    step = tasks.form_of(session, task)
    case = session.get(Case, task.case_id)
    fill = _CHOICES.get((step.get("process_id") or case.process_key, task.task_spec))
    if not fill or not step.get("form"):
        return step
    form = copy.deepcopy(step["form"])
    for key, choices in fill.items():
        prop = (form.get("properties") or {}).get(key)
        if prop is None:
            continue
        options = choices.options(session, case)
        if options:
            prop["oneOf"] = [{"const": value, "title": label} for value, label in options]
            if choices.title:
                prop["title"] = choices.title
        else:
            prop["description"] = "当前没有可选的项目，请联系县民政局。"
    return {**step, "form": form}


# --------------------------------------------------------------------------------------------------
# Registering an elder from a form


# The support flags are one group on the form; the register takes them as top-level fields.
SUPPORT_GROUP = "support"


def registration_villages(session: Session, actor: User) -> list[Area]:
    """The villages (communities) inside the actor's area, where the actor may register an elder."""
    elders.require_role(actor, elders.WRITE_ROLES, "登记老人")
    return list(
        session.scalars(
            select(Area)
            .where(Area.level == AreaLevel.VILLAGE, elders.in_area(Area.code, actor.area_code))
            .order_by(Area.code)
        )
    )


def registration_form(session: Session, actor: User) -> tuple[dict, dict]:
    """The register's fields as a JSON Schema form (Chinese titles) and its UI hints."""
    villages = registration_villages(session, actor)
    label = elders.FIELD_LABELS
    text = {"type": "string"}
    township_names = {
        a.code: a.name for a in session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP))
    }
    schema = {
        "title": "登记老人",
        "type": "object",
        "required": ["id_number", "name", "hukou_type", "residence_area_code", "living_arrangement"],
        "properties": {
            "id_number": {
                **text,
                "title": label["id_number"],
                "maxLength": 18,
                "description": "18位居民身份证号；出生日期、性别和年龄按身份证号计算，须年满60周岁",
            },
            "name": {**text, "title": label["name"], "maxLength": 32},
            "phone": {
                **text,
                "title": label["phone"],
                "maxLength": 20,
                "description": "手机或座机，如 0391-6123456",
            },
            "hukou_type": {
                **text,
                "title": label["hukou_type"],
                "oneOf": [{"const": k.value, "title": v} for k, v in elders.HUKOU_LABELS.items()],
            },
            "residence_area_code": {
                **text,
                "title": label["residence_area_code"],
                "oneOf": [
                    {"const": v.code, "title": f"{township_names.get(v.parent_code, '')}{v.name}"}
                    for v in villages
                ],
            },
            "address": {**text, "title": label["address"], "maxLength": 100, "description": "如 3组25号"},
            "living_arrangement": {
                **text,
                "title": label["living_arrangement"],
                "oneOf": [{"const": k.value, "title": v} for k, v in elders.LIVING_LABELS.items()],
            },
            SUPPORT_GROUP: {
                "title": "救助与特殊困难情况（符合的请勾选）",
                "type": "object",
                "properties": {flag: {"type": "boolean", "title": label[flag]} for flag in SUPPORT_FLAGS},
            },
            "severe_handicap_grade": {
                "type": "integer",
                "title": label["severe_handicap_grade"] + "（重度残疾时填写）",
                "oneOf": [
                    {"const": n, "title": f"{c}级"} for n, c in ((1, "一"), (2, "二"), (3, "三"), (4, "四"))
                ],
            },
            "guardian_name": {**text, "title": label["guardian_name"], "maxLength": 32},
            "guardian_phone": {**text, "title": label["guardian_phone"], "maxLength": 20},
            "contacts": {
                "title": "其他联系人（子女、亲属）",
                "type": "array",
                "items": {
                    "title": "联系人",
                    "type": "object",
                    "properties": {
                        "name": {**text, "title": "姓名", "maxLength": 32},
                        "relation": {**text, "title": "关系", "maxLength": 16},
                        "phone": {**text, "title": "电话", "maxLength": 20},
                    },
                },
            },
        },
    }
    ui = {SUPPORT_GROUP: {flag: {"ui:widget": "checkbox"} for flag in SUPPORT_FLAGS}}
    return schema, ui


def register_from_form(session: Session, actor: User, data: dict) -> Elder:
    """Register an elder from the registration form's data; field errors come back under the form's paths."""
    values = {k: v for k, v in data.items() if k != SUPPORT_GROUP}
    values.update(data.get(SUPPORT_GROUP) or {})
    try:
        return elders.register_elder(session, actor, values)
    except ValidationFailed as exc:
        exc.field_errors = {
            (f"{SUPPORT_GROUP}.{key}" if key in SUPPORT_FLAGS else key): message
            for key, message in exc.field_errors.items()
        }
        raise


def can_read_elder(session: Session, actor: User, elder_id: int) -> bool:
    """Whether the actor may open an elder's file (to link to it, e.g. from a duplicate's refusal)."""
    elder = session.get(Elder, elder_id)
    return (
        elder is not None
        and actor.is_active
        and actor.role in elders.READ_ROLES
        and access.covers(actor, elder.residence_area_code)
    )


def form_errors(schema: dict | None, data: dict) -> dict[str, str]:
    """Check data against a step's JSON Schema: {field path: Chinese message}."""
    return engine.validate_form(schema, data)


def find_elder(session: Session, actor: User, elder_id: int) -> Elder:
    elder = session.get(Elder, elder_id) if is_row_id(elder_id) else None
    if elder is None:
        raise NotFound("老人档案不存在")
    return elders.get_elder(session, actor, elder_id)


def case_status_label(status: CaseStatus | str) -> str:
    return {"running": "办理中", "completed": "已办结", "cancelled": "已终止", "error": "出错"}.get(
        str(status), str(status)
    )
