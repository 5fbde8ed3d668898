"""The dashboard, the lists behind its figures, the monthly report, and the elder list's export."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, render_template, request, url_for

from casefiles import workbooks
from workflows import calendars, clock, dashboard, elderlist, elders, exports, monthly_report, visit_rates
from workflows.clock import month_end
from workflows.listing import MAX_EXPORT_ROWS, PER_PAGE, Args, Column, Table
from workflows.models.admission import Tier
from workflows.rules.care import SIX_HELPS
from workflows.rules.care import VISIT_FREQUENCIES as FREQUENCIES
from workflows.rules.idnumber import mask_id_number

from .auth import me
from .database import db
from .downloads import xlsx_response
from .i18n import _, label

bp = Blueprint("supervision", __name__)


def _area_and_month(args) -> tuple[str | None, date]:
    a = Args(args)
    area = a.area("area")
    month = a.month("month", clock.today().replace(day=1))
    a.check()
    return area, month


def _month_arg(month: date) -> str:
    return month.strftime("%Y-%m")


@bp.get("/dashboard")
def dashboard_page():
    area, month = _area_and_month(request.args)
    board = dashboard.build_recent(db(), me(), area, month, max_age=_max_age())
    return render_template(
        "supervision/dashboard.html",
        d=board,
        month_arg=_month_arg(board.month),
        months=dashboard.months_back(board.today, 13),
        charts=_charts(board),
        level_order=["intact", "mild", "moderate", "severe", "complete", "none"],
        # Deadlines on the board are counted in working days: say when the calendar lacks a year.
        calendar_warnings=calendars.warnings(db()),
    )


def _max_age() -> float:
    """How old the dashboard's figures may be (seconds; DASHBOARD_MAX_AGE, default 60; 0: counted afresh)."""
    return float(current_app.config.get("DASHBOARD_MAX_AGE", 60))


def _rate_pct(value) -> float | None:
    return None if value is None else round(float(value) * 100, 1)


def _charts(board: dashboard.Dashboard) -> dict:
    """What the dashboard's charts draw, with the link behind every bar (read by static/dashboard.js)."""
    area = board.area
    month = _month_arg(board.month)
    first, last = board.month, month_end(board.month)
    week_start, week_end = board.week_visits.start, board.week_visits.end
    return {
        "open": {
            "title": _("在办案件"),
            "labels": [p.name for p in board.open_cases],
            "values": [p.running for p in board.open_cases],
            "links": [
                url_for("caselist.case_list", process=p.process_key, status="running", area=area)
                for p in board.open_cases
            ],
        },
        "overdue": {
            "title": _("逾期任务"),
            "labels": [
                f"{o.township_name} · {label('role', o.role) if o.role else _('未分角色')}"
                for o in board.overdue
            ],
            "values": [o.count for o in board.overdue],
            "links": [
                url_for(
                    "caselist.case_list",
                    area=o.township or area,
                    overdue=1,
                    **({"overdue_role": o.role} if o.role else {}),
                )
                for o in board.overdue
            ],
        },
        "visits": {
            "title": _("月探访率（%）"),
            "labels": [p.area_name for p in board.month_visits.parts],
            "values": [_rate_pct(p.rate) for p in board.month_visits.parts],
            "links": [
                url_for("supervision.visits", area=p.area_code, period="month", month=month)
                for p in board.month_visits.parts
            ],
            "target": _rate_pct(board.targets["monthly_visit_rate"].value),
            "percent": True,
        },
        "weekly": {
            "title": _("分散供养特困周探访率（%）"),
            "labels": [p.area_name for p in board.week_visits.parts],
            "values": [_rate_pct(p.rate) for p in board.week_visits.parts],
            "links": [
                url_for("supervision.visits", area=p.area_code, period="week", week=week_start.isoformat())
                for p in board.week_visits.parts
            ],
            "target": _rate_pct(board.targets["weekly_visit_rate_home_support"].value),
            "percent": True,
        },
        "services": {
            "title": _("“六助”服务次数"),
            "labels": [f.label for f in board.services.by_type],
            "values": [f.count for f in board.services.by_type],
            "links": [
                url_for("supervision.services", area=area, month=month, type=f.key)
                for f in board.services.by_type
            ],
        },
        "levels": {
            "title": _("能力评估等级（人）"),
            "labels": [
                label("level", k) if k != "none" else _("无有效评估") for k in board.assessments.by_level
            ],
            "values": list(board.assessments.by_level.values()),
            "links": [
                url_for("elders.elder_list", area=area if len(area) > 6 else None, level=k, status="active")
                for k in board.assessments.by_level
            ],
        },
        "period": {
            "month": [first.isoformat(), last.isoformat()],
            "week": [week_start.isoformat(), week_end.isoformat()],
        },
    }


