"""The JSON API under /api: bearer tokens, the same use cases as the pages, errors as
{"message": "<中文>", "field_errors": {...}} with 401/403/404/409/422.

Every route is declared with `operation(...)`, which registers it with Flask *and* describes it in the
OpenAPI document served at /api/openapi.json, so the document cannot drift from the routes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from flask import Blueprint, Response, current_app, g, jsonify, request

from workflows import (
    case_moves,
    cases,
    clock,
    dossiers,
    elders,
    inbox,
    process_drafts,
    registry,
    starting,
    tasks,
    tokens,
    versions,
)
from workflows.engine import DeployError
from workflows.errors import ValidationFailed
from workflows.models import CaseStatus, HumanTask
from workflows.rules.idnumber import mask_id_number
from workflows.rules.phone import mask_phone

from . import forms, studio
from . import openapi as openapi_document
from .database import db

bp = Blueprint("api", __name__, url_prefix="/api")


@dataclass
class Operation:
    rule: str
    method: str
    endpoint: str
    summary: str
    tag: str
    auth: bool
    query: list[dict] = field(default_factory=list)
    body: str | None = None  # a component schema name
    ok: int = 200
    response: str | None = None
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"  # what a 2xx answer is (a PDF view returns its own Response)
    body_media_type: str = "application/json"  # what the request body is (a bundle upload is multipart)


OPERATIONS: list[Operation] = []


def operation(
    rule: str,
    method: str,
    *,
    summary: str,
    tag: str,
    auth: bool = True,
    query=(),
    body=None,
    ok: int = 200,
    response=None,
    errors=(),
    media_type="application/json",
    body_media_type="application/json",
):
    """Declare an API route: registered with Flask and described in the OpenAPI document."""

    def decorate(fn):
        @functools.wraps(fn)
        def view(**kwargs):
            if auth:
                g.api_user = tokens.user_for_token(db(), _bearer())
            result = fn(**kwargs)
            if isinstance(result, Response):  # a file (e.g. a PDF), already built by the view
                return result
            return jsonify(result), ok

        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        # Any operation refuses input no database can store (422, webapp/security.py) and may meet the
        # database away (503 with Retry-After, webapp/database.py).
        codes = set(errors) | ({401} if auth else set()) | {422, 503}
        OPERATIONS.append(
            Operation(
                rule,
                method,
                fn.__name__,
                summary,
                tag,
                auth,
                list(query),
                body,
                ok,
                response,
                tuple(sorted(codes)),
                media_type,
                body_media_type,
            )
        )
        return fn

    return decorate


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def _body() -> dict:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ValidationFailed("请求体应为 JSON 对象", field_errors={"_": "请求体应为 JSON 对象"})
    return payload


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(clock.LOCAL).isoformat(timespec="seconds") if moment else None


def _plain(value):
    """Case data for JSON: amounts stay exact as strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Representations


def task_json(t) -> dict:
    """A task (inbox row or HumanTask) as JSON; elder identifiers masked."""
    out = {
        "id": t.id,
        "case_id": t.case_id,
        "process": t.process_key,
        "step": t.task_spec,
        "name": t.name,
        "role": t.role,
        "area_code": t.area_code,
        "assignee_id": t.assignee_id,
        "due_at": _iso(t.due_at),
        "created_at": _iso(t.created_at),
    }
    if isinstance(t, HumanTask):
        out["status"] = t.status.value
        out["elder_id"] = t.elder_id
    else:
        out.update(
            status="ready",
            elder_id=t.elder_id,
            elder_name=t.elder_name,
            elder_id_number=t.elder_id_number_masked,
            due_state=t.due_state.value,
            process_name=t.process_name,
            area_name=t.area_name,
            assignee_name=t.assignee_name,
        )
    return out


def case_summary(case) -> dict:
    return {
        "id": case.id,
        "process": case.process_key,
        "title": case.title,
        "status": case.status.value,
        "area_code": case.area_code,
        "elder_id": case.elder_id,
        "current_step": case.current_step,
        "started_at": _iso(case.started_at),
        "updated_at": _iso(case.updated_at),
        "ended_at": _iso(case.ended_at),
    }


