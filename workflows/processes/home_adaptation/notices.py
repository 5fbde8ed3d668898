"""What the adaptation public list (公示名单) says: every household of the township whose plan is on notice."""

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import cases, elders, notices
from ...models import Area, Case, CaseStatus, CaseWait, Elder
from ...rules import housing

# The message a case waits for while its adaptation plan is on public notice (公示).
ON_PUBLIC_NOTICE = "adaptation_objection"


def public_list_facts(session: Session, case: Case, payload: dict, step: str | None) -> dict:
    """The households of the case's township whose plans are on public notice now, this one included."""
    values = notices.case_values(session, case)
    township_code = (case.area_code or "")[:9]
    township = session.get(Area, township_code)
    values["township"] = township.name if township is not None else township_code
    values["days"] = housing.setting("adaptation", "public_notice_days")
    listed = list(
        session.scalars(
            select(Case)
            .join(CaseWait, CaseWait.case_id == Case.id)
            .where(
                Case.process_key == case.process_key,
                Case.status == CaseStatus.RUNNING,
                CaseWait.event_name == ON_PUBLIC_NOTICE,
                elders.in_area(Case.area_code, township_code),
            )
            .order_by(Case.id)
        )
    )
    if case.id not in {c.id for c in listed}:
        listed.append(case)
    categories = notices.option_labels(session, case, "application", "household_category")
    rows = []
    for listed_case in listed:
        data = cases.case_data(listed_case)
        elder = session.get(Elder, listed_case.elder_id) if listed_case.elder_id else None
        village = session.get(Area, listed_case.area_code) if listed_case.area_code else None
        plan = data.get("plan_summary") or {}
        rows.append(
            [
                elder.name if elder else str(data.get("elder_name", "")),
                village.name if village is not None else (listed_case.area_code or ""),
                categories.get(
                    str(data.get("household_category")), str(data.get("household_category") or "")
                ),
                str(len(plan.get("lines") or [])),
                notices.plain_amount(housing.to_amount(plan.get("total")) or Decimal("0")),
                notices.plain_amount(housing.to_amount(plan.get("subsidy")) or Decimal("0")),
                notices.date_text(listed_case.next_timer_at) if listed_case.next_timer_at else "",
            ]
        )
    table = {
        "columns": [
            "户主（老人）姓名",
            "村（社区）",
            "困难类别",
            "改造项目数",
            "方案总价（元）",
            "补助金额（元）",
            "公示截止",
        ],
        "rows": rows,
    }
    return {
        "values": values,
        "facts": [["乡镇（街道）", values["township"]], ["公示户数", str(len(rows))]],
        "table": table,
        "case_ids": [c.id for c in listed],
        "area_code": township_code,
    }
