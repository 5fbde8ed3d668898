"""A routine visit (探访关爱) recorded in a real browser on a phone by the village assistant: nothing found
that needs a referral, so no referral box is ticked, and that is a complete answer."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select

from workflows import clock, tasks
from workflows.models import Elder, HukouType, LivingArrangement, Sex, User
from workflows.models.care import Visit, VisitStatus
from workflows.processes.visiting_care import visiting
from workflows.rules.idnumber import compute_check_char

from .conftest import Person, needs_chromium

ELDER_NAME = "卫守仁"
FIRST17 = "410825193907210" + "31"  # born 1939-07-21, a man (odd 17th digit)
VILLAGE = "410825100201"  # 祥云村, the demo village assistant's village


def _enrolled_with_a_visit_due(sessions, journey_clock) -> int:
    """An elder living alone, enrolled for monthly visits, with this month's visit open; return its id."""
    with clock.using(journey_clock), sessions.begin() as session:
        users = {u.username: u for u in session.scalars(select(User))}
        elder = Elder(
            id_number=FIRST17 + compute_check_char(FIRST17),
            name=ELDER_NAME,
            sex=Sex.MALE,
            birth_date=date(1939, 7, 21),
            hukou_type=HukouType.RURAL,
            residence_area_code=VILLAGE,
            address="温县祥云镇祥云村5组8号",
            living_arrangement=LivingArrangement.LIVING_ALONE,
            living_alone=True,
            created_at=journey_clock(),
            updated_at=journey_clock(),
        )
        session.add(elder)
        session.flush()
        case = visiting.enrol_visiting_care(session, users["village_assistant"], elder.id, "独居")
        (confirm,) = tasks.ready_tasks(session, case.id)
        tasks.complete(
            session, users["caseworker"], confirm.id, {"decision": "approve", "visit_frequency": "monthly"}
        )
        visiting.open_due_visits(session)
        return elder.id


@needs_chromium
def test_a_routine_visit_without_referrals_is_recorded_on_a_phone(chromium, live_server, artifacts):
    sessions, journey_clock = live_server["sessions"], live_server["clock"]
    elder_id = _enrolled_with_a_visit_due(sessions, journey_clock)
    today = journey_clock().astimezone(clock.LOCAL).date().isoformat()

    assistant = Person(chromium, live_server["url"], "village_assistant", artifacts, phone=True)
    page = assistant.page
    page.goto("/inbox?scope=group")
    page.locator("table.tasks tbody tr", has_text=ELDER_NAME).filter(has_text="探访并填写记录").first.locator(
        "a.task-name"
    ).click()
    page.wait_for_selector("form.taskform")
    page.fill("#id_f_visited_on", today)
    page.select_option("#id_f_method", "home")
    page.select_option("#id_f_findings_health_status", index=1)
    page.check('input[name="f.findings.home_safety_risk"][value=false]')
    page.check('input[name="f.findings.emergency"][value=false]')
    # No service ticked: the form asks for at least one (ticking none is an answer, but not a valid one).
    page.click("form.taskform button.primary[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator('[data-path="services_provided"] > .error').inner_text() != ""
    assert page.locator('[data-path="findings.needs"] > .error').count() == 0
    page.check('input[type=checkbox][name="f.services_provided"][value=health_management]')
    page.check('input[type=checkbox][name="f.services_provided"][value=emotional_support]')
    assistant.shot("visit-1-routine-visit-phone")
    page.click("form.taskform button.primary[type=submit]")
    page.wait_for_url("**/inbox**")
    assert "已提交：探访并填写记录" in page.inner_text("body")
    assert not assistant.errors
    assistant.close()

    with sessions() as session:
        visit = session.scalar(select(Visit).where(Visit.elder_id == elder_id))
        assert visit.status == VisitStatus.DONE and visit.visited_on.isoformat() == today
        assert json.loads(visit.services) == ["health_management", "emotional_support"]
        assert json.loads(visit.findings)["needs"] == [] and json.loads(visit.referrals) == []
