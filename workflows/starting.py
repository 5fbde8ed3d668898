"""Starting a case for an elder, from a page or the API.

A process whose start has rules of its own (one running application per elder, the register's facts, a
facility to choose) declares a `Starter`: its use case and the application form it takes, deployed with
each version. Any other deployed process starts generically: it runs to its first step and, when that step
is the starter's, the submitted form completes it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from . import access, attachments, cases, elders, registry, submissions, tasks, versions
from .engine import EngineError, ScriptError
from .errors import PermissionDenied, ValidationFailed
from .models import Case, Elder, ProcessVersion, Role, User

# Who may start a case for an elder from the web or the API.
START_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ADMIN})


def require_starter(actor: User) -> None:
    if not actor.is_active or actor.role not in START_ROLES:
        raise PermissionDenied("您的角色不能发起业务申请")


def startable_processes(session: Session, actor: User) -> list[ProcessVersion]:
    """The deployed processes this person may start for an elder."""
    require_starter(actor)
    known = registry.current()
    return [
        version
        for version in versions.list_latest(session)
        if not known.system_started(version.process_key)
        and ((starter := known.starter_for(version.process_key)) is None or actor.role in starter.roles)
    ]


def application_form(
    session: Session, actor: User, process_key: str, version: ProcessVersion | None = None
) -> dict | None:
    """The application form a process's starter takes (from the given or the latest version), with the
    choices only the system knows filled in; None when its starter takes no form."""
    starter = registry.current().starter_for(process_key)
    if starter is None or not starter.form:
        return None
    version = version or versions.latest(session, process_key)
    schema = versions.runtime_of(session, version).form(session, starter.form)
    if schema is None:
        return None
    return starter.fill(session, actor, copy.deepcopy(schema)) if starter.fill else schema


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


def first_step(session: Session, actor: User, process_key: str, elder: Elder | None) -> FirstStep | None:
    """The form a new case starts with: its starter's application form, else its first step's."""
    starter = registry.current().starter_for(process_key)
    if starter is not None:
        return FirstStep(
            spec_id="application",
            name=starter.title,
            role=None,
            form=application_form(session, actor, process_key),
            ui_form=None,
            instructions=starter.instructions,
            for_actor=actor.role in starter.roles,
        )
    # Run a new instance in memory only (nothing is stored) to find the step a case starts at.
    runtime = versions.runtime_of(session, versions.latest(session, process_key))
    seed = (
        {"case_area_code": elder.residence_area_code, "elder_id": elder.id}
        if elder is not None
        else {"case_area_code": actor.area_code}
    )
    try:
        steps = runtime.start(seed).human_steps()
    except (ScriptError, EngineError):
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
    input_errors: dict[str, str] | None = None,
) -> Started:
    """Start a case for an elder in the elder's area: through the process's starter with its application
    form, or else generically, completing the first step with `data` when it is the starter's (a form
    error then undoes the start, in the caller's transaction)."""
    require_starter(actor)
    if not process_key:
        raise ValidationFailed("请选择业务流程", field_errors={"process": "请选择业务流程"})
    known = registry.current()
    if known.system_started(process_key):
        raise ValidationFailed(
            "该业务由系统按服务周期自动发起，不能手工发起", field_errors={"process": "不能手工发起"}
        )
    elder = elders.get_elder(session, actor, elder_id)
    data = dict(data or {})
    starter = known.starter_for(process_key)
    if starter is not None:
        return _start_with(session, actor, process_key, starter, elder, data, comment, input_errors)
    return _start_generic(session, actor, process_key, elder, data, comment, input_errors)


def start_without_elder(
    session: Session,
    actor: User,
    process_key: str,
    data: dict | None = None,
    *,
    comment: str | None = None,
    input_errors: dict[str, str] | None = None,
) -> Started:
    """Start a process that is not about an elder (a county's own, or a model from another tool) in the
    actor's area, completing its first step with `data` when that step is the actor's."""
    if not actor.is_active or actor.role not in START_ROLES | {Role.PROCESS_OWNER}:
        raise PermissionDenied("您的角色不能发起业务")
    known = registry.current()
    if known.system_started(process_key):
        raise ValidationFailed(
            "该业务由系统按服务周期自动发起，不能手工发起", field_errors={"process": "不能手工发起"}
        )
    if known.starter_for(process_key) is not None:
        raise ValidationFailed("该业务须为老人发起，请指定老人", field_errors={"elder_id": "请指定老人"})
    return _start_generic(session, actor, process_key, None, dict(data or {}), comment, input_errors)


def _start_generic(
    session: Session,
    actor: User,
    process_key: str,
    elder: Elder | None,
    data: dict,
    comment: str | None,
    input_errors: dict[str, str] | None,
) -> Started:
    version = versions.latest(session, process_key)
    case = cases.start_case(
        session,
        actor,
        process_key,
        area_code=elder.residence_area_code if elder is not None else actor.area_code,
        elder_id=elder.id if elder is not None else None,
        data=data,
        title=f"{version.name}（{elders.mask_name(elder.name)}）" if elder is not None else version.name,
    )
    ready = [t for t in tasks.ready_tasks(session, case.id) if access.can_work_task(actor, t)]
    if not ready:
        if input_errors:
            raise ValidationFailed("表单填写有误，请按提示修改", field_errors=input_errors)
        return Started(case, False)
    outcome = tasks.complete(session, actor, ready[0].id, data, comment=comment, input_errors=input_errors)
    return Started(case, True, outcome.new_tasks)


def _start_with(
    session: Session,
    actor: User,
    process_key: str,
    starter: registry.Starter,
    elder: Elder,
    data: dict,
    comment: str | None,
    input_errors: dict[str, str] | None,
) -> Started:
    if actor.role not in starter.roles:
        raise PermissionDenied(f"您的角色不能发起{starter.title}")
    schema = application_form(session, actor, process_key)
    if schema:
        submissions.check_application(schema, data, starter, input_errors)
    else:
        data = {}
    case = starter.start(session, actor, elder, data)
    if comment:
        attachments.add_comment(session, actor, case.id, comment)
    ready = sorted(tasks.ready_tasks(session, case.id), key=lambda t: (t.created_at, t.id))
    return Started(case, True, [cases.NewTask(t.id, t.task_spec, t.name, t.role) for t in ready])