def elder_json(e) -> dict:
    return {
        "id": e.id,
        "name": e.name,
        "id_number": mask_id_number(e.id_number),
        "phone": mask_phone(e.phone) if e.phone else None,
        "sex": e.sex.value,
        "birth_year": e.birth_date.year,
        "residence_area_code": e.residence_area_code,
        "address": e.address,
        "status": e.status.value,
        "disability_level": e.disability_level.value if e.disability_level else None,
        "flags": [f for f in elders.SUPPORT_FLAGS if getattr(e, f, False)],
    }


# --------------------------------------------------------------------------------------------------
# Routes


@operation(
    "/login",
    "POST",
    summary="登录，换取访问令牌 / sign in for a bearer token",
    tag="auth",
    auth=False,
    body="LoginRequest",
    response="Token",
    errors=(401, 422),
)
def login():
    payload = _body()
    hours = current_app.config["API_TOKEN_HOURS"]
    secret, record = tokens.login(
        db(),
        str(payload.get("username") or ""),
        str(payload.get("password") or ""),
        ttl=timedelta(hours=hours),
        address=request.remote_addr,
    )
    return {"token": secret, "token_type": "Bearer", "expires_at": _iso(record.expires_at)}


@operation("/logout", "POST", summary="注销当前令牌 / revoke this token", tag="auth", response="Message")
def logout():
    tokens.revoke_token(db(), _bearer() or "")
    return {"message": "已注销"}


@operation("/me", "GET", summary="当前用户 / who the token belongs to", tag="auth", response="User")
def me():
    u = g.api_user
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role.value,
        "area_code": u.area_code,
        "locale": u.locale,
    }


_TASK_QUERY = [
    {
        "name": "scope",
        "schema": {"type": "string", "enum": ["mine", "group", "all"], "default": "mine"},
        "description": "mine 分给我的；group 本角色本辖区待认领；all 本辖区全部",
    },
    {"name": "process", "schema": {"type": "string"}},
    {"name": "step", "schema": {"type": "string"}},
    {"name": "township", "schema": {"type": "string", "pattern": "^[0-9]{9}$"}},
    {"name": "due", "schema": {"type": "string", "enum": ["overdue", "due_soon", "on_time", "no_due"]}},
    {"name": "q", "schema": {"type": "string"}, "description": "老人姓名或身份证号片段"},
    {"name": "sort", "schema": {"type": "string", "enum": ["due", "newest", "oldest", "elder"]}},
    {"name": "page", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "schema": {"type": "integer", "minimum": 1, "maximum": inbox.MAX_PER_PAGE}},
]


@operation(
    "/tasks",
    "GET",
    summary="待办任务 / my inbox",
    tag="tasks",
    query=_TASK_QUERY,
    response="TaskList",
    errors=(403, 422),
)
def list_tasks():
    flt = inbox.InboxFilter.parse(request.args)
    page = inbox.list_inbox(db(), g.api_user, flt)
    return {
        "items": [task_json(r) for r in page.rows],
        "total": page.total,
        "page": flt.page,
        "per_page": flt.per_page,
        "counts": {
            dim: [{"value": f.value, "label": f.label, "count": f.count} for f in facets]
            for dim, facets in page.facets.items()
        },
    }


@operation(
    "/tasks/<task_id>",
    "GET",
    summary="任务详情、案件摘要及表单 / a task, its case and its form",
    tag="tasks",
    response="TaskDetail",
    errors=(403, 404),
)
def get_task(task_id: str):
    session = db()
    opened = inbox.open_task(session, g.api_user, task_id)
    step = tasks.form_of(session, opened.task)
    case = cases.get_case(session, g.api_user, opened.task.case_id)
    data = cases.case_data(case)
    if not (opened.can_work or opened.task.assignee_id == g.api_user.id):
        data = dossiers.mask_personal_numbers(data)  # a reader of a task not theirs needs no full numbers
    return {
        "task": task_json(opened.task),
        "case": case_summary(case),
        "form": step.get("form"),
        "ui_form": step.get("ui_form"),
        "instructions": str(forms.render_instructions(step.get("instructions"), data)),
        "can_complete": opened.can_work,
        "can_claim": opened.can_claim,
    }


