"""Stored case states are versioned: a state written in an earlier format is upgraded on load, not refused.

`fixtures/state_format_1.json` holds states written by the format-1 code (before the serializer version was
recorded), taken mid-way through the test diagrams: one waiting at a user task with a boundary timer, one
waiting for a message. They must load, say the same about themselves, and run on to their end.
"""

import json
from datetime import datetime
from pathlib import Path

import pytest

from workflows import clock, registry, versions
from workflows.engine import EngineError, Instance
from workflows.engine.state import STATE_FORMAT, upgrade_state

from .conftest import HERE

FIXTURE = json.loads((HERE / "fixtures" / "state_format_1.json").read_text(encoding="utf-8"))


def _spec(key: str):
    bundle = versions.read_bundle(Path(HERE / "bpmn"))
    parsed = {p.key: p for p in registry.engine().parse_bundle(bundle)}
    return registry.engine().load_spec(parsed[key].spec_json)


@pytest.fixture
def at_fixture_time():
    manual = clock.ManualClock(datetime.fromisoformat(FIXTURE["clock"]))
    with clock.using(manual):
        yield manual


def test_a_format_1_state_waiting_at_a_task_loads_and_runs_to_its_end(at_fixture_time):
    stored = FIXTURE["cases"]["timer_paths"]
    assert '"format":1' in stored["state"]
    instance = Instance.restore(_spec("timer_paths"), stored["state"])
    assert [s.spec_id for s in instance.human_steps()] == stored["steps"] == ["review"]
    [timer] = [p for p in instance.pending() if p.kind == "timer"]
    assert timer.due_at.isoformat() == stored["pending"][0]["due_at"]
    # Written again, it is in today's format; the work goes on from where it stood.
    assert f'"format":{STATE_FORMAT}' in instance.dump()
    instance.complete(instance.human_steps()[0].id, {"notice_ends": "2025-06-10T00:00:00+00:00"})
    assert instance.human_steps() == []
    at_fixture_time.advance(days=9)
    assert instance.fire_due_timers()
    assert [s.spec_id for s in instance.human_steps()] == ["after_date"]
    instance.complete(instance.human_steps()[0].id, {})
    assert instance.completed


def test_a_format_1_state_waiting_for_a_message_still_receives_it():
    stored = FIXTURE["cases"]["wait_for_bed"]
    instance = Instance.restore(_spec("wait_for_bed"), stored["state"])
    assert [(p.kind, p.name) for p in instance.pending()] == [("message", "bed_vacated")]
    assert instance.deliver("bed_vacated", {"bed": "A-1"})
    assert [s.spec_id for s in instance.human_steps()] == ["confirm"]


def test_a_state_from_a_newer_format_is_refused_with_a_clear_message():
    with pytest.raises(EngineError, match="不是本系统能读取的格式"):
        upgrade_state({"format": STATE_FORMAT + 1})
