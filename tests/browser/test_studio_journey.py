"""The process owner's journey through the studio in a real browser, on the real app and database:

two 家庭适老化改造 cases are started on version 1; the process owner opens `home_adaptation`, renames a task
in the properties panel, appends a user task with a new form and connects it on, makes a field of the
township's review form required, sees the server's check mark the new flow (no condition, from a diverging
gateway) on the diagram and refuse to deploy, sets the condition, deploys version 2 with a comment. A case
started before keeps running on version 1 to its end while a new case starts on version 2; the dry run
lists the case waiting at the township's review as unable to move (its form now requires a field) and the
one waiting at the application as able to; that one is moved with the batch's progress bar, then moved back.

Its own server and database: it deploys a version 2 of a shipped process, which the other journeys must not
see."""

from __future__ import annotations

import json
import os
from datetime import date

import pytest
from sqlalchemy import select

from tests.processes.home_adaptation.test_home_adaptation import (
    APPLICATION,
    APPROVE,
    ASSESSMENT,
    PASSED,
    WITHIN_CAP,
    WORKS,
)
from tests.web.conftest import id_number
from workflows import clock, elders, tasks, worker
from workflows.models import Case, CaseStatus, HumanTask, ProcessVersion, TaskStatus, User
from workflows.processes.home_adaptation import adaptation

from .conftest import ROOT, Person, needs_chromium, serving

RENAMED = "乡镇（街道）初审并核实材料"
NEW_TASK = "入户核实"
NEW_FORM = "home_check.json"
CONDITION = 'decision == "verify_at_home"'
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("ELDERCARE_DOC_SCREENSHOTS")
    else ROOT / "test-artifacts" / "studio"
)


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("studio-journey")) as server:
        yield server


