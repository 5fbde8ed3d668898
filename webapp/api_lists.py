"""The lists in the API: cases and elders with the pages' filters, `page`/`per_page` and `total`, and the
dashboard's figures. Declared with `api.operation`, so the OpenAPI document describes them."""

from __future__ import annotations

from flask import g, request

from workflows import caselist, dashboard, elderlist, elders
from workflows.listing import MAX_PER_PAGE, Args

from .api import _iso, operation
from .database import db

_PAGING = [
    {"name": "page", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}},
]
_CASE_QUERY = [
    {"name": "process", "schema": {"type": "string"}, "description": "业务流程标识"},
    {
        "name": "version",
        "schema": {"type": "integer", "minimum": 1},
        "description": "流程版本（须同时指定 process）",
    },
    {"name": "status", "schema": {"type": "string", "enum": ["running", "completed", "cancelled", "error"]}},
    {"name": "step", "schema": {"type": "string"}, "description": "当前环节（任务标识）"},
    {"name": "area", "schema": {"type": "string", "pattern": "^([0-9]{6}|[0-9]{9}|[0-9]{12})$"}},
    {
        "name": "overdue",
        "schema": {"type": "integer", "enum": [0, 1]},
        "description": "1：只看有逾期任务的案件",
    },
    {"name": "overdue_role", "schema": {"type": "string"}, "description": "逾期任务所属角色"},
    {"name": "started_from", "schema": {"type": "string", "format": "date"}},
    {"name": "started_to", "schema": {"type": "string", "format": "date"}},
    {"name": "ended_from", "schema": {"type": "string", "format": "date"}},
    {"name": "ended_to", "schema": {"type": "string", "format": "date"}},
    {"name": "elder", "schema": {"type": "integer", "minimum": 1}, "description": "老人档案编号"},
    {"name": "q", "schema": {"type": "string"}, "description": "老人姓名、身份证号片段或 #案件号"},
    {"name": "sort", "schema": {"type": "string", "enum": [s.value for s in caselist.CaseSort]}},
    *_PAGING,
]


def case_row_json(r: caselist.CaseRow) -> dict:
    return {
        "id": r.id,
        "process": r.process_key,
        "process_name": r.process_name,
        "version": r.version,
        "title": r.title,
        "status": r.status.value,
        "current_step": r.current_step,
        "area_code": r.area_code,
        "area_name": r.area_name,
        "elder_id": r.elder_id,
        "elder_name": r.elder_name,
        "elder_id_number": r.elder_id_number_masked,
        "started_at": _iso(r.started_at),
        "updated_at": _iso(r.updated_at),
        "ended_at": _iso(r.ended_at),
        "overdue": r.overdue,
        "next_due_at": _iso(r.next_due_at),
    }


@operation(
    "/cases",
    "GET",
    summary="案件列表（筛选、分页、总数） / cases in my area, filtered and paged",
    tag="cases",
    query=_CASE_QUERY,
    response="CaseList",
    errors=(403, 422),
)
def list_cases():
    session = db()
    flt = caselist.CaseFilter.parse(request.args)
    caselist.check_filter_against(caselist.options(session, g.api_user), flt)
    page = caselist.list_cases(session, g.api_user, flt)
    return {
        "items": [case_row_json(r) for r in page.rows],
        "total": page.total,
        "page": flt.page,
        "per_page": flt.per_page,
        "pages": page.pages,
    }


ELDER_QUERY = [
    {"name": "q", "schema": {"type": "string"}, "description": "姓名或身份证号片段"},
    {"name": "area", "schema": {"type": "string", "pattern": "^([0-9]{6}|[0-9]{9}|[0-9]{12})$"}},
    {
        "name": "flag",
        "schema": {"type": "array", "items": {"type": "string", "enum": list(elders.SUPPORT_FLAGS)}},
        "style": "form",
        "explode": True,
        "description": "类别（可多选，须同时满足）",
    },
    {
        "name": "level",
        "schema": {
            "type": "array",
            "items": {"type": "string", "enum": ["intact", "mild", "moderate", "severe", "complete", "none"]},
        },
        "style": "form",
        "explode": True,
        "description": "当前有效评估的失能等级（可多选）；none 为无有效评估",
    },
    {
        "name": "expiring",
        "schema": {"type": "integer", "minimum": 0, "maximum": 366},
        "description": "评估在N天内到期",
    },
    {"name": "status", "schema": {"type": "string", "enum": ["active", "deceased", "moved_away"]}},
    {"name": "sort", "schema": {"type": "string", "enum": [s.value for s in elderlist.ElderSort]}},
    *_PAGING,
    {
        "name": "limit",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "description": "同 per_page（旧参数）",
    },
]


