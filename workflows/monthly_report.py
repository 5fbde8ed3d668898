"""The monthly report an area sends up (月度报表): visit rates, home-care services, adaptation, the
waitlist, assessments and the county's targets, per township, for one calendar month.

Built from the same figures as the dashboard, for a month that may be past; the workbook is made from the
tables here (exports.py, casefiles/workbooks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock, dashboard, elders, targets, visit_rates
from .clock import month_end
from .elders import in_area
from .listing import Column, Table
from .models import Area
from .models.admission import ACTIVE_STATUSES, WaitlistEntry

RATE = "rate"


@dataclass
class MonthlyReport:
    area: str
    area_name: str
    month: date
    made_at: object
    tables: list[Table]


def _townships(session: Session, area: str) -> list[tuple[str, str]]:
    """The parts a report is split into: townships of a county, villages of a township, or the village."""
    if len(area) == 12:
        return [(area, elders.area_path(session, area))]
    length = 9 if len(area) == 6 else 12
    return [
        (code, name)
        for code, name in session.execute(
            select(Area.code, Area.name)
            .where(in_area(Area.code, area), func.length(Area.code) == length)
            .order_by(Area.code)
        ).all()
    ]


def build(session: Session, actor, area: str | None, month: date) -> MonthlyReport:
    """The month's figures for an area inside the actor's own, one table per sheet."""
    scope = dashboard.scope_of(actor, area)
    first = month.replace(day=1)
    last = month_end(first)
    area_name = elders.area_path(session, scope)
    goals = targets.targets_for(session, scope)
    parts = _townships(session, scope)
    month_rates = visit_rates.month_rates(session, scope, first)
    weeks = visit_rates.weekly_rates_of_month(session, scope, first)
    by_part_month = {p.area_code: p for p in month_rates.parts}
    week_parts: dict[str, list[int]] = {}
    for week in weeks.weeks:
        for p in week.parts:
            due_seen = week_parts.setdefault(p.area_code, [0, 0])
            due_seen[0] += p.due
            due_seen[1] += p.visited

    summary_rows = []
    for code, name in parts:
        m = by_part_month.get(code)
        w = week_parts.get(code, [0, 0])
        services = dashboard.service_figures(session, code, first)
        adaptation = _adaptations_in_month(session, code, first)
        waiting = _waiting_at_end(session, code)
        summary_rows.append(
            {
                "area": name,
                "enrolled": m.due if m else 0,
                "visited": m.visited if m else 0,
                "month_rate": m.rate if m else None,
                "week_due": w[0],
                "week_visited": w[1],
                "week_rate": visit_rates.rate(w[1], w[0]),
                "care_months": services.months_open,
                "services": sum(f.count for f in services.by_type),
                "service_amount": sum((f.amount for f in services.by_type), Decimal("0.00")),
                "no_service": services.months_without_services,
                "adapted": adaptation[0],
                "subsidy": adaptation[1],
                "waiting": waiting,
            }
        )
    total_services = dashboard.service_figures(session, scope, first)
    total_adaptation = _adaptations_in_month(session, scope, first)
    summary_rows.append(
        {
            "area": f"合计（{area_name}）",
            "enrolled": month_rates.total.due,
            "visited": month_rates.total.visited,
            "month_rate": month_rates.total.rate,
            "week_due": weeks.due,
            "week_visited": weeks.visited,
            "week_rate": weeks.rate,
            "care_months": total_services.months_open,
            "services": sum(f.count for f in total_services.by_type),
            "service_amount": sum((f.amount for f in total_services.by_type), Decimal("0.00")),
            "no_service": total_services.months_without_services,
            "adapted": total_adaptation[0],
            "subsidy": total_adaptation[1],
            "waiting": _waiting_at_end(session, scope),
        }
    )
    summary = Table(
        "分区汇总",
        [
            Column("area", "区划"),
            Column("enrolled", "探访关爱对象（人）", "number"),
            Column("visited", "本月已探访（人）", "number"),
            Column("month_rate", "月探访率", RATE),
            Column("week_due", "分散供养特困应探访（人周）", "number"),
            Column("week_visited", "已探访（人周）", "number"),
            Column("week_rate", "周探访率", RATE),
            Column("care_months", "居家上门服务对象（人）", "number"),
            Column("services", "“六助”服务（次）", "number"),
            Column("service_amount", "服务金额（元）", "amount"),
            Column("no_service", "本月无服务记录（人）", "number"),
            Column("adapted", "本月完成适老化改造（户）", "number"),
            Column("subsidy", "本月拨付改造补助（元）", "amount"),
            Column("waiting", "公办机构轮候（人，当前）", "number"),
        ],
        summary_rows,
        len(summary_rows),
        notes=[
            f"{area_name} {first.year}年{first.month}月（{first.isoformat()} 至 {last.isoformat()}）",
            "月探访率：当月在册探访关爱对象中，当月至少探访1次的比例。",
            "周探访率：分散供养特困老年人，按周一至周日计，统计在本月结束的各周（人周）。",
        ],
    )

    week_rows = [
        {
            "week": f"{w.start.isoformat()} 至 {w.end.isoformat()}",
            "working_days": w.working_days,
            "due": w.total.due,
            "visited": w.total.visited,
            "rate": w.total.rate,
        }
        for w in weeks.weeks
    ]
    week_table = Table(
        "分散供养特困周探访",
        [
            Column("week", "周"),
            Column("working_days", "工作日（天）", "number"),
            Column("due", "应探访（人）", "number"),
            Column("visited", "已探访（人）", "number"),
            Column("rate", "周探访率", RATE),
        ],
        week_rows,
        len(week_rows),
        notes=["工作日按国务院办公厅节假日安排（含调休）计算；节假日当天的探访同样计入。"],
    )

    service_table = Table(
        "六助服务",
        [
            Column("label", "服务类别"),
            Column("count", "服务次数", "number"),
            Column("elders", "服务对象（人）", "number"),
            Column("amount", "服务金额（元）", "amount"),
        ],
        [
            {"label": f.label, "count": f.count, "elders": f.elders, "amount": f.amount}
            for f in total_services.by_type
        ]
        + [
            {"label": f"服务机构：{f.label}", "count": f.count, "elders": f.elders, "amount": f.amount}
            for f in total_services.by_provider
        ],
        len(total_services.by_type) + len(total_services.by_provider),
    )

    now = clock.now()
    tiers = dashboard.waitlist_figures(session, scope, now)
    waitlist_table = Table(
        "公办机构轮候",
        [
            Column("label", "轮候类别"),
            Column("waiting", "轮候人数", "number"),
            Column("average", "平均已等待（天）", "number"),
            Column("longest", "最长已等待（天）", "number"),
        ],
        [
            {
                "label": t.label,
                "waiting": t.waiting,
                "average": t.average_wait_days,
                "longest": t.longest_wait_days,
            }
            for t in tiers
        ],
        len(tiers),
        notes=["轮候人数与等待天数为报表生成时的数据。"],
    )

    today = clock.today()
    assessed = dashboard.assessment_figures(session, scope, today)
    level_labels = {
        "intact": "能力完好",
        "mild": "轻度失能",
        "moderate": "中度失能",
        "severe": "重度失能",
        "complete": "完全失能",
        "none": "无有效评估",
    }
    assessment_table = Table(
        "能力评估",
        [Column("label", "评估等级"), Column("count", "老年人（人）", "number")],
        [{"label": level_labels[k], "count": v} for k, v in assessed.by_level.items()]
        + [{"label": f"{assessed.expiring_days}天内评估到期", "count": assessed.expiring}],
        len(assessed.by_level) + 1,
    )

    adaptation = dashboard.adaptation_figures(session, scope, today, goals)
    institutional = dashboard.institutional_support(session, scope, today)
    lines = dashboard.facility_lines(session, scope)
    occupancy = dashboard.occupancy(lines)
    goal_rows = [
        {
            "label": goals["monthly_visit_rate"].label,
            "target": goals["monthly_visit_rate"].value,
            "actual": month_rates.total.rate,
            "_formats": {"target": RATE, "actual": RATE},
        },
        {
            "label": goals["weekly_visit_rate_home_support"].label,
            "target": goals["weekly_visit_rate_home_support"].value,
            "actual": weeks.rate,
            "_formats": {"target": RATE, "actual": RATE},
        },
        {
            "label": f"{goals['adaptation_households'].label}（{adaptation.plan_first_year}—{adaptation.plan_last_year}年）",
            "target": adaptation.plan_target,
            "actual": adaptation.done_in_plan,
            "_formats": {"target": "number", "actual": "number"},
        },
        {
            "label": f"{adaptation.year}年完成适老化改造（户）",
            "target": adaptation.yearly_target,
            "actual": adaptation.done_this_year,
            "_formats": {"target": "number", "actual": "number"},
        },
        {
            "label": goals["institutional_support_rate"].label,
            "target": goals["institutional_support_rate"].value,
            "actual": institutional.rate,
            "_formats": {"target": RATE, "actual": RATE},
        },
        {
            "label": goals["public_home_occupancy_rate"].label,
            "target": goals["public_home_occupancy_rate"].value,
            "actual": occupancy.rate,
            "_formats": {"target": RATE, "actual": RATE},
        },
        {
            "label": goals["home_care_beds"].label,
            "target": goals["home_care_beds"].value,
            "actual": "系统未登记",
            "_formats": {"target": "number", "actual": "number"},
        },
    ]
    goal_table = Table(
        "目标完成情况",
        [Column("label", "指标"), Column("target", "目标"), Column("actual", "完成")],
        goal_rows,
        len(goal_rows),
        notes=[
            "目标值为本县设置的考核目标；未设置的取自各地实施方案（见系统说明）。",
            "集中供养率：在册特困人员中经评估为中度及以上失能者，集中供养的比例。",
            "入住率：公办养老机构床位减去机构登记的空床，占床位总数的比例。",
        ],
    )
    return MonthlyReport(
        scope,
        area_name,
        first,
        clock.now(),
        [summary, goal_table, week_table, service_table, waitlist_table, assessment_table],
    )


def _adaptations_in_month(session: Session, area: str, first: date) -> tuple[int, Decimal]:
    from .listing import day_after, day_start

    done, subsidy = 0, Decimal("0.00")
    for row in dashboard.completed_adaptations(session, area, day_start(first), day_after(month_end(first))):
        paid = dashboard.paid_subsidy(row.data)
        if paid is not None:
            done += 1
            subsidy += paid
    return done, subsidy


def _waiting_at_end(session: Session, area: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(WaitlistEntry)
            .where(WaitlistEntry.status.in_(list(ACTIVE_STATUSES)), in_area(WaitlistEntry.area_code, area))
        )
        or 0
    )