def _user(session, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


def _elder(session, assistant: User, n: int) -> int:
    """A 低保 elder of 82 in the assistant's village (eligible for an adaptation)."""
    record = elders.register_elder(
        session,
        assistant,
        {
            "name": "适老" + "甲乙丙丁"[n],
            "id_number": id_number(date(1944, 3, n + 1), 400 + n),
            "phone": "13900001111",
            "hukou_type": "rural",
            "residence_area_code": assistant.area_code,
            "address": f"祥云村{n}组",
            "living_arrangement": "living_alone",
            "dibao": True,
        },
    )
    return record.id


def _complete(session, case_id: int, spec: str, data: dict) -> None:
    """Complete a step as the demo person of its lane (the front line's own journeys do this in the browser)."""
    task = session.scalar(
        select(HumanTask).where(
            HumanTask.case_id == case_id, HumanTask.task_spec == spec, HumanTask.status == TaskStatus.READY
        )
    )
    assert task is not None, f"case {case_id} has no open {spec}"
    tasks.complete(session, _user(session, task.role or "caseworker"), task.id, data)


def _version_of(session, case_id: int) -> int:
    case = session.get(Case, case_id)
    return session.get(ProcessVersion, case.process_version_id).version


def _canvas_point(page, element_id: str) -> tuple[float, float]:
    """A point of an element on the editor's canvas that nothing covers (the context pad may lie over some)."""
    point = page.evaluate(
        """(id) => {
            const group = document.querySelector(`#canvas .djs-element[data-element-id="${id}"]`);
            if (!group) return null;
            const hit = group.querySelector('.djs-hit');
            const m = hit.getScreenCTM();
            const at = (x, y) => [x * m.a + y * m.c + m.e, x * m.b + y * m.d + m.f];
            const tries = [];
            if (hit.tagName !== 'rect' && hit.getTotalLength) {
              const n = hit.getTotalLength();
              for (const f of [0.5, 0.3, 0.7, 0.15, 0.85]) { const p = hit.getPointAtLength(n * f); tries.push(at(p.x, p.y)); }
            } else {
              const b = hit.getBBox();
              for (const fy of [0.5, 0.3, 0.7]) for (const fx of [0.5, 0.3, 0.7, 0.15, 0.85]) tries.push(at(b.x + b.width * fx, b.y + b.height * fy));
            }
            return tries.find(([x, y]) => { const top = document.elementFromPoint(x, y); return top && top.closest('.djs-element') === group; }) || null;
        }""",
        element_id,
    )
    assert point, f"{element_id} is not visible on the canvas"
    return tuple(point)


@needs_chromium
def test_a_process_owner_changes_home_adaptation_and_moves_a_running_case(chromium, studio_server):
    sessions, journey_clock = studio_server["sessions"], studio_server["clock"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # Two cases on version 1: A has its application in (waiting at the township's review), B has not.
    with clock.using(journey_clock), sessions.begin() as session:
        assistant = _user(session, "village_assistant")
        case_a = adaptation.start_application(session, assistant, _elder(session, assistant, 1)).id
        case_b = adaptation.start_application(session, assistant, _elder(session, assistant, 2)).id
        _complete(session, case_a, "application", APPLICATION)

    owner = Person(chromium, studio_server["url"], "process_owner", SCREENSHOTS)
    page = owner.page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept(NEW_FORM)))

    # The processes page: every process with its version; home_adaptation's page shows its diagram.
    page.click("nav.mainnav >> text=流程管理")
    page.click("text=家庭适老化改造")
    page.wait_for_selector("#diagram[data-ready='1']")
    assert "第 1 版" in page.inner_text("table.studio-versions")
    owner.shot("studio-process")

    # The editor, on the server's draft.
    page.click("text=编辑（草稿）")
    page.wait_for_selector("#studio[data-ready='1']")
    page.wait_for_selector("#canvas[data-ready='1']")
    page.wait_for_function("() => document.querySelector('#report-summary').textContent !== ''")

    def pick(element_id):
        page.mouse.click(*_canvas_point(page, element_id))
        page.wait_for_function(
            "(id) => document.querySelector('.bio-properties-panel-header-label')"
            " && [...document.querySelectorAll('#canvas .djs-element.selected')].some(e => e.dataset.elementId === id)",
            arg=element_id,
        )

    def saved():
        page.wait_for_function(
            "() => document.querySelector('#save-status').dataset.kind === 'ok'", timeout=20000
        )

    # 1. rename the township's review in the panel
    pick("township_review")
    page.fill("#bio-properties-panel-name", RENAMED)
    saved()

    # 2. a new form file, then a user task after the township's decision that uses it
    page.click("#add-form")
    page.wait_for_selector(f".studio-file[aria-selected='true']:has-text('{NEW_FORM}')")
    form = {
        "title": NEW_TASK,
        "type": "object",
        "properties": {
            "visited_on": {"title": "核实日期", "type": "string", "format": "date"},
            "findings": {"title": "核实情况", "type": "string"},
        },
        "required": ["visited_on", "findings"],
    }
    page.locator("#form-code .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(form, ensure_ascii=False, indent=2))
    page.wait_for_function("() => document.querySelector('#form-preview').innerText.includes('核实情况')")
    saved()
    # the township review's form gets a required field: cases waiting at that step cannot move
    page.click(".studio-file:has-text('township_review.json')")
    review_form = json.loads(
        (ROOT / "bpmn" / "home_adaptation" / "forms" / "township_review.json").read_text("utf-8")
    )
    review_form["properties"]["materials_checked"] = {"title": "材料已逐项核对", "type": "boolean"}
    review_form["required"] = [*review_form.get("required", []), "materials_checked"]
    page.locator("#form-code .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(review_form, ensure_ascii=False, indent=2))
    page.wait_for_function(
        "() => document.querySelector('#form-preview').innerText.includes('材料已逐项核对')"
    )
    saved()

    page.click(".studio-file.is-bpmn:has-text('home_adaptation.bpmn')")
    page.wait_for_selector("#pane-bpmn:not([hidden])")
    pick("township_decision")
    page.click(".djs-context-pad [data-action='append.append-task']")
    page.wait_for_selector(".djs-direct-editing-parent", state="visible")
    page.keyboard.type(NEW_TASK)
    page.mouse.click(*_canvas_point(page, "township_decision"))
    task_id = page.evaluate(
        """(name) => [...document.querySelectorAll('#canvas .djs-shape')]
             .find(g => g.textContent.trim() === name).dataset.elementId""",
        NEW_TASK,
    )
    pick(task_id)
    page.click(".djs-context-pad [data-action='replace']")
    page.click(".djs-popup [data-id='replace-with-user-task']")
    task_id = page.evaluate(
        """(name) => [...document.querySelectorAll('#canvas .djs-shape')]
             .find(g => g.textContent.trim() === name).dataset.elementId""",
        NEW_TASK,
    )
    page.wait_for_selector("#bio-properties-panel-spiff-form-file")  # the new user task is selected
    page.select_option("#bio-properties-panel-spiff-form-file", NEW_FORM)
    # connected on to the county's review
    page.click(".djs-context-pad [data-action='connect']")
    page.mouse.click(*_canvas_point(page, "county_review"))
    saved()

    # 3. the server's check marks the new flow from the gateway (no condition, not the default)
    marked = "#canvas .djs-connection.studio-problem-error"
    page.wait_for_selector(marked, state="attached", timeout=20000)
    flow_id = page.get_attribute(marked, "data-element-id")
    assert "没有条件" in page.inner_text("#problems")
    assert page.is_disabled("#open-deploy")
    owner.shot("studio-edit-problem", full_page=False)

    # fixed: the condition set on the flow in the panel; the marker goes, deploying is possible
    page.click(f"#problems button[data-element='{flow_id}']")
    page.fill("#bio-properties-panel-spiff-condition-expression", CONDITION)
    saved()
    page.wait_for_selector(marked, state="detached", timeout=20000)
    page.wait_for_function("() => !document.querySelector('#open-deploy').disabled")
    pick(task_id)
    owner.shot("studio-edit", full_page=False)

    # 4. deploy with a comment (an empty one is refused in the dialog)
    page.click("#open-deploy")
    page.click("#deploy-submit")
    assert page.is_visible("#deploy-error") or page.evaluate(
        "() => !document.querySelector('#deploy-comment').validity.valid"
    )
    page.fill("#deploy-comment", "按县里新要求：初审核实材料，必要时入户核实")
    page.click("#deploy-submit")
    page.wait_for_url("**/processes/home_adaptation")
    assert "第 2 版" in page.inner_text("table.studio-versions")
    assert "按县里新要求" in page.inner_text("table.studio-versions")

    with sessions() as session:
        version_2 = session.scalar(
            select(ProcessVersion).where(
                ProcessVersion.process_key == "home_adaptation", ProcessVersion.version == 2
            )
        )
        sources = json.loads(version_2.sources)
        diagram = next(t for p, t in sources.items() if p.endswith("home_adaptation.bpmn"))
        assert RENAMED in diagram and NEW_TASK in diagram
        assert CONDITION in diagram.replace("&#34;", '"').replace("&quot;", '"')
        assert any(p.endswith(NEW_FORM) for p in sources)
        assert _version_of(session, case_a) == 1 and _version_of(session, case_b) == 1

    # the diff of the two versions, on the diagrams and in the forms
    page.click("text=版本对比")
    page.wait_for_selector("#diff[data-ready='1']")
    assert page.locator(f"#diff-new [data-element-id='{task_id}'].studio-diff-added").count() == 1
    assert "新增必填：materials_checked" in page.inner_text(".studio-file-changes")
    owner.shot("studio-diff-page")

    # 5. a new case starts on version 2
    with clock.using(journey_clock), sessions.begin() as session:
        assistant = _user(session, "village_assistant")
        case_c = adaptation.start_application(session, assistant, _elder(session, assistant, 3)).id
        assert _version_of(session, case_c) == 2

    # 6. the dry run: A (at the township's review, whose form now requires a field) cannot move, B can
    page.goto("/processes/home_adaptation/migrate?to=2")
    rows = {
        row.get_attribute("data-case"): row.get_attribute("class")
        for row in page.locator("table.migration-plan tbody tr").all()
    }
    assert rows == {str(case_a): "cannot-move", str(case_b): "can-move"}
    reason = page.inner_text(f"tr[data-case='{case_a}'] .reasons")
    assert "materials_checked" in reason and "必填" in reason
    owner.shot("studio-migrate")

    # 7. B moved in a batch: the progress bar fills as the worker moves it
    page.check(f"tr[data-case='{case_b}'] input[name=case]")
    page.fill("textarea[name=comment]", "新申请按新版办理")
    page.click("button[value=chosen]")
    page.wait_for_selector("#batch")
    with clock.using(journey_clock):
        assert worker.run_once(sessions)["case_migrations"] == 1
    page.wait_for_selector("#batch[data-status='done']")
    assert page.inner_text("#batch .job-moved") == "1"
    with sessions() as session:
        assert _version_of(session, case_b) == 2

    # 8. and moved back, while it has not moved on since
    page.goto("/processes/home_adaptation/migrate?to=2")
    page.on("dialog", lambda d: d.accept())
    page.click(f"form[action='/cases/{case_b}/move-back'] button")
    page.wait_for_selector("text=已撤回案件")
    with sessions() as session:
        assert _version_of(session, case_b) == 1
    page.goto(f"/cases/{case_b}")
    assert page.locator(".ev-migrated").count() == 2  # moved, moved back: both in its timeline

    # 9. A runs on version 1 to its end (its review form as it was), C on version 2 with the new field
    with clock.using(journey_clock), sessions.begin() as session:
        _complete(session, case_a, "township_review", APPROVE)
        _complete(session, case_a, "county_review", APPROVE)
        _complete(session, case_a, "home_assessment", ASSESSMENT)
        _complete(session, case_a, "adaptation_plan", WITHIN_CAP)
    journey_clock.advance(days=8)
    with clock.using(journey_clock):
        worker.run_once(sessions)
    with clock.using(journey_clock), sessions.begin() as session:
        _complete(session, case_a, "carry_out_works", WORKS)
        _complete(session, case_a, "acceptance_inspection", PASSED)
        _complete(
            session,
            case_a,
            "subsidy_payment",
            {"paid_amount": 1580, "paid_on": "2026-11-23", "voucher_no": "ZF-1201", "payee": "contractor"},
        )
        _complete(
            session,
            case_a,
            "satisfaction_callback",
            {"called_on": "2026-11-23", "callback_method": "phone", "satisfaction": "very_satisfied"},
        )
        _complete(
            session,
            case_a,
            "archive_household_file",
            {"file_no": "SLH-2026-0001", "documents_complete": True},
        )
    with sessions() as session:
        assert session.get(Case, case_a).status == CaseStatus.COMPLETED and _version_of(session, case_a) == 1
    with clock.using(journey_clock), sessions.begin() as session:
        _complete(session, case_c, "application", APPLICATION)
        review = session.scalar(
            select(HumanTask).where(HumanTask.case_id == case_c, HumanTask.status == TaskStatus.READY)
        )
        assert review.task_spec == "township_review" and review.name == RENAMED
    owner.close()
    assert owner.errors == [], owner.errors