def elder_row_json(r: elderlist.ElderRow) -> dict:
    """An elder of the list as JSON, as `GET /api/elders/{id}` shows one: identifiers masked."""
    return {
        "id": r.id,
        "name": r.name,
        "id_number": r.id_number_masked,
        "phone": r.phone_masked,
        "sex": r.sex,
        "birth_year": r.birth_date.year,
        "age": r.age,
        "residence_area_code": r.area_code,
        "area_path": r.area_path,
        "address": r.address,
        "status": r.status,
        "disability_level": r.disability_level,
        "assessment_valid_until": r.assessment_valid_until.isoformat() if r.assessment_valid_until else None,
        "flags": r.flags,
    }


@operation(
    "/elders",
    "GET",
    summary="老人档案列表（筛选、分页、总数） / elders in my area, filtered and paged",
    tag="elders",
    query=ELDER_QUERY,
    response="ElderList",
    errors=(403, 422),
)
def list_elders():
    args = request.args
    if "limit" in args and "per_page" not in args:  # the older parameter name
        args = args.copy()
        args["per_page"] = args["limit"]
    flt = elderlist.ElderFilter.parse(args)
    page = elderlist.list_elders(db(), g.api_user, flt)
    return {
        "items": [elder_row_json(r) for r in page.rows],
        "total": page.total,
        "page": flt.page,
        "per_page": flt.per_page,
        "pages": page.pages,
    }


@operation(
    "/dashboard",
    "GET",
    summary="统计看板数据 / the dashboard's figures for an area and month",
    tag="supervision",
    query=[
        {"name": "area", "schema": {"type": "string", "pattern": "^([0-9]{6}|[0-9]{9}|[0-9]{12})$"}},
        {"name": "month", "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}},
    ],
    response="Dashboard",
    errors=(403, 422),
)
def get_dashboard():
    a = Args(request.args)
    area = a.area("area")
    month = a.month("month")
    a.check()
    board = dashboard.build(db(), g.api_user, area, month)
    rate = lambda value: None if value is None else str(value)  # noqa: E731  (exact, as amounts are)
    return {
        "area": board.area,
        "area_name": board.area_name,
        "month": board.month.strftime("%Y-%m"),
        "open_cases": [
            {
                "process": p.process_key,
                "name": p.name,
                "running": p.running,
                "steps": [{"step": s.task_spec, "name": s.name, "open_tasks": s.open_tasks} for s in p.steps],
            }
            for p in board.open_cases
        ],
        "overdue": [{"township": o.township, "role": o.role, "count": o.count} for o in board.overdue],
        "visit_rates": {
            kind: {
                "start": rates.start.isoformat(),
                "end": rates.end.isoformat(),
                "due": rates.total.due,
                "visited": rates.total.visited,
                "rate": rate(rates.total.rate),
                "parts": [
                    {
                        "area": p.area_code,
                        "name": p.area_name,
                        "due": p.due,
                        "visited": p.visited,
                        "rate": rate(p.rate),
                    }
                    for p in rates.parts
                ],
            }
            for kind, rates in (("monthly", board.month_visits), ("weekly_home_support", board.week_visits))
        },
        "waitlist": [
            {"tier": t.tier.value, "waiting": t.waiting, "average_wait_days": rate(t.average_wait_days)}
            for t in board.waitlist
        ],
        "services": [
            {"type": f.key, "count": f.count, "amount": str(f.amount), "elders": f.elders}
            for f in board.services.by_type
        ],
        "adaptation": {
            "year": board.adaptation.year,
            "done_this_year": board.adaptation.done_this_year,
            "subsidy_this_year": str(board.adaptation.subsidy_this_year),
            "yearly_target": board.adaptation.yearly_target,
            "done_in_plan": board.adaptation.done_in_plan,
            "plan_target": board.adaptation.plan_target,
        },
        "assessments": {
            "by_level": board.assessments.by_level,
            "expiring_30_days": board.assessments.expiring,
        },
        "institutional_support_rate": rate(board.institutional.rate),
        "occupancy_rate": rate(board.occupancy.rate),
        "targets": {key: str(t.value) for key, t in board.targets.items()},
    }
