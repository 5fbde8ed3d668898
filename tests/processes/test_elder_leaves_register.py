"""When the register says an elder died or moved away, their running cases hear of it at once."""

from tests.processes.admission.test_admission import entry_of, make_facility, queued
from workflows import elders
from workflows.models import CaseStatus, ElderStatus
from workflows.models.admission import EntryStatus


def test_death_recorded_in_the_register_withdraws_the_waitlist_application(world):
    facility = make_facility(world)
    case = queued(world, facility)
    elder_id = world.refresh(case).elder_id
    assert world.refresh(case).status == CaseStatus.RUNNING
    elders.update_elder(
        world.session,
        world.users["admin"],
        elder_id,
        {"status": ElderStatus.DECEASED.value, "deceased_on": "2025-06-01"},
        reason="村委会报告",
    )
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert entry_of(world, case).status == EntryStatus.WITHDRAWN
    assert "老人已故" in (entry_of(world, case).end_reason or "")


def test_other_changes_send_nothing(world):
    facility = make_facility(world)
    case = queued(world, facility)
    elder_id = world.refresh(case).elder_id
    elders.update_elder(world.session, world.users["admin"], elder_id, {"address": "祥云村三组"})
    assert world.refresh(case).status == CaseStatus.RUNNING