@operation(
    "/tasks/<task_id>/claim",
    "POST",
    summary="认领任务 / claim",
    tag="tasks",
    response="Task",
    errors=(403, 404, 409),
)
def claim_task(task_id: str):
    return task_json(tasks.claim(db(), g.api_user, task_id))


@operation(
    "/tasks/<task_id>/release",
    "POST",
    summary="释放任务 / release a claim",
    tag="tasks",
    response="Task",
    errors=(403, 404, 409),
)
def release_task(task_id: str):
    return task_json(tasks.release(db(), g.api_user, task_id))


@operation(
    "/tasks/<task_id>/assign",
    "POST",
    summary="改派任务（审批人/管理员） / reassign",
    tag="tasks",
    body="AssignRequest",
    response="Task",
    errors=(403, 404, 409, 422),
)
def assign_task(task_id: str):
    assignee = _body().get("assignee_id")
    if not isinstance(assignee, int):
        raise ValidationFailed("请指定改派对象", field_errors={"assignee_id": "应为用户编号（整数）"})
    return task_json(tasks.assign(db(), g.api_user, task_id, assignee))


@operation(
    "/tasks/<task_id>/complete",
    "POST",
    summary="提交任务表单 / complete a task",
    tag="tasks",
    body="CompleteRequest",
    response="Outcome",
    errors=(403, 404, 409, 422),
)
def complete_task(task_id: str):
    payload = _body()
    data = payload.get("data") or {}
    if not isinstance(data, dict):
        raise ValidationFailed("data 应为 JSON 对象", field_errors={"data": "应为 JSON 对象"})
    comment = payload.get("comment")
    outcome = tasks.complete(db(), g.api_user, task_id, data, comment=str(comment) if comment else None)
    c = outcome.case  # the hot path hands back the case's key columns, not a loaded row
    return {
        "case": {
            "id": c.id,
            "process": c.process_key,
            "status": CaseStatus(c.status).value,
            "area_code": c.area_code,
            "elder_id": c.elder_id,
            "ended_at": _iso(c.ended_at),
        },
        "completed": outcome.completed,
        "next_tasks": [
            {"id": t.id, "step": t.task_spec, "name": t.name, "role": t.role} for t in outcome.new_tasks
        ],
    }


@operation(
    "/cases",
    "POST",
    summary="为老人发起业务 / start a case for an elder",
    tag="cases",
    body="StartCaseRequest",
    ok=201,
    response="CaseDetail",
    errors=(403, 404, 422),
)
def start_case():
    payload = _body()
    process = str(payload.get("process") or "")
    elder_id = payload.get("elder_id")
    data = payload.get("data") or {}
    if not isinstance(data, dict):
        raise ValidationFailed("data 应为 JSON 对象", field_errors={"data": "应为 JSON 对象"})
    if elder_id is None:  # a process not about an elder (its start says so when it needs one)
        started = starting.start_without_elder(
            db(), g.api_user, process, data, comment=payload.get("comment")
        )
    elif isinstance(elder_id, int) and not isinstance(elder_id, bool):
        started = starting.start_for_elder(
            db(), g.api_user, process, elder_id, data, comment=payload.get("comment")
        )
    else:
        raise ValidationFailed("elder_id 应为老人档案编号（整数）", field_errors={"elder_id": "应为整数"})
    return _case_detail(started.case.id)


def _case_detail(case_id: int) -> dict:
    d = dossiers.case_dossier(db(), g.api_user, case_id)
    return {
        **case_summary(d.case),
        "version": d.version,
        "process_name": d.process_name,
        "data": _plain(d.data),
        "open_tasks": [task_json(t) for t in d.open_tasks],
        "events": [
            {
                "seq": e.seq,
                "at": _iso(e.at),
                "actor": e.actor_name,
                "kind": e.kind,
                "task": e.task_name,
                "comment": e.comment,
            }
            for e in d.events
        ],
        "documents": [
            {
                "id": a.id,
                "filename": a.filename,
                "size": a.size,
                "content_type": a.content_type,
                "uploaded_at": _iso(a.uploaded_at),
            }
            for a in d.documents
        ],
    }


