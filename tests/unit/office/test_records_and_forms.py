"""Correcting an elder's record (effects on running cases shown before saving, history old → new), task form
drafts, dates bounded by today, and the standard's wording of every score."""

from __future__ import annotations

import json

import pytest

from tests.processes.harness import World
from tests.processes.home_care.test_home_care import REVIEW_PASS, apply, enrolled, make_elder
from workflows import drafts, elders, forms, registration, tasks
from workflows.errors import PermissionDenied, ValidationFailed
from workflows.models import ElderStatus
from workflows.rules import assessment


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)


def _form(world, elder, **changes):
    """The edit form's data for a record, with some fields changed (as the page posts it)."""
    return {**registration.edit_values(elder), "change_reason": "入户核实", **changes}


def test_a_visit_dated_in_the_future_is_refused_with_the_field_named(world):
    """Defect of issue 15: 入户核实日期 2030-01-01 was accepted."""
    case = apply(world, make_elder(world))
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "township_review", {**REVIEW_PASS, "home_visit_on": "2030-01-01"})
    assert refused.value.field_errors == {"home_visit_on": "入户核实日期不能晚于今天"}
    world.complete(case, "township_review", {**REVIEW_PASS, "home_visit_on": "2025-06-02"})  # today: fine


def test_date_bounds_read_today_offsets_and_fixed_days(manual_clock):
    schema = {
        "type": "object",
        "properties": {
            "visited_on": {"type": "string", "format": "date", "title": "探访日期", "x-latest": "today"},
            "planned_on": {"type": "string", "format": "date", "title": "计划日期", "x-earliest": "today+1"},
            "since": {"type": "string", "format": "date", "title": "起始", "x-earliest": "2025-01-01"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"on": {"type": "string", "format": "date", "x-latest": "today-1"}},
                },
            },
        },
    }
    ok = {
        "visited_on": "2025-06-02",
        "planned_on": "2025-06-03",
        "since": "2025-01-01",
        "rows": [{"on": "2025-06-01"}],
    }
    assert forms.validate(schema, ok) == {}
    bad = {
        "visited_on": "2025-06-03",
        "planned_on": "2025-06-02",
        "since": "2024-12-31",
        "rows": [{"on": "2025-06-02"}],
    }
    assert forms.validate(schema, bad) == {
        "visited_on": "探访日期不能晚于今天",
        "planned_on": "计划日期不能早于 2025-06-03",
        "since": "起始不能早于 2025-01-01",
        "rows.0.on": "日期不能晚于 2025-06-01",
    }
    assert forms.date_bound("today+x") is None and forms.date_bound(None) is None


def test_a_death_reaches_the_running_cases_shown_first_and_the_history_records_old_and_new(world):
    session = world.session
    elder, case, enrolment = enrolled(world, phone="13900001111")
    assistant = world.users["village_assistant"]
    effects = elders.leaving_effects(session, assistant, elder.id, "deceased")
    assert [(e.case_id, e.message) for e in effects] == [(case.id, "elder_died")]
    assert elders.leaving_effects(session, assistant, elder.id, "active") == []
    with pytest.raises(ValidationFailed) as refused:
        registration.update_from_form(session, assistant, elder.id, _form(world, elder, status="deceased"))
    assert refused.value.field_errors == {"deceased_on": "状态为已故时须填写死亡日期"}
    registration.update_from_form(
        session,
        assistant,
        elder.id,
        _form(world, elder, status="deceased", deceased_on="2025-06-01", phone=None),
    )
    assert elder.status == ElderStatus.DECEASED and elder.phone is None
    session.refresh(enrolment)  # the register told the running case, which ended the service
    assert (enrolment.status.value, enrolment.end_reason.value) == ("ended", "deceased")
    history = elders.list_change_views(session, assistant, elder.id)
    latest = {h["field"]: h for h in history if h["reason"] == "入户核实"}
    assert latest["status"]["old"] == "在册" and latest["status"]["new"] == "已故"
    assert latest["phone"]["old"] == "139****1111" and latest["phone"]["new"] == "—"


def test_correcting_a_record_keeps_to_the_registers_checks_and_roles(world):
    session = world.session
    elder = make_elder(world)
    assistant = world.users["village_assistant"]
    with pytest.raises(ValidationFailed) as refused:
        registration.update_from_form(session, assistant, elder.id, _form(world, elder, change_reason=" "))
    assert refused.value.field_errors == {"change_reason": "请填写修改原因"}
    with pytest.raises(ValidationFailed) as refused:
        registration.update_from_form(
            session, assistant, elder.id, _form(world, elder, support={"dibao": True, "tekun": True})
        )
    assert "support.tekun" in refused.value.field_errors
    registration.update_from_form(session, assistant, elder.id, _form(world, elder, address="3组8号"))
    assert elder.address == "3组8号"
    with pytest.raises(PermissionDenied):
        registration.update_from_form(session, world.users["assessor"], elder.id, _form(world, elder))
    with pytest.raises(PermissionDenied):
        registration.update_from_form(session, world.users["caseworker2"], elder.id, _form(world, elder))


def test_a_draft_is_kept_per_person_and_task_and_goes_when_the_task_is_done(world):
    session = world.session
    case = apply(world, make_elder(world))
    task = world.ready(case)[0]
    worker = world.users["caseworker"]
    typed = {
        "f.verification": ["入户核实：独居"],
        "f.decision": ["pass"],
        "csrf_token": ["x"],
        "other": ["y"],
    }
    drafts.save(session, worker, task.id, typed, "草稿意见")
    saved = drafts.load(session, worker, task.id)
    assert (
        saved.fields == {"f.verification": ["入户核实：独居"], "f.decision": ["pass"]}
        and saved.comment == "草稿意见"
    )
    drafts.save(session, worker, task.id, {"f.verification": "第二次"})  # the later save wins
    assert drafts.load(session, worker, task.id).fields == {"f.verification": ["第二次"]}
    assert task.id in drafts.drafts_of(session, worker)
    # Someone who may not work the task keeps no draft of it.
    for other in (world.users["caseworker2"], world.users["auditor"], world.users["assessor"]):
        with pytest.raises((PermissionDenied, ValidationFailed)):
            drafts.save(session, other, task.id, typed)
    for hostile in ({"f.x": [1]}, ["f.x"], {"f.x": [{"a": 1}]}):
        with pytest.raises(ValidationFailed):
            drafts.save(session, worker, task.id, hostile)
    with pytest.raises(ValidationFailed):
        drafts.save(session, worker, task.id, {"f.x": ["长" * (drafts.MAX_BYTES + 1)]})
    tasks.complete(session, worker, task.id, REVIEW_PASS)
    assert drafts.load(session, worker, task.id) is None  # a draft of a finished task is dropped


def test_every_item_has_the_standards_description_of_every_score():
    scale = assessment.scale()
    assert len(scale["items"]) == 26 and scale["max_total"] == 90
    for item in scale["items"]:
        scores = [s["score"] for s in item["scores"]]
        assert scores == list(range(item["max"], -1, -1)), item["key"]
        assert all(len(s["text"]) >= 3 for s in item["scores"]) and item["what"]
    eating = dict(assessment.score_descriptions("eating"))
    assert eating[4].startswith("独立使用器具将食物送进口中并咽下") and "留置营养管" in eating[0]
    raw = json.loads(assessment._SCALE_FILE.read_text(encoding="utf-8"))
    assert set(raw["items"]) == {item.key for item in assessment.ITEMS}
