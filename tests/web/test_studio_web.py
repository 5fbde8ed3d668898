"""The process owners' studio over HTTP: looking at processes (everyone), editing a draft, checking it,
deploying it with a comment (process owners and admins only), comparing versions, exporting and importing
bundles, the API's deploy and start-form description, starting a process without an elder, and moving
running cases between versions with a dry run, a batch and an undo.

These tests deploy new versions, so they run on their own database (the shared one keeps the shipped
processes as they are for the other web tests)."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from sqlalchemy import select

from tests.factories import ORDER_ANSWERS, interop_bundle
from workflows import case_moves
from workflows.db import session_factory
from workflows.models import Case, CaseEvent, CaseStatus, EventKind, ProcessVersion
from workflows.models.supervision import LogKind, OfficeLog

from .conftest import Browser, api_token, demo_database, web_app

LANE = "乡镇经办人 (caseworker)"


def two_steps(key: str, *, second_name: str = "决定", extra: str = "") -> str:
    """A small process not about an elder: 核实 then a second step, both the caseworker's."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="{key}_defs"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{key}" name="测试流程" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane_cw" name="{LANE}">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>check</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>decide</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="check" name="核实">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="check.json" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="decide" name="{second_name}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="decide.json" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check" />
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="decide" />
    <bpmn:sequenceFlow id="f3" sourceRef="decide" targetRef="end" />{extra}
  </bpmn:process>