@operation(
    "/cases/<int:case_id>",
    "GET",
    summary="案件详情 / a case: status, version, data, tasks, events",
    tag="cases",
    response="CaseDetail",
    errors=(403, 404),
)
def get_case(case_id: int):
    return _case_detail(case_id)


# GET /elders (the list, filtered and paged) is declared in api_lists.


@operation(
    "/elders",
    "POST",
    summary="登记老人 / register an elder",
    tag="elders",
    body="ElderInput",
    ok=201,
    response="Elder",
    errors=(403, 409, 422),
)
def register_elder():
    return elder_json(elders.register_elder(db(), g.api_user, _body()))


@operation(
    "/elders/<int:elder_id>",
    "GET",
    summary="老人档案 / one elder",
    tag="elders",
    response="Elder",
    errors=(403, 404),
)
def get_elder(elder_id: int):
    return elder_json(elders.get_elder(db(), g.api_user, elder_id))


@operation(
    "/processes",
    "GET",
    summary="可用业务流程 / deployed processes (latest versions)",
    tag="processes",
    response="ProcessList",
)
def list_processes():
    return {
        "items": [
            {"key": p.process_key, "name": p.name, "version": p.version, "deployed_at": _iso(p.deployed_at)}
            for p in versions.list_latest(db())
        ]
    }


@operation(
    "/processes",
    "POST",
    summary="部署流程包 / deploy a bundle: several .bpmn/.dmn/.json files or one .zip (multipart), with a comment",
    tag="processes",
    body="DeployRequest",
    body_media_type="multipart/form-data",
    ok=201,
    response="DeployResult",
    errors=(403, 413, 422),
)
def deploy_processes():
    versions.require_editor(g.api_user)
    files = studio.uploaded_bundle()
    try:
        deployed = versions.deploy(
            db(), g.api_user, files, comment=request.form.get("comment") or "", channel="api"
        )
    except DeployError as exc:
        refused = jsonify(
            message="流程有错误，未部署：请按 problems 修正后再上传",
            field_errors={"files": f"{sum(p.severity == 'error' for p in exc.problems)} 个错误"},
            problems=studio.problems_json(exc.problems),
        )
        refused.status_code = 422
        return refused
    main = process_drafts.key_of_bundle(files)
    first = next((d for d in deployed if d.key == main), deployed[0])
    return {
        "key": first.key,
        "version": first.version,
        "deployed": [{"key": d.key, "version": d.version, "created": d.created} for d in deployed],
        "warnings": studio.problems_json({str(w): w for d in deployed for w in d.warnings}.values()),
    }


@operation(
    "/processes/<key>",
    "GET",
    summary="一个流程：各版本，及发起时填写的表单（JSON Schema） / a process: its versions and its start form",
    tag="processes",
    response="ProcessDetail",
    errors=(404,),
)
def get_process(key: str):
    session = db()
    all_versions = versions.versions_of(session, key)
    running = case_moves.counts_by_version(session, key)
    known = registry.current()
    about_elder = known.starter_for(key) is not None
    step = None if known.system_started(key) else starting.first_step(session, g.api_user, key, None)
    return {
        "key": key,
        "name": all_versions[0].name,
        "versions": [
            {
                "version": v.version,
                "content_hash": v.content_hash,
                "deployed_at": _iso(v.deployed_at),
                "comment": v.comment,
                "running_cases": running.get(v.id, 0),
            }
            for v in all_versions
        ],
        "start": {
            "startable": not known.system_started(key),
            "needs_elder": about_elder,
            "step": step.spec_id if step else None,
            "step_name": step.name if step else None,
            "filled_by_starter": bool(step and step.for_actor),
            "schema": step.form if step else None,
            "ui_schema": step.ui_form if step else None,
        },
    }


@operation("/openapi.json", "GET", summary="本接口的 OpenAPI 3 文档 / this document", tag="meta", auth=False)
def openapi():
    return openapi_document.document(OPERATIONS)