@bp.get("/dashboard.xlsx")
def dashboard_export():
    area, month = _area_and_month(request.args)
    session = db()
    board = dashboard.build(session, me(), area, month)
    tables = exports.dashboard_tables(session, me(), board)
    return xlsx_response(workbooks.render(tables), f"统计看板-{board.area_name}")


# --------------------------------------------------------------------------------------------------
# The lists behind the figures


def _page_args():
    a = Args(request.args)
    page = a.number("page", 1, 1, 100_000)
    a.check()
    return page


def _figure_page(
    table: Table, *, back: str, export: str, heading: str, intro: str = "", endpoint: str, args: dict
):
    return render_template(
        "supervision/figure_list.html",
        table=table,
        back=back,
        export=export,
        heading=heading,
        intro=intro,
        endpoint=endpoint,
        args=args,
        can_open_elders=me().role in elders.READ_ROLES,
    )


def _visit_period(args) -> tuple[str, date, date, str | None, bool]:
    a = Args(args)
    area = a.area("area")
    period = a.text("period") or "month"
    if period not in ("month", "week"):
        a.errors["period"] = "应为 month 或 week"
        period = "month"
    today = clock.today()
    if period == "month":
        first = a.month("month", today.replace(day=1))
        start, end = first, month_end(first)
    else:
        day = a.day("week") or today
        start, end = visit_rates.week_of(day)
    a.check()
    return period, start, end, area, period == "week"


