"""What the case, task and elder pages (and the API) show, gathered and checked for role and area in one
place. Reads projections and the audit trail; the engine is asked only for the diagram's completed steps.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import access, attachments, cases, clock, elders, matching, registry, starting, tasks
from .errors import DomainError, PermissionDenied
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
    day = clock.today()
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
            *([application] if (application := _application_form(session, actor, case, version)) else []),
            *(step["form"] for step in cases.runtime_of(session, case).steps.values() if step.get("form")),
            *registry.current().data_labels(session, data),
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


def _application_form(session: Session, actor: User, case: Case, version: ProcessVersion) -> dict | None:
    """The application form a case of this process was started with, if its starter has one."""
    try:
        return starting.application_form(session, actor, case.process_key, version)
    except DomainError:  # e.g. the admission form reads facilities this reader cannot: label without it
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
    day = clock.today()
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
    known = registry.current()
    visits = [c for c in all_cases if (p := known.get(c.process_key)) is not None and p.listed_as == "visits"]
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
        can_start=actor.role in starting.START_ROLES,
    )


# --------------------------------------------------------------------------------------------------
# Step forms with choices only the case knows


def step_form(session: Session, actor: User, task: HumanTask) -> dict:
    """A task's step (name, form, instructions) with the choices its form can only have for this case."""
    if not access.covers(actor, task.area_code):
        raise PermissionDenied("无权访问其他辖区的任务")
    step = tasks.form_of(session, task)
    case = session.get(Case, task.case_id)
    fill = registry.current().choices_for(step.get("process_id") or case.process_key, task.task_spec)
    if not fill or not step.get("form"):
        return step
    form = copy.deepcopy(step["form"])
    for key, choices in fill.items():
        prop = form
        for part in key.split("."):  # a field inside a group of the form: "self_care.eating"
            prop = (prop.get("properties") or {}).get(part) if isinstance(prop, dict) else None
        if prop is None:
            continue
        options = choices.options(session, case)
        if options:
            prop["oneOf"] = [{"const": value, "title": label} for value, label in options]
            if choices.title:
                prop["title"] = choices.title
            if choices.widget:
                prop["x-widget"] = choices.widget
        else:
            prop["description"] = "当前没有可选的项目，请联系县民政局。"
    return {**step, "form": form}


def case_status_label(status: CaseStatus | str) -> str:
    return {"running": "办理中", "completed": "已办结", "cancelled": "已终止", "error": "出错"}.get(
        str(status), str(status)
    )
