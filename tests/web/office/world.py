"""Work put into an office's database through the use cases themselves, so that its pages have something
real to show: an applicant on a home's waitlist, a provider's order with a settled month."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from sqlalchemy import select

from tests.web.conftest import item_scores
from workflows import cases, clock, elders, tasks
from workflows.models import Case, HumanTask, TaskStatus, User
from workflows.models.admission import Facility
from workflows.models.care import HomeCareMonth
from workflows.processes.admission import waitlist
from workflows.processes.home_care import enrolment as home_care
from workflows.processes.home_care import months
from workflows.rules.assessment import AssessmentReason, score_assessment
from workflows.rules.idnumber import compute_check_char

_serial = itertools.count(1)
ANSWERS = {
    "violent_tendency": False,
    "mental_state_stable": True,
    "infectious_disease": False,
    "voluntary": True,
}


def people(session) -> dict[str, User]:
    return {u.username: u for u in session.scalars(select(User))}


def new_elder(
    session, *, name: str, village: str = "410825100201", level: str | None = "moderate", **flags
) -> int:
    """An elder registered (and assessed) through the register's use cases; returns the id."""
    who = people(session)
    while True:
        n = next(_serial)
        first17 = f"410825{date(1941, 3, 1) + timedelta(days=n):%Y%m%d}{500 + n % 400:03d}"
        number = first17 + compute_check_char(first17)
        if not session.scalar(select(elders.Elder.id).where(elders.Elder.id_number == number)):
            break
    elder = elders.register_elder(
        session,
        who["admin"],
        {
            "name": name,
            "id_number": number,
            "phone": "13912345678",
            "hukou_type": "rural",
            "residence_area_code": village,
            "address": f"{n}组{n}号",
            "living_arrangement": "living_alone",
            "dibao": True,
            **flags,
        },
    )
    if level is not None:
        total = {"moderate": 50, "severe": 40, "mild": 75}[level]
        items = item_scores(total)
        elders.record_assessment(
            session,
            who["assessor"],
            elder.id,
            score_assessment(items),
            clock.today() - timedelta(days=10),
            AssessmentReason.INITIAL,
            items=items,
        )
    return elder.id


def _ready(session, case_id: int, spec: str) -> HumanTask:
    return session.scalar(
        select(HumanTask).where(
            HumanTask.case_id == case_id, HumanTask.task_spec == spec, HumanTask.status == TaskStatus.READY
        )
    )


def queued_applicant(session, facility_name: str, name: str) -> int:
    """An applicant verified onto a home's waitlist; returns the admission case id."""
    who = people(session)
    facility = session.scalar(select(Facility).where(Facility.name == facility_name))
    elder_id = new_elder(session, name=name)
    case = waitlist.apply(session, who["caseworker"], elder_id, facility.id, ANSWERS)
    task = _ready(session, case.id, "verify_application")
    tasks.complete(session, who["caseworker"], task.id, {"decision": "approve", "township_referral": False})
    return case.id


def provider_order(session, *, name: str, sent_back: bool = False) -> int:
    """A home-care application dispatched to the demo provider and accepted; returns the case id."""
    who = people(session)
    today = clock.today().isoformat()
    elder_id = new_elder(session, name=name)
    case = home_care.apply_home_care(
        session,
        who["village_assistant"],
        elder_id,
        {"applicant_type": "self", "requested_services": ["meal", "cleaning"], "application_note": ""},
    )
    review = {"decision": "pass", "home_visit_on": today, "verification": "入户核实：低保在册，独居"}
    tasks.complete(session, who["caseworker"], _ready(session, case.id, "township_review").id, review)
    if sent_back:
        approval = _ready(session, case.id, "county_approval")
        tasks.complete(
            session, who["approver"], approval.id, {"decision": "send_back", "comment": "请补充入户照片"}
        )
        tasks.complete(session, who["caseworker"], _ready(session, case.id, "township_review").id, review)
    tasks.complete(
        session, who["approver"], _ready(session, case.id, "county_approval").id, {"decision": "approve"}
    )
    tasks.complete(
        session,
        who["caseworker"],
        _ready(session, case.id, "dispatch_provider").id,
        {"provider_id": who["provider"].id},
    )
    tasks.complete(
        session,
        who["provider"],
        _ready(session, case.id, "provider_accept").id,
        {"decision": "accept", "planned_start_on": today},
    )
    return case.id


def settled_month(session, case_id: int, first: date, records: list[dict], settle: str) -> int:
    """A service month of the order opened, recorded by the provider and settled; returns the month's id."""
    who = people(session)
    enrolment = home_care.active_enrolment(session, session.get(Case, case_id).elder_id)
    month = months.open_month(session, enrolment, first)
    tasks.complete(
        session, who["provider"], _ready(session, month.case_id, "record_services").id, {"services": records}
    )
    callback = _ready(session, month.case_id, "callback_check")
    if callback is not None:
        tasks.complete(
            session,
            who["caseworker"],
            callback.id,
            {
                "callback": {
                    "callback_on": clock.today().isoformat(),
                    "reached": True,
                    "services_confirmed": "confirmed",
                    "satisfaction": "satisfied",
                }
            },
        )
    settlement = _ready(session, month.case_id, "township_settlement")
    tasks.complete(
        session,
        who["caseworker"],
        settlement.id,
        {"settlement_amount": settle, "settlement_note": "按额度结算"},
    )
    cases.forget_live_instances()
    return session.scalar(select(HomeCareMonth.id).where(HomeCareMonth.case_id == month.case_id))