@bp.get("/dashboard/visits")
def visits():
    session = db()
    period, start, end, area, weekly = _visit_period(request.args)
    scope = dashboard.scope_of(me(), area)
    page = _page_args()
    found, total = visit_rates.unvisited(
        session, scope, start, end, home_support_only=weekly, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    rates = visit_rates.period_rates(session, scope, start, end, kind=period, home_support_only=weekly)
    paths = elderlist.area_paths(session, [r.area_code for r in found])
    today = clock.today()
    left = visit_rates.working_days(max(today, start), end) if today <= end else 0
    table = Table(
        _("未探访名单"),
        [
            Column("name", _("姓名"), "elder"),
            Column("id_number", _("身份证号")),
            Column("area", _("村(社区)")),
            Column("last", _("上次探访"), "date"),
            Column("frequency", _("探访频次")),
        ],
        [
            {
                "name": r.name,
                "elder_id": r.elder_id,
                "id_number": mask_id_number(r.id_number),
                "area": paths.get(r.area_code, r.area_code),
                "last": r.last_visited_on,
                "frequency": FREQUENCIES.get(r.frequency, r.frequency),
            }
            for r in found
        ],
        total,
        page=page,
    )
    kind = _("分散供养特困周探访") if weekly else _("月探访")
    intro = _(
        "{kind}：{start} 至 {end}，应探访 {due} 人，已探访 {seen} 人，未探访 {missing} 人；本期剩余工作日 {left} 天。",
        kind=kind,
        start=start.isoformat(),
        end=end.isoformat(),
        due=rates.total.due,
        seen=rates.total.visited,
        missing=rates.total.due - rates.total.visited,
        left=left if left is not None else "—",
    )
    args = {
        "area": scope,
        "period": period,
        **({"week": start.isoformat()} if weekly else {"month": _month_arg(start)}),
    }
    return _figure_page(
        table,
        back=url_for("supervision.dashboard_page", area=scope),
        export=url_for("supervision.visits_export", **args),
        heading=_("未探访名单") + f" · {rates.total.area_name}",
        intro=intro,
        endpoint="supervision.visits",
        args=args,
    )


@bp.get("/dashboard/visits.xlsx")
def visits_export():
    session = db()
    period, start, end, area, weekly = _visit_period(request.args)
    scope = dashboard.scope_of(me(), area)
    table = exports.unvisited_table(session, me(), scope, start, end, home_support_only=weekly)
    return xlsx_response(workbooks.render([table]), "未探访名单")


def _waitlist_args():
    a = Args(request.args)
    area = a.area("area")
    tier = a.choice("tier", Tier)
    a.check()
    return area, tier


def _waitlist_table(export: bool, page: int = 1) -> tuple[Table, dict]:
    session = db()
    area, tier = _waitlist_args()
    limit = MAX_EXPORT_ROWS if export else PER_PAGE
    lines, total = dashboard.waitlist_lines(
        session, me(), area, tier, limit=limit, offset=0 if export else (page - 1) * PER_PAGE
    )
    ident = (lambda n: exports.id_number(me(), n)) if export else mask_id_number
    columns = [
        Column("case", _("案件号"), "case"),
        Column("name", _("姓名"), "elder"),
        Column("id_number", _("身份证号")),
        Column("facility", _("养老机构")),
        Column("tier", _("轮候类别")),
        Column("applied_at", _("申请时间"), "datetime"),
        Column("waited", _("已等待（天）"), "number"),
        Column("status", _("状态")),
    ]
    rows = [
        {
            "case": x.case_id,
            "case_id": x.case_id,
            "name": x.elder_name,
            "elder_id": x.elder_id,
            "id_number": ident(x.id_number),
            "facility": x.facility,
            "tier": x.tier_label,
            "applied_at": x.applied_at,
            "waited": x.waited_days,
            "status": x.status,
        }
        for x in lines
    ]
    args = {k: v for k, v in {"area": area, "tier": tier.value if tier else None}.items() if v}
    return Table(_("轮候名单"), columns, rows, total, page=page), args


@bp.get("/dashboard/waitlist")
def waitlist():
    page = _page_args()
    table, args = _waitlist_table(False, page)
    return _figure_page(
        table,
        back=url_for("supervision.dashboard_page", area=args.get("area")),
        export=url_for("supervision.waitlist_export", **args),
        heading=_("公办养老机构轮候名单"),
        intro=_("按申请时间排列；“已等待”自申请之日起计。"),
        endpoint="supervision.waitlist",
        args=args,
    )


@bp.get("/dashboard/waitlist.xlsx")
def waitlist_export():
    table, args = _waitlist_table(True)
    table = exports.figure_table(db(), me(), _("轮候名单"), table.columns, table.rows, table.total, args)
    return xlsx_response(workbooks.render([table]), "轮候名单")


def _services_table(export: bool, page: int = 1) -> tuple[Table, dict, str]:
    a = Args(request.args)
    area = a.area("area")
    month = a.month("month", clock.today().replace(day=1))
    kind = a.text("type")
    if kind is not None and kind not in SIX_HELPS:
        a.errors["type"] = "不是“六助”服务类别"
    provider = a.row_id("provider")
    a.check()
    records = dashboard.service_records(db(), me(), area, month, service_type=kind, provider_id=provider)
    ident = (lambda n: exports.id_number(me(), n)) if export else mask_id_number
    shown = records if export else records[(page - 1) * PER_PAGE : page * PER_PAGE]
    columns = [
        Column("date", _("服务日期")),
        Column("type", _("服务类别")),
        Column("name", _("老人"), "elder"),
        Column("id_number", _("身份证号")),
        Column("provider", _("服务机构")),
        Column("minutes", _("时长（分钟）"), "number"),
        Column("amount", _("金额（元）"), "amount"),
        Column("staff", _("服务人员")),
        Column("case", _("案件号"), "case"),
    ]
    rows = [
        {
            "date": r.service_date,
            "type": r.service_type,
            "name": r.elder_name,
            "elder_id": r.elder_id,
            "id_number": ident(r.id_number),
            "provider": r.provider,
            "minutes": r.minutes,
            "amount": r.amount,
            "staff": r.staff_name,
            "case": r.case_id,
            "case_id": r.case_id,
        }
        for r in shown
    ]
    args = {
        k: v
        for k, v in {"area": area, "month": _month_arg(month), "type": kind, "provider": provider}.items()
        if v
    }
    what = SIX_HELPS.get(kind or "", _("全部类别"))
    return (
        Table(_("服务记录"), columns, rows, len(records), page=page),
        args,
        f"{month.year}-{month.month:02d} · {what}",
    )


@bp.get("/dashboard/services")
def services():
    page = _page_args()
    table, args, what = _services_table(False, page)
    return _figure_page(
        table,
        back=url_for("supervision.dashboard_page", area=args.get("area"), month=args.get("month")),
        export=url_for("supervision.services_export", **args),
        heading=_("居家上门服务记录") + f" · {what}",
        endpoint="supervision.services",
        args=args,
    )


@bp.get("/dashboard/services.xlsx")
def services_export():
    table, args, _what = _services_table(True)
    table = exports.figure_table(db(), me(), _("服务记录"), table.columns, table.rows, table.total, args)
    return xlsx_response(workbooks.render([table]), "服务记录")


def _adaptation_table(export: bool, page: int = 1) -> tuple[Table, dict]:
    a = Args(request.args)
    area = a.area("area")
    this_year = clock.today().year
    first = a.number("from_year", this_year, 2000, 2100)
    last = a.number("to_year", this_year, 2000, 2100)
    if first > last:
        a.errors["to_year"] = "截止年份不能早于起始年份"
    a.check()
    found = dashboard.adaptation_households(db(), me(), area, first, last)
    ident = (lambda n: exports.id_number(me(), n)) if export else mask_id_number
    shown = found if export else found[(page - 1) * PER_PAGE : page * PER_PAGE]
    columns = [
        Column("case", _("案件号"), "case"),
        Column("name", _("老人"), "elder"),
        Column("id_number", _("身份证号")),
        Column("ended_at", _("完成时间"), "datetime"),
        Column("paid_on", _("拨付日期")),
        Column("paid", _("补助金额（元）"), "amount"),
    ]
    rows = [
        {
            "case": h.case_id,
            "case_id": h.case_id,
            "name": h.elder_name,
            "elder_id": h.elder_id,
            "id_number": ident(h.id_number),
            "ended_at": h.ended_at,
            "paid_on": h.paid_on,
            "paid": h.paid_amount,
        }
        for h in shown
    ]
    args = {k: v for k, v in {"area": area, "from_year": first, "to_year": last}.items() if v}
    return Table(_("适老化改造完成户"), columns, rows, len(found), page=page), args


@bp.get("/dashboard/adaptations")
def adaptations():
    page = _page_args()
    table, args = _adaptation_table(False, page)
    return _figure_page(
        table,
        back=url_for("supervision.dashboard_page", area=args.get("area")),
        export=url_for("supervision.adaptations_export", **args),
        heading=_("家庭适老化改造完成户（{a}—{b}年）", a=args["from_year"], b=args["to_year"]),
        intro=_("已验收并拨付补助的改造户。"),
        endpoint="supervision.adaptations",
        args=args,
    )


@bp.get("/dashboard/adaptations.xlsx")
def adaptations_export():
    table, args = _adaptation_table(True)
    table = exports.figure_table(
        db(), me(), _("适老化改造完成户"), table.columns, table.rows, table.total, args
    )
    return xlsx_response(workbooks.render([table]), "适老化改造完成户")


def _facility_table() -> tuple[Table, dict]:
    a = Args(request.args)
    area = a.area("area")
    a.check()
    scope = dashboard.scope_of(me(), area)
    lines = dashboard.facility_lines(db(), scope)
    columns = [
        Column("name", _("养老机构")),
        Column("beds", _("床位（张）"), "number"),
        Column("vacant", _("登记空床（张）"), "number"),
        Column("occupied", _("在住（推算）"), "number"),
        Column("rate", _("入住率"), "rate"),
    ]
    rows = [
        {"name": f.name, "beds": f.beds, "vacant": f.vacant, "occupied": f.occupied, "rate": f.rate}
        for f in lines
    ]
    return Table(_("公办养老机构入住"), columns, rows, len(rows), per_page=max(1, len(rows))), {"area": scope}


@bp.get("/dashboard/facilities")
def facilities():
    table, args = _facility_table()
    return _figure_page(
        table,
        back=url_for("supervision.dashboard_page", area=args["area"]),
        export=url_for("supervision.facilities_export", **args),
        heading=_("公办养老机构入住率"),
        intro=_("在住人数按床位减去机构登记的空床推算。"),
        endpoint="supervision.facilities",
        args=args,
    )


@bp.get("/dashboard/facilities.xlsx")
def facilities_export():
    table, args = _facility_table()
    table = exports.figure_table(
        db(), me(), _("公办养老机构入住"), table.columns, table.rows, table.total, args
    )
    return xlsx_response(workbooks.render([table]), "公办养老机构入住")


# --------------------------------------------------------------------------------------------------
# The monthly report and the elder list's export


@bp.get("/reports/monthly")
def monthly():
    area, month = _area_and_month(request.args)
    session = db()
    report = monthly_report.build(session, me(), area, month)
    return render_template(
        "supervision/monthly.html",
        report=report,
        month_arg=_month_arg(report.month),
        months=dashboard.months_back(clock.today(), 13),
        areas=dashboard.sub_areas(session, me(), me().area_code),
    )


@bp.get("/reports/monthly.xlsx")
def monthly_export():
    area, month = _area_and_month(request.args)
    report, tables = exports.monthly_report_tables(db(), me(), area, month)
    title = f"{report.area_name} {report.month.year}年{report.month.month}月 基本养老服务月度报表"
    return xlsx_response(
        workbooks.render(tables, title=title), f"月度报表-{report.area_name}-{_month_arg(report.month)}"
    )


@bp.get("/elders.xlsx")
def elders_export():
    flt = elderlist.ElderFilter.parse(request.args)
    table = exports.elders_table(db(), me(), flt)
    return xlsx_response(workbooks.render([table]), "老人档案")


@bp.app_template_filter("pct")
def percent(value) -> str:
    """A fraction as a percentage (0.8333 -> 83.3%); nothing to show as —."""
    if value is None:
        return "—"
    return f"{float(value) * 100:.1f}%"