</bpmn:definitions>"""


def form(title: str, *fields: str, required=()) -> str:
    return json.dumps(
        {
            "title": title,
            "type": "object",
            "properties": {f: {"title": f, "type": "string"} for f in fields},
            "required": list(required),
        },
        ensure_ascii=False,
    )


def bundle(key: str, **kw) -> dict[str, str]:
    return {
        f"{key}.bpmn": two_steps(key, **kw),
        "forms/check.json": form("核实", "note"),
        "forms/decide.json": form("决定", "decision"),
    }


def as_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def studio_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    url, engine = demo_database(folder)
    yield url, folder, engine
    engine.dispose()


@pytest.fixture(scope="module")
def studio_app(studio_db):
    url, folder, _ = studio_db
    app = web_app(url, folder)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture(scope="module")
def people(studio_app):
    return {name: Browser(studio_app, name) for name in ("process_owner", "caseworker", "provider", "admin")}


@pytest.fixture(scope="module")
def bearer(studio_app):
    client = studio_app.test_client()
    return {
        name: {"Authorization": f"Bearer {api_token(client, name)}"}
        for name in ("process_owner", "caseworker", "approver")
    }


def draft_of(page_html: str) -> str:
    return re.search(r'data-draft="([^"]+)"', page_html).group(1)


def csrf_header(browser: Browser, url: str = "/processes") -> dict:
    return {"X-CSRFToken": browser.token(url)}


def test_everyone_may_look_but_only_owners_and_admins_change(people):
    provider, caseworker = people["provider"], people["caseworker"]
    listing = provider.get("/processes")
    assert listing.status_code == 200 and "家庭适老化改造" in listing.text
    assert "新建流程" not in listing.text  # nothing to change for a provider
    page = caseworker.get("/processes/home_adaptation")
    assert page.status_code == 200 and "第 1 版" in page.text and "编辑（草稿）" not in page.text
    diagram = caseworker.get("/processes/home_adaptation/versions/1/diagram.json").json
    assert 'id="home_adaptation"' in diagram["xml"]
    exported = caseworker.get("/processes/home_adaptation/versions/1/export.zip")
    names = zipfile.ZipFile(io.BytesIO(exported.data)).namelist()
    assert any(n.endswith(".bpmn") for n in names) and any(n.endswith(".json") for n in names)
    for url in ("/processes/home_adaptation/edit", "/processes/home_adaptation/migrate"):
        assert caseworker.get(url).status_code == 403
    refused = caseworker.post("/processes/new", {"key": "x_process", "name": "x"})
    assert refused.status_code in (302, 403)
    assert people["process_owner"].get("/processes").text.count("新建流程") >= 1


def test_a_draft_is_saved_checked_and_deployed_with_a_comment(people, studio_db):
    owner = people["process_owner"]
    page = owner.get("/processes/home_adaptation/edit")
    assert page.status_code == 200
    draft_url = draft_of(page.text)
    draft = owner.get(draft_url).json
    main = next(
        p for p in draft["files"] if p.endswith(".bpmn") and 'id="home_adaptation"' in draft["files"][p]
    )
    xml = draft["files"][main]
    headers = csrf_header(owner)

    # A renamed step is saved on top of the revision the page holds; a save from a stale page is refused.
    renamed = re.sub(r'(<bpmn:userTask id="township_review" name=")[^"]*"', r'\1乡镇初审（新）"', xml)
    assert renamed != xml
    saved = owner.client.put(
        draft_url, json={"files": {main: renamed}, "revision": draft["revision"]}, headers=headers
    )
    assert saved.status_code == 200 and saved.json["revision"] == draft["revision"] + 1
    stale = owner.client.put(
        draft_url, json={"files": {main: xml}, "revision": draft["revision"]}, headers=headers
    )
    assert stale.status_code == 409 and "其他窗口" in stale.json["message"]
    assert owner.get(draft_url).json["files"][main] == renamed  # the stale save changed nothing

    # A script that imports os is an error naming its element; deploying is refused with the report.
    hostile = renamed.replace(
        "</bpmn:process>",
        '<bpmn:scriptTask id="peek" name="窥探"><bpmn:script>import os</bpmn:script></bpmn:scriptTask></bpmn:process>',
        1,
    )
    revision = saved.json["revision"]
    revision = owner.client.put(
        draft_url, json={"files": {main: hostile}, "revision": revision}, headers=headers
    ).json["revision"]
    report = owner.client.post(draft_url + "/check", headers=headers).json
    assert report["errors"] >= 1
    assert any(p["element"] == "peek" and p["severity"] == "error" for p in report["problems"])
    refused = owner.client.post(draft_url + "/deploy", json={"comment": "试试"}, headers=headers)
    assert refused.status_code == 422 and any(p["element"] == "peek" for p in refused.json["problems"])

    # Fixed, it still needs a comment; with one it is version 2, the draft goes, the office log has it.
    revision = owner.client.put(
        draft_url, json={"files": {main: renamed}, "revision": revision}, headers=headers
    ).json["revision"]
    assert owner.client.post(draft_url + "/check", headers=headers).json["errors"] == 0
    no_comment = owner.client.post(draft_url + "/deploy", json={"comment": " "}, headers=headers)
    assert no_comment.status_code == 422 and "部署说明" in no_comment.json["message"]
    deployed = owner.client.post(draft_url + "/deploy", json={"comment": "初审改名"}, headers=headers)
    assert deployed.status_code == 200, deployed.text
    assert {"key": "home_adaptation", "version": 2, "created": True} in deployed.json["deployed"]
    assert owner.get(draft_url).status_code == 404
    with session_factory(studio_db[2])() as session:
        logged = session.scalars(select(OfficeLog).where(OfficeLog.kind == LogKind.DEPLOYED)).all()
        assert [(e.username, e.message) for e in logged] == [("process_owner", "初审改名")]

    page = owner.get("/processes/home_adaptation")
    assert "第 2 版" in page.text and "初审改名" in page.text
    diff = owner.get("/processes/home_adaptation/diff?from=1&to=2")
    assert diff.status_code == 200 and "两个版本的表单和决策表相同" in diff.text


def test_form_changes_are_listed_in_words_on_the_diff(people, bearer, studio_app):
    client = studio_app.test_client()
    for files, comment in ((bundle("diff_demo"), "第一版"), (bundle("diff_demo"), "第二版")):
        if comment == "第二版":
            files["forms/check.json"] = form("核实", "note", "phone", required=["phone"])
        answer = client.post(
            "/api/processes",
            data={"comment": comment, "files": [(io.BytesIO(as_zip(files)), "diff_demo.zip")]},
            headers=bearer["process_owner"],
            content_type="multipart/form-data",
        )
        assert answer.status_code == 201, answer.text
    page = people["caseworker"].get("/processes/diff_demo/diff?from=1&to=2").text
    assert "forms/check.json" in page and "新增字段：phone" in page and "新增必填：phone" in page


def test_a_new_process_starts_from_a_small_diagram_and_bad_keys_are_refused(people):
    owner = people["process_owner"]
    bad = owner.post("/processes/new", {"key": "助餐", "name": "助餐"}, token_from="/processes")
    assert bad.status_code == 302
    assert "流程标识只能用" in owner.get("/processes").text
    made = owner.post("/processes/new", {"key": "meal_aid", "name": "助餐服务"}, token_from="/processes")
    assert made.status_code == 302 and made.headers["Location"].endswith("/processes/meal_aid/edit")
    draft = owner.get(draft_of(owner.get("/processes/meal_aid/edit").text)).json
    assert set(draft["files"]) == {"meal_aid.bpmn", "forms/handle.json"}
    assert 'name="助餐服务"' in draft["files"]["meal_aid.bpmn"]
    assert (
        owner.client.post(
            draft_of(owner.get("/processes/meal_aid/edit").text) + "/check", headers=csrf_header(owner)
        ).json["errors"]
        == 0
    )


def test_a_bundle_is_imported_as_a_draft_and_unsafe_zips_are_refused(people):
    owner = people["process_owner"]
    token = owner.token("/processes")
    imported = owner.client.post(
        "/processes/import",
        data={"csrf_token": token, "files": [(io.BytesIO(as_zip(bundle("imported_demo"))), "b.zip")]},
        content_type="multipart/form-data",
    )
    assert imported.status_code == 302 and imported.headers["Location"].endswith(
        "/processes/imported_demo/edit"
    )
    draft = owner.get(draft_of(owner.get("/processes/imported_demo/edit").text)).json
    assert set(draft["files"]) == {"imported_demo.bpmn", "forms/check.json", "forms/decide.json"}

    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../etc/x.bpmn", "<x/>")
    refused = owner.client.post(
        "/processes/import",
        data={"csrf_token": token, "files": [(io.BytesIO(evil.getvalue()), "evil.zip")]},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "不安全" in refused.text
    not_zip = owner.client.post(
        "/processes/import",
        data={"csrf_token": token, "files": [(io.BytesIO(b"MZ\x90\x00"), "tool.exe")]},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "不支持的文件" in not_zip.text


def test_the_form_preview_is_rendered_by_the_task_pages_macros(people):
    owner = people["process_owner"]
    schema = {
        "type": "object",
        "properties": {"kind": {"title": "类别", "type": "string", "enum": ["a", "b"]}},
    }
    shown = owner.client.post("/studio/forms/preview", json={"schema": schema}, headers=csrf_header(owner))
    assert shown.status_code == 200 and "类别" in shown.text and "<select" in shown.text
    hostile = {
        "type": "object",
        "properties": {"x": {"title": "<script>alert(1)</script>", "type": "string"}},
    }
    escaped = owner.client.post(
        "/studio/forms/preview", json={"schema": hostile}, headers=csrf_header(owner)
    ).text
    assert "<script>alert" not in escaped and "&lt;script&gt;" in escaped
    assert (
        people["caseworker"]
        .client.post(
            "/studio/forms/preview",
            json={"schema": schema},
            headers=csrf_header(people["caseworker"], "/inbox"),
        )
        .status_code
        == 403
    )


# --------------------------------------------------------------------------------------------------
# The API


def test_api_deploy_refuses_errors_with_the_report_and_names_the_element(studio_app, bearer):
    client = studio_app.test_client()
    files = bundle("api_bad")
    files["api_bad.bpmn"] = files["api_bad.bpmn"].replace(
        '<bpmn:userTask id="decide"',
        '<bpmn:scriptTask id="sneak" name="偷看"><bpmn:script>import os\nos.system("id")</bpmn:script></bpmn:scriptTask><bpmn:userTask id="decide"',
    )
    answer = client.post(
        "/api/processes",
        data={"comment": "x", "files": [(io.BytesIO(files[n].encode()), n.split("/")[-1]) for n in files]},
        headers=bearer["process_owner"],
        content_type="multipart/form-data",
    )
    assert answer.status_code == 422
    problems = answer.json["problems"]
    assert any(
        p["element"] == "sneak" and p["severity"] == "error" and "os" in p["message"] for p in problems
    )
    assert answer.json["message"] and answer.json["field_errors"]
    no_comment = client.post(
        "/api/processes",
        data={"files": [(io.BytesIO(as_zip(bundle("api_ok"))), "b.zip")]},
        headers=bearer["process_owner"],
        content_type="multipart/form-data",
    )
    assert no_comment.status_code == 422 and "comment" in no_comment.json["field_errors"]
    refused = client.post(
        "/api/processes",
        data={"comment": "x", "files": [(io.BytesIO(as_zip(bundle("api_ok"))), "b.zip")]},
        headers=bearer["caseworker"],
        content_type="multipart/form-data",
    )
    assert refused.status_code == 403


def test_api_the_interop_models_deploy_as_a_zip_and_one_runs_to_its_end_without_an_elder(studio_app, bearer):
    client = studio_app.test_client()
    deployed = client.post(
        "/api/processes",
        data={
            "comment": "SpiffWorkflow 示例",
            "files": [(io.BytesIO(as_zip(interop_bundle())), "interop.zip")],
        },
        headers=bearer["process_owner"],
        content_type="multipart/form-data",
    )
    assert deployed.status_code == 201, deployed.text
    assert deployed.json["key"] == "order_product" and deployed.json["version"] == 1

    described = client.get("/api/processes/order_product", headers=bearer["caseworker"]).json
    assert (
        described["versions"][0]["version"] == 1
        and described["versions"][0]["comment"] == "SpiffWorkflow 示例"
    )
    start = described["start"]
    assert start["needs_elder"] is False and start["startable"] is True
    assert set(start["schema"]["required"]) == {"product_name", "product_quantity"}

    case = client.post(
        "/api/cases",
        json={"process": "order_product", "data": ORDER_ANSWERS["Activity_1uazifo"]},
        headers=bearer["caseworker"],
    )
    assert case.status_code == 201, case.text
    case_id = case.json["id"]
    assert case.json["elder_id"] is None
    for _ in range(20):
        detail = client.get(f"/api/cases/{case_id}", headers=bearer["caseworker"]).json
        if detail["status"] != "running":
            break
        task = min(detail["open_tasks"], key=lambda t: t["step"])
        done = client.post(
            f"/api/tasks/{task['id']}/complete",
            json={"data": ORDER_ANSWERS.get(task["step"], {})},
            headers=bearer["caseworker"],
        )
        assert done.status_code == 200, done.text
    assert detail["status"] == "completed"
    assert detail["data"]["order_total"] == 65.0


def test_api_a_process_about_an_elder_says_so(studio_app, bearer):
    client = studio_app.test_client()
    described = client.get("/api/processes/home_adaptation", headers=bearer["caseworker"]).json
    assert (
        described["start"]["needs_elder"] is True and described["start"]["schema"] is None
    )  # no form to fill
    described = client.get("/api/processes/home_care", headers=bearer["caseworker"]).json
    assert described["start"]["needs_elder"] is True
    assert "requested_services" in described["start"]["schema"]["properties"]
    refused = client.post("/api/cases", json={"process": "home_adaptation"}, headers=bearer["caseworker"])
    assert refused.status_code == 422 and "elder_id" in refused.json["field_errors"]
    assert client.get("/api/processes/nothing_here", headers=bearer["caseworker"]).status_code == 404
    document = client.get("/api/openapi.json").json
    body = document["paths"]["/api/processes"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    assert "problems" in document["components"]["schemas"]["Error"]["properties"]


# --------------------------------------------------------------------------------------------------
# Moving running cases


def test_cases_are_migrated_in_a_batch_after_a_dry_run_and_one_is_moved_back(
    people, bearer, studio_app, studio_db
):
    client = studio_app.test_client()
    owner, caseworker = people["process_owner"], people["caseworker"]

    def deploy(files, comment):
        answer = client.post(
            "/api/processes",
            data={"comment": comment, "files": [(io.BytesIO(as_zip(files)), "m.zip")]},
            headers=bearer["process_owner"],
            content_type="multipart/form-data",
        )
        assert answer.status_code == 201, answer.text

    deploy(bundle("moving"), "第一版")
    # Three cases on version 1: the caseworker's start fills in 核实 (theirs), so it waits at the second
    # step; the process owner's two wait at 核实 for a caseworker.
    form_page = caseworker.get("/processes/moving/start")
    assert form_page.status_code == 200 and "核实" in form_page.text and 'name="f.note"' in form_page.text
    made = caseworker.post(
        "/processes/moving/start", {"f.note": "已核实"}, token_from="/processes/moving/start"
    )
    assert made.status_code == 302
    started = [int(re.search(r"/cases/(\d+)", caseworker.get(made.headers["Location"]).text).group(1))]
    for _ in range(2):
        made = owner.post("/processes/moving/start", {}, token_from="/processes/moving/start")
        assert made.status_code == 302 and "/cases/" in made.headers["Location"]
        started.append(int(made.headers["Location"].rsplit("/", 1)[-1]))
    api_cw = bearer["caseworker"]

    # Version 2 renames the second step and makes a field of 核实 required: cases at 核实 cannot move.
    files = bundle("moving", second_name="审批决定")
    files["forms/check.json"] = form("核实", "note", required=["note"])
    deploy(files, "第二版")

    page = owner.get("/processes/moving/migrate?to=2")
    assert page.status_code == 200, page.text
    rows = dict(
        re.findall(r'<tr class="(can-move|cannot-move)" data-case="(\d+)"', page.text)[i][::-1]
        for i in range(3)
    )
    assert rows == {
        str(started[0]): "can-move",
        str(started[1]): "cannot-move",
        str(started[2]): "cannot-move",
    }
    assert "新增了必填项（note）" in page.text

    token = owner.token("/processes/moving/migrate?to=2")
    posted = owner.client.post(
        "/processes/moving/migrate",
        data={"csrf_token": token, "to": "2", "scope": "all", "comment": "按新文件调整"},
    )
    assert posted.status_code == 302 and "batch=" in posted.headers["Location"]
    batch_id = int(posted.headers["Location"].rsplit("batch=", 1)[1])
    assert owner.get(f"/studio/migrations/{batch_id}.json").json["status"] == "queued"
    with session_factory(studio_db[2]).begin() as session:  # the worker's job
        case_moves.run_batches(session)
    progress = owner.get(f"/studio/migrations/{batch_id}.json").json
    assert progress | {"percent": 100} == {**progress, "status": "done", "total": 3, "moved": 1, "skipped": 2}

    with session_factory(studio_db[2])() as session:
        moved = session.get(Case, started[0])
        assert session.get(ProcessVersion, moved.process_version_id).version == 2
        assert session.get(ProcessVersion, session.get(Case, started[1]).process_version_id).version == 1
        trail = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == moved.id).order_by(CaseEvent.seq)
        ).all()
        assert trail[-1].kind == EventKind.MIGRATED and "按新文件调整" in (trail[-1].comment or "")
    assert client.get(f"/api/cases/{started[0]}", headers=api_cw).json["current_step"] == "审批决定"

    # Moved back while it has not moved since: on version 1 again, the undo in its trail too.
    page = owner.get("/processes/moving/migrate?to=2")
    assert f"#{started[0]}" in page.text and "撤回" in page.text
    back = owner.post(
        f"/cases/{started[0]}/move-back",
        {"key": "moving", "to": "2", "comment": "撤回迁移"},
        token_from="/processes/moving/migrate?to=2",
    )
    assert back.status_code == 302
    with session_factory(studio_db[2])() as session:
        case = session.get(Case, started[0])
        assert session.get(ProcessVersion, case.process_version_id).version == 1
        assert case.status == CaseStatus.RUNNING
    again = owner.post(f"/cases/{started[0]}/move-back", {"comment": "再撤"}, token_from="/processes/moving")
    assert again.status_code == 404
