"""The process owners' studio components (webapp/static/studio) in a real Chromium, under a strict
Content-Security-Policy: the BPMN editor with our properties panel, validation markers, the DMN editor, the
diff of two versions and the form editor with its server-rendered preview.

The components are served from the built bundle (webapp/static/studio/dist, `npm run build`) by a small
HTTP server started here, with a test-only harness page (tests/browser/studio/) and a fixture preview
endpoint standing in for the server's; the pages that embed them for real belong to the app."""

from __future__ import annotations

import html
import json
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from lxml import etree
from playwright.sync_api import expect

from tests.factories import INTEROP, require_interop

from .conftest import LAPTOP, ROOT, needs_chromium

DIST = ROOT / "webapp" / "static" / "studio" / "dist"
HARNESS = Path(__file__).parent / "studio"
STATIC = ROOT / "webapp" / "static"
BPMN = ROOT / "bpmn"
# The README's screenshots are refreshed on request (they change with every run: new elements get new
# ids); otherwise they go with the other test artifacts.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("ELDERCARE_DOC_SCREENSHOTS") == "1"
    else ROOT / "test-artifacts" / "studio"
)
CSP = (
    "default-src 'self'; script-src 'self' 'report-sample'; style-src 'self' 'report-sample'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# The only things the policy refuses: style="" attributes that two libraries write through innerHTML (the
# properties panel's container height, dmn-js's bpmn.io logo position). studio.css gives them the same
# styles by class. Anything else refused (a script, eval, another style) fails the test.
REFUSED_LIBRARY_STYLES = (
    "height: 100%",
    "position: absolute; bottom: 15px; right: 15px",
    "vertical-align:middle",
)
CSRF_HEADER, CSRF_TOKEN = "X-CSRFToken", "studio-test-token"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
ROLES = [
    {"value": "village_assistant", "label": "养老协理员"},
    {"value": "caseworker", "label": "乡镇经办人"},
    {"value": "assessor", "label": "评估员"},
    {"value": "approver", "label": "县民政局审批人"},
    {"value": "provider", "label": "服务机构"},
    {"value": "facility_admin", "label": "养老机构"},
]
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".map": "application/json",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".eot": "application/vnd.ms-fontobject",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
}


def render_preview(schema: dict) -> str:
    """The fixture's stand-in for the server's form preview: one labelled field per property, escaped."""
    rows = []
    for key, spec in (schema.get("properties") or {}).items():
        title = html.escape(str(spec.get("title", key)))
        rows.append(
            f'<div class="field" data-path="{html.escape(key)}"><label>{title}</label><input disabled></div>'
        )
    title = html.escape(str(schema.get("title", "")))
    return f'<form class="taskform preview"><h3>{title}</h3>{"".join(rows)}</form>'


class StudioServer:
    """Serves the bundle, the harness, fixtures the test sets, and the preview endpoint, all under the CSP."""

    def __init__(self):
        self.fixtures: dict[str, dict] = {}
        self.previews: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _send(self, status, body: bytes, content_type: str):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Security-Policy", CSP)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _file(self, base: Path, rest: str):
                path = (base / unquote(rest)).resolve()
                if not path.is_relative_to(base.resolve()) or not path.is_file():
                    return self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                content_type = TYPES.get(path.suffix, "application/octet-stream")
                if content_type.startswith("text/") or content_type == "application/json":
                    content_type += "; charset=utf-8"
                return self._send(HTTPStatus.OK, path.read_bytes(), content_type)

            def do_GET(self):
                path = urlparse(self.path).path
                if path.startswith("/harness/"):
                    return self._file(HARNESS, path.removeprefix("/harness/"))
                if path.startswith("/studio/dist/"):
                    return self._file(DIST, path.removeprefix("/studio/dist/"))
                if path == "/favicon.ico":
                    return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
                if path == "/static/app.css":
                    return self._file(STATIC, "app.css")
                if path.startswith("/fixtures/"):
                    name = unquote(path.removeprefix("/fixtures/"))
                    if name not in owner.fixtures:
                        return self._send(HTTPStatus.NOT_FOUND, b"{}", "application/json")
                    body = json.dumps(owner.fixtures[name], ensure_ascii=False).encode()
                    return self._send(HTTPStatus.OK, body, "application/json; charset=utf-8")
                return self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

            def do_POST(self):
                if urlparse(self.path).path != "/preview":
                    return self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, 1_000_000))
                record = {"csrf": self.headers.get(CSRF_HEADER), "type": self.headers.get("Content-Type")}
                owner.previews.append(record)

                def fail(message):
                    body = json.dumps({"error": message}, ensure_ascii=False).encode()
                    return self._send(
                        HTTPStatus.UNPROCESSABLE_ENTITY, body, "application/json; charset=utf-8"
                    )

                if record["csrf"] != CSRF_TOKEN:
                    return fail("CSRF 令牌无效")
                try:
                    schema = json.loads(raw)["schema"]
                except (ValueError, KeyError, TypeError):
                    return fail('请求不是 {"schema": …}')
                record["schema"] = schema
                if not schema.get("properties"):
                    return fail("表单没有任何字段（properties 为空）")
                return self._send(HTTPStatus.OK, render_preview(schema).encode(), "text/html; charset=utf-8")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.thread.join(timeout=10)
        self.httpd.server_close()


@pytest.fixture(scope="module")
def studio_server():
    if not (DIST / "studio.js").is_file():
        pytest.fail("webapp/static/studio/dist/ is missing: run `npm run build` (scripts/setup.sh does it)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with StudioServer() as server:
        yield server


class StudioPage:
    """A laptop-sized page of the harness that records page errors, console errors and CSP violations."""

    def __init__(self, chromium, server: StudioServer, viewport=LAPTOP):
        self.context = chromium.new_context(
            base_url=server.url, locale="zh-CN", timezone_id="Asia/Shanghai", viewport=viewport
        )
        self.context.set_default_timeout(15000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                self.errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )

    def open(self, view: str, fixture: str | None = None, ready: str | None = None, lang: str = "zh"):
        self.page.goto(f"/harness/harness.html?view={view}&fixture={fixture or view}&lang={lang}")
        if ready:
            self.page.wait_for_selector(f"{ready}[data-ready='1']")

    def assert_clean(self, expected_errors: tuple[str, ...] = ()):
        violations = [
            v
            for v in self.page.evaluate("window.cspViolations")
            if not (
                v["directive"] == "style-src-attr"
                and v["sample"]
                and any(
                    known.startswith(v["sample"]) or v["sample"].startswith(known)
                    for known in REFUSED_LIBRARY_STYLES
                )
            )
        ]
        assert violations == [], violations
        errors = [
            e
            for e in self.errors
            if "Applying inline style violates" not in e and not any(x in e for x in expected_errors)
        ]
        assert errors == [], errors

    def point_on(self, element_id: str) -> tuple[float, float]:
        """Screen coordinates of a point of an element that nothing covers (a context pad may lie over part of
        it): a point of its outline grid, for a flow a point along it."""
        point = self.page.evaluate(
            """(id) => {
                const group = document.querySelector(`#canvas .djs-element[data-element-id="${id}"]`);
                const hit = group.querySelector('.djs-hit');
                const matrix = hit.getScreenCTM();
                const toScreen = (x, y) => [x * matrix.a + y * matrix.c + matrix.e, x * matrix.b + y * matrix.d + matrix.f];
                const candidates = [];
                if (hit.tagName !== 'rect' && hit.getTotalLength) {
                  const length = hit.getTotalLength();
                  for (const f of [0.5, 0.3, 0.7, 0.15, 0.85]) {
                    const p = hit.getPointAtLength(length * f); candidates.push(toScreen(p.x, p.y));
                  }
                } else {
                  const box = hit.getBBox();
                  for (const fy of [0.5, 0.3, 0.7, 0.15, 0.85]) for (const fx of [0.5, 0.3, 0.7, 0.15, 0.85]) {
                    candidates.push(toScreen(box.x + box.width * fx, box.y + box.height * fy));
                  }
                }
                return candidates.find(([x, y]) => {
                  const top = document.elementFromPoint(x, y);
                  return top && top.closest('.djs-element') === group;
                }) || null;
            }""",
            element_id,
        )
        assert point, f"{element_id} is covered everywhere on the screen"
        return tuple(point)

    def click_element(self, element_id: str):
        x, y = self.point_on(element_id)
        self.page.mouse.click(x, y)
        self.page.wait_for_function(
            """(id) => window.studioHarness.editor.modeler.get('selection').get().some(e => e.id === id)""",
            arg=element_id,
        )

    def xml(self) -> str:
        return self.page.evaluate("window.studioHarness.editor.getXml()")

    def close(self):
        self.context.close()


def bundle_of(folder: Path) -> dict:
    """What a page passes to the editor about one process bundle: its forms and decisions."""
    decision_ids = []
    for dmn in sorted(folder.glob("*.dmn")) + sorted((BPMN / "shared").glob("*.dmn")):
        root = etree.parse(str(dmn)).getroot()
        decision_ids += [d.get("id") for d in root.iter("{*}decision")]
    return {
        "formFiles": sorted(p.name for p in (folder / "forms").glob("*.json")),
        "decisionIds": sorted(set(decision_ids)),
        "roles": ROLES,
    }


# Attributes whose value is the BPMN default: bpmn-js leaves them out of its export, which means the same.
DEFAULT_ATTRIBUTES = {("cancelActivity", "true"), ("isInterrupting", "true")}


def canonical(element) -> tuple:
    """An element as (tag, attributes, text, children) with children sorted: the same model whatever the
    order, indentation or namespace prefixes an exporter chose."""
    text = (element.text or "").strip()
    children = tuple(sorted(canonical(child) for child in element if isinstance(child.tag, str)))
    attributes = tuple(sorted(item for item in element.attrib.items() if item not in DEFAULT_ATTRIBUTES))
    return (element.tag, attributes, text, children)


def by_id(xml: str) -> dict[str, tuple]:
    root = etree.fromstring(xml.encode())
    return {el.get("id"): canonical(el) for el in root.iter() if isinstance(el.tag, str) and el.get("id")}


def extensions_by_owner(xml: str) -> dict[str, tuple]:
    """For each element with SpiffWorkflow extensions: the canonical form of its extensionElements."""
    root = etree.fromstring(xml.encode())
    found = {}
    for ext in root.iter(f"{{{NS['bpmn']}}}extensionElements"):
        found[ext.getparent().get("id")] = canonical(ext)
    return found


def shipped_diagrams() -> list[Path]:
    return sorted(BPMN.glob("*/*.bpmn")) + sorted(INTEROP.glob("*.bpmn"))


def editor_fixture(server: StudioServer, name: str, path: Path, **extra):
    server.fixtures[name] = {
        "title": path.name,
        "xml": path.read_text(encoding="utf-8"),
        **bundle_of(path.parent),
        **extra,
    }


@needs_chromium
def test_every_shipped_diagram_round_trips_through_the_editor_unchanged(chromium, studio_server):
    """Import, export: every element (extensions, conditions, timers, scripts, lanes, DI) comes back the same."""
    home = BPMN / "home_adaptation" / "home_adaptation.bpmn"
    editor_fixture(studio_server, "roundtrip", home)
    studio = StudioPage(chromium, studio_server)
    studio.open("editor", "roundtrip", ready="#canvas")
    diagrams = shipped_diagrams()
    assert len([p for p in diagrams if p.is_relative_to(BPMN)]) >= 7, diagrams
    if INTEROP.is_dir():
        assert len(diagrams) >= 12, diagrams
    else:
        require_interop(skip=False)  # the shipped ones are still checked where the corpus is missing
    for path in diagrams:
        original = path.read_text(encoding="utf-8")
        exported = studio.page.evaluate(
            "async (xml) => { await window.studioHarness.editor.importXml(xml); return window.studioHarness.editor.getXml(); }",
            original,
        )
        before, after = by_id(original), by_id(exported)
        assert before.keys() == after.keys(), (path.name, before.keys() ^ after.keys())
        changed = [key for key in before if before[key] != after[key]]
        assert changed == [], (path.name, changed[:5])
        assert canonical(etree.fromstring(original.encode())) == canonical(
            etree.fromstring(exported.encode())
        )
        assert extensions_by_owner(original) == extensions_by_owner(exported), path.name
    studio.assert_clean()
    studio.close()


NEW_TASK = "入户核查"
NEW_FORM = "home_assessment.json"
RENAMED = "乡镇（街道）初审并核实材料"
CONDITION = 'decision == "verify_at_home"'


def _append_user_task(studio: StudioPage, after: str) -> tuple[str, str]:
    """Append a task after an element with the context pad, name it, make it a user task; return the ids of
    the task and of the flow into it."""
    page = studio.page
    studio.click_element(after)
    page.click(".djs-context-pad [data-action='append.append-task']")
    page.wait_for_selector(".djs-direct-editing-parent", state="visible")
    page.keyboard.type(NEW_TASK)
    page.mouse.click(*studio.point_on(after))  # clicking elsewhere ends the label editing
    task_id = page.evaluate(
        """(name) => window.studioHarness.editor.modeler.get('elementRegistry')
             .filter(e => e.businessObject && e.businessObject.name === name && e.type !== 'label')[0].id""",
        NEW_TASK,
    )
    studio.click_element(task_id)
    page.click(".djs-context-pad [data-action='replace']")
    page.click(".djs-popup [data-id='replace-with-user-task']")
    task_id = page.evaluate(  # replacing the type gives the shape a new id
        """(name) => window.studioHarness.editor.modeler.get('elementRegistry')
             .filter(e => e.type === 'bpmn:UserTask' && e.businessObject.name === name)[0].id""",
        NEW_TASK,
    )
    flow_id = page.evaluate(
        """(id) => window.studioHarness.editor.modeler.get('elementRegistry').get(id).incoming[0].id""",
        task_id,
    )
    return task_id, flow_id


@needs_chromium
def test_a_process_owner_edits_home_adaptation_and_sees_the_diff(chromium, studio_server):
    """Rename a task in the panel, add a user task with a form, get a marker for its flow without a condition,
    set the condition, export; then the diff against the shipped version lists and colours the changes."""
    shipped_path = BPMN / "home_adaptation" / "home_adaptation.bpmn"
    shipped = shipped_path.read_text(encoding="utf-8")
    editor_fixture(studio_server, "journey", shipped_path)
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("editor", "journey", ready="#canvas")
    assert page.locator(".djs-palette [data-action='create.task']").get_attribute("aria-label") == "任务"

    # 1. rename a task through the properties panel
    studio.click_element("township_review")
    assert page.locator(".bio-properties-panel-header-type").inner_text() == "用户任务"
    page.fill("#bio-properties-panel-name", RENAMED)
    page.wait_for_function("(name) => (window.studioHarness.lastXml || '').includes(name)", arg=RENAMED)

    # 2. a new user task after the township's decision, with a form from the bundle
    task_id, flow_id = _append_user_task(studio, "township_decision")
    assert page.locator("[data-group-id='group-spiff-form']").is_visible()
    options = page.locator("#bio-properties-panel-spiff-form-file option").all_inner_texts()
    assert NEW_FORM in options and "township_review.json" in options
    page.select_option("#bio-properties-panel-spiff-form-file", NEW_FORM)
    page.fill("#bio-properties-panel-spiff-due-workdays", "3")
    page.fill("#bio-properties-panel-spiff-instructions-text", "上门核实{{ elder_name }}的居住环境。")

    # 3. the server's validation finds the new flow without a condition: a marker on the diagram and the list
    studio.page.evaluate(
        "(problems) => window.studioHarness.editor.setProblems(problems)",
        [
            {
                "element": flow_id,
                "severity": "error",
                "message": "分支网关“初审意见？”的这条出口没有条件，也不是默认路径",
            }
        ],
    )
    marked = f"#canvas .djs-connection[data-element-id='{flow_id}'].studio-problem-error"
    assert page.locator(marked).count() == 1
    assert page.locator("#canvas .studio-problem-badge.is-error").count() == 1
    page.click(f"#problems button[data-element='{flow_id}']")  # the list entry selects the flow
    assert page.locator(".bio-properties-panel-header-type").inner_text() == "顺序流"
    page.fill("#bio-properties-panel-spiff-condition-expression", CONDITION)
    page.wait_for_function(
        "(c) => (window.studioHarness.lastXml || '').includes(c.replace(/\"/g, '&#34;'))"
        " || (window.studioHarness.lastXml || '').includes(c)",
        arg=CONDITION,
    )
    studio.page.evaluate("() => window.studioHarness.editor.setProblems([])")  # validated again: clean
    assert page.locator("#canvas .studio-problem-error").count() == 0
    assert page.locator("#problems").inner_text().strip() == "没有发现问题。"

    # the editor as a process owner sees it on a 1366x768 laptop, the new task selected
    studio.page.evaluate(
        "(p) => window.studioHarness.editor.setProblems(p)",
        [
            {
                "element": task_id,
                "severity": "warning",
                "message": f"编号 {task_id} 是自动生成的，请改为有意义的英文编号（如 home_check）",
            }
        ],
    )
    page.evaluate("window.scrollTo(0, 0)")
    studio.click_element(task_id)
    page.screenshot(path=str(SCREENSHOTS / "studio-editor.png"))

    # 4. the exported XML: what changed, and every other element exactly as shipped
    exported = studio.xml()
    root = etree.fromstring(exported.encode())
    renamed = root.find(".//bpmn:userTask[@id='township_review']", NS)
    assert renamed.get("name") == RENAMED
    new_task = root.find(f".//bpmn:userTask[@id='{task_id}']", NS)
    assert new_task.get("name") == NEW_TASK
    properties = {
        p.get("name"): p.get("value")
        for p in new_task.findall(
            "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS
        )
    }
    assert properties == {"formJsonSchemaFilename": NEW_FORM, "dueWorkdays": "3"}
    instructions = new_task.find("bpmn:extensionElements/spiffworkflow:instructionsForEndUser", NS)
    assert instructions.text == "上门核实{{ elder_name }}的居住环境。"
    flow = root.find(f".//bpmn:sequenceFlow[@id='{flow_id}']", NS)
    assert flow.get("sourceRef") == "township_decision" and flow.get("targetRef") == task_id
    condition = flow.find("bpmn:conditionExpression", NS)
    assert condition.text == CONDITION
    assert condition.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "bpmn:tFormalExpression"
    before_ext, after_ext = extensions_by_owner(shipped), extensions_by_owner(exported)
    assert {k: v for k, v in after_ext.items() if k != task_id} == before_ext  # other extensions untouched
    before, after = by_id(shipped), by_id(exported)
    # the renamed task, the gateway and lane that gained a flow and a task, their containers; bpmn-js also
    # gives a renamed shape's DI an empty <bpmndi:BPMNLabel/> (its bounds stay)
    expected_changes = {
        "township_review",
        "township_review_di",
        "township_decision",
        "lane_caseworker",
        "home_adaptation_lanes",
        "home_adaptation",
        "home_adaptation_definitions",
        "home_adaptation_diagram",
        "home_adaptation_plane",
        "home_adaptation_collaboration",
    }
    unexpected = {k for k in before if before[k] != after.get(k)} - expected_changes
    assert unexpected == set()
    studio.assert_clean()
    studio.close()

    # 5. the diff of the shipped and the edited version
    studio_server.fixtures["diff"] = {"title": "版本 1 → 草稿", "oldXml": shipped, "newXml": exported}
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("diff")
    page.wait_for_selector("#diff-new[data-ready='1']")
    entries = {e["id"]: e for e in page.evaluate("window.studioHarness.diff.entries")}
    assert entries[task_id]["kind"] == "added" and entries[flow_id]["kind"] == "added"
    assert entries["township_review"]["kind"] == "changed"
    assert f"名称：乡镇（街道）初审 → {RENAMED}" in entries["township_review"]["details"]
    assert page.locator(f"#diff-new [data-element-id='{task_id}'].studio-diff-added").count() == 1
    assert page.locator(f"#diff-old [data-element-id='{task_id}']").count() == 0
    assert page.locator("#diff-old [data-element-id='township_review'].studio-diff-changed").count() == 1
    assert page.locator("#diff-new [data-element-id='township_review'].studio-diff-changed").count() == 1
    listed = page.locator("#diff-list").inner_text()
    assert f"新增\n用户任务「{NEW_TASK}」（{task_id}）" in listed
    assert "修改\n用户任务「" + RENAMED + "」（township_review）" in listed
    page.click(f"#diff-list button[data-element='{task_id}']")
    assert page.locator(f"#diff-new [data-element-id='{task_id}'].studio-diff-focus").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "studio-diff.png"), full_page=True)
    studio.assert_clean()
    studio.close()


@needs_chromium
def test_a_decision_table_opens_in_the_dmn_editor_and_a_rule_is_changed(chromium, studio_server):
    dmn_path = BPMN / "home_adaptation" / "adaptation_eligibility.dmn"
    studio_server.fixtures["dmn"] = {"title": dmn_path.name, "xml": dmn_path.read_text(encoding="utf-8")}
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("dmn", ready="#dmn")
    tabs = page.locator("#dmn .studio-dmn-tab").all_inner_texts()
    assert tabs == ["决策需求图", "决策表：适老化改造申请条件"]
    assert (
        page.locator("#dmn .studio-dmn-tab[aria-selected='true']").inner_text()
        == "决策表：适老化改造申请条件"
    )
    table = page.locator("#dmn .tjs-table")
    assert table.is_visible()
    assert page.locator("#dmn .hit-policy .dms-label").inner_text() == "命中策略："
    assert page.locator("#dmn .hit-policy .dms-input").inner_text() == "第一条命中（FIRST）"
    assert page.locator("#dmn th.input-cell .clause").all_inner_texts() == ["当", "且", "且", "且"]
    assert page.locator("#dmn tbody tr").count() == 5

    # the county lowers the age for advanced-age households from 80 to 75
    cell = page.locator("#dmn td[data-element-id='advanced_age_age']")
    assert cell.inner_text().strip() == ">= 80"
    cell.locator("[contenteditable]").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(">= 75")
    basis = page.locator("#dmn td[data-element-id='advanced_age_eligibility_basis'] [contenteditable]")
    basis.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('"困难家庭高龄老年人（75周岁及以上）"')
    page.locator("#dmn .decision-table-name").click()
    page.wait_for_function(
        "() => (window.studioHarness.lastXml || '').includes('&gt;= 75')"
        " && window.studioHarness.lastXml.includes('75周岁及以上')"
    )
    exported = page.evaluate("window.studioHarness.dmn.getXml()")
    root = etree.fromstring(exported.encode())
    dmn = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"
    assert root.find(f".//{dmn}inputEntry[@id='advanced_age_age']/{dmn}text").text == ">= 75"
    basis_text = root.find(f".//{dmn}outputEntry[@id='advanced_age_eligibility_basis']/{dmn}text").text
    assert basis_text == '"困难家庭高龄老年人（75周岁及以上）"'
    # everything else as shipped: the other rules, the descriptions, the python expression language
    before = by_id(dmn_path.read_text(encoding="utf-8"))
    after = by_id(exported)
    assert {k for k in before if before[k] != after.get(k)} == {
        "advanced_age_age",
        "advanced_age_eligibility_basis",
        "advanced_age",
        "adaptation_eligibility_table",
        "adaptation_eligibility",
        "adaptation_eligibility_definitions",
    }
    page.screenshot(path=str(SCREENSHOTS / "studio-dmn.png"))
    studio.assert_clean()
    studio.close()


@needs_chromium
def test_validation_problems_are_listed_and_marked_and_lead_to_their_element(chromium, studio_server):
    editor_fixture(studio_server, "problems", BPMN / "home_adaptation" / "home_adaptation.bpmn")
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("editor", "problems", ready="#canvas")
    problems = [
        {
            "element": "township_decision",
            "severity": "error",
            "message": "分支网关“初审意见？”有一条出口没有条件，也不是默认路径",
        },
        {"element": "archive_household_file", "severity": "warning", "message": "用户任务没有表单"},
        {
            "element": "archive_household_file",
            "severity": "error",
            "message": "代码挂接的任务缺少“归档人”字段",
        },
        {
            "element": "verify_documents",
            "severity": "error",
            "message": "流程代码挂接的任务 verify_documents 已被删除或改名",
        },
        {"element": None, "severity": "warning", "message": "泳道“施工单位”不是系统中的角色"},
        {
            "element": "township_review",
            "severity": "warning",
            "message": '<img src=x id="injected">名称含尖括号',
        },
        {"severity": "bogus", "message": 42},  # malformed input from a server: shown as an error, not a crash
    ]
    page.evaluate("(p) => window.studioHarness.editor.setProblems(p)", problems)
    assert page.locator("#problems .studio-problems-summary").inner_text() == "4 个错误，3 个警告"
    assert page.locator("#injected").count() == 0  # a message is text, never markup
    assert '<img src=x id="injected">名称含尖括号' in page.locator("#problems").inner_text()
    assert page.locator("#canvas [data-element-id='township_decision'].studio-problem-error").count() == 1
    # an element with an error and a warning is marked as an error, once
    assert (
        page.locator("#canvas [data-element-id='archive_household_file'].studio-problem-error").count() == 1
    )
    assert page.locator("#canvas .studio-problem-badge").count() == 3
    missing = page.locator("#problems button[data-element='verify_documents']")
    assert "图中已没有此元素" in missing.inner_text() and missing.is_disabled()
    assert page.locator("#problems li", has_text="整个流程").count() == 2

    # the archive task lies far right, outside the view: its entry brings it into view and selects it
    page.click("#problems li:nth-child(2) button")
    page.wait_for_function(
        "() => window.studioHarness.editor.modeler.get('selection').get().map(e => e.id).join() === 'archive_household_file'"
    )
    assert page.locator(".bio-properties-panel-header-label").inner_text() == "归档（一户一档）"
    box = page.locator("#canvas [data-element-id='archive_household_file']").bounding_box()
    canvas = page.locator("#canvas").bounding_box()
    assert canvas["x"] <= box["x"] and box["x"] + box["width"] <= canvas["x"] + canvas["width"]
    # the badge's tooltip names both problems
    title = page.locator(
        "#canvas [data-container-id='archive_household_file'] .studio-problem-badge"
    ).get_attribute("title")
    assert "警告：用户任务没有表单" in title and "错误：代码挂接的任务缺少“归档人”字段" in title

    page.evaluate("() => window.studioHarness.editor.setProblems([])")
    assert (
        page.locator(
            "#canvas .studio-problem-badge, #canvas .studio-problem-error, #canvas .studio-problem-warning"
        ).count()
        == 0
    )
    studio.assert_clean()
    studio.close()


FORM_PATH = BPMN / "home_adaptation" / "forms" / "township_review.json"


@needs_chromium
def test_the_form_editor_preview_follows_the_json(chromium, studio_server):
    studio_server.fixtures["form"] = {
        "title": FORM_PATH.name,
        "text": FORM_PATH.read_text(encoding="utf-8"),
        "previewUrl": "/preview",
        "csrfHeader": CSRF_HEADER,
        "csrfToken": CSRF_TOKEN,
    }
    studio_server.previews.clear()
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("form")
    preview = page.locator("#form-preview")
    page.wait_for_selector("#form-preview[data-state='ready']")
    assert "审核意见" in preview.inner_text() and "意见说明（退回或不同意时必填）" in preview.inner_text()
    assert studio_server.previews[-1]["csrf"] == CSRF_TOKEN
    assert studio_server.previews[-1]["type"] == "application/json"
    assert studio_server.previews[-1]["schema"] == json.loads(FORM_PATH.read_text(encoding="utf-8"))
    assert page.locator("#form-code .cm-editor").is_visible()

    # a new field typed into the JSON appears in the preview once the typing stops
    changed = json.loads(FORM_PATH.read_text(encoding="utf-8"))
    changed["properties"]["home_visit_date"] = {"type": "string", "format": "date", "title": "入户核查日期"}
    page.locator("#form-code .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(changed, ensure_ascii=False, indent=2))
    page.wait_for_function(
        "() => document.querySelector('#form-preview').dataset.state === 'ready'"
        " && document.querySelector('#form-preview').innerText.includes('入户核查日期')"
    )
    assert json.loads(page.evaluate("window.studioHarness.form.getText()")) == changed
    assert studio_server.previews[-1]["schema"] == changed

    # broken JSON: said in Chinese, nothing sent, the last good preview stays
    sent = len(studio_server.previews)
    page.keyboard.press("Control+End")
    page.keyboard.type(",")
    page.wait_for_selector("#form-preview[data-state='invalid']")
    assert page.locator("#form-preview .studio-form-status").inner_text().startswith("JSON 有错误：")
    assert "入户核查日期" in preview.inner_text()
    assert len(studio_server.previews) == sent
    page.keyboard.press("Backspace")
    page.wait_for_selector("#form-preview[data-state='ready']")

    # the server refuses a form without fields: its reason is shown
    page.locator("#form-code .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text('{"type": "object", "title": "空表单", "properties": {}}')
    page.wait_for_selector("#form-preview[data-state='failed']")
    assert (
        page.locator("#form-preview .studio-form-status").inner_text()
        == "预览失败：表单没有任何字段（properties 为空）"
    )
    studio.assert_clean(expected_errors=("status of 422",))  # the browser logs the refused preview
    studio.close()


@needs_chromium
def test_the_panel_edits_what_the_engine_reads(chromium, studio_server):
    """Each group of our panel on a real element of home_adaptation: shows what the diagram says, and an edit
    comes out in the XML the way SpiffWorkflow reads it."""
    shipped = (BPMN / "home_adaptation" / "home_adaptation.bpmn").read_text(encoding="utf-8")
    editor_fixture(studio_server, "panel", BPMN / "home_adaptation" / "home_adaptation.bpmn")
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("editor", "panel", ready="#canvas")

    def select(element_id):  # what a problem list entry does: bring the element into view and select it
        assert page.evaluate("(id) => window.studioHarness.editor.focusElement(id)", element_id)
        page.wait_for_function(
            "(id) => document.querySelector('#bio-properties-panel-id')?.value === id", arg=element_id
        )

    def field(entry):
        return page.locator(f"#bio-properties-panel-{entry}")

    def saved(text):  # the panel writes after a short debounce: wait until the diagram has it
        page.wait_for_function(
            "(t) => (window.studioHarness.lastXml || '').includes(t)", arg=html.escape(text, quote=False)
        )

    # lane: the role it stands for, chosen from the system's roles
    select("lane_provider")
    assert field("spiff-lane-role").input_value() == "provider"
    field("spiff-lane-role").select_option("facility_admin")
    expect(field("name")).to_have_value("养老机构 (facility_admin)")

    # business rule task: the decision table, from the bundle's decisions
    select("check_eligibility")
    assert field("spiff-called-decision").input_value() == "adaptation_eligibility"
    assert "adaptation_subsidy_cap" in field("spiff-called-decision").locator("option").all_inner_texts()
    field("spiff-called-decision").select_option("adaptation_subsidy_cap")

    # script task: its one statement; and a pre-script on it
    select("price_plan")
    assert (
        field("spiff-script-text").input_value() == "plan_summary = price_adaptation_plan(plan, subsidy_cap)"
    )
    field("spiff-script-text").fill("plan_summary = price_adaptation_plan(plan, subsidy_cap, county)")
    saved("price_adaptation_plan(plan, subsidy_cap, county)")
    # leaving the text box resizes it; a header clicked in that same moment would move under the pointer
    field("spiff-script-text").blur()
    page.locator(
        "[data-group-id='group-spiff-pre-post-scripts'] .bio-properties-panel-group-header-title"
    ).click()
    expect(field("spiff-pre-script")).to_be_visible()
    field("spiff-pre-script").fill('county = "410825"')
    saved('county = "410825"')

    # message throw event: the payload; receive task: the variable the message lands in
    select("plan_refused")
    assert field("spiff-message-payload").input_value() == "plan_summary"
    field("spiff-message-payload").fill('{"summary": plan_summary}')
    saved('{"summary": plan_summary}')
    select("public_notice")
    assert field("spiff-message-variable").input_value() == "objection"
    assert field("spiff-instructions-text").input_value().startswith("改造方案（总价")

    # timer: kind and Python expression (the stock ISO-only timer group is replaced)
    select("notice_period_ends")
    assert page.locator("[data-group-id='group-timer']").count() == 0
    assert field("spiff-timer-type").input_value() == "timeDuration"
    assert field("spiff-timer-expression").input_value() == "adaptation_notice_period()"
    field("spiff-timer-expression").fill('"P10D"')
    saved('"P10D"')

    # default flow: shown, its condition box disabled; making a conditional flow the default drops its condition
    select("township_rejected")
    assert field("spiff-default-flow").is_checked()
    assert field("spiff-condition-expression").is_disabled()
    select("township_sent_back")
    assert field("spiff-condition-expression").input_value() == 'decision == "send_back"'
    page.locator("[data-entry-id='spiff-default-flow'] label").click()
    page.wait_for_function(
        "() => (window.studioHarness.lastXml || '').includes('default=\"township_sent_back\"')"
    )

    root = etree.fromstring(studio.xml().encode())

    def one(xpath):
        (found,) = root.xpath(xpath, namespaces=NS)
        return found

    ext = "bpmn:extensionElements/spiffworkflow:"
    assert one("//bpmn:lane[@id='lane_provider']").get("name") == "养老机构 (facility_admin)"
    assert (
        one(f"//bpmn:businessRuleTask[@id='check_eligibility']/{ext}calledDecisionId").text
        == "adaptation_subsidy_cap"
    )
    price = one("//bpmn:scriptTask[@id='price_plan']")
    assert (
        price.find("bpmn:script", NS).text
        == "plan_summary = price_adaptation_plan(plan, subsidy_cap, county)"
    )
    assert price.find(f"{ext}preScript", NS).text == 'county = "410825"'
    payload = one(
        f"//bpmn:intermediateThrowEvent[@id='plan_refused']/bpmn:messageEventDefinition/{ext}messagePayload"
    )
    assert payload.text == '{"summary": plan_summary}'
    assert one(f"//bpmn:receiveTask[@id='public_notice']/{ext}messageVariable").text == "objection"
    assert one("//bpmn:timerEventDefinition[@id='notice_period_timer']/bpmn:timeDuration").text == '"P10D"'
    assert one("//bpmn:exclusiveGateway[@id='township_decision']").get("default") == "township_sent_back"
    assert one("//bpmn:sequenceFlow[@id='township_sent_back']").find("bpmn:conditionExpression", NS) is None
    # the other extensions on the edited elements are as they were
    before = extensions_by_owner(shipped)
    after = extensions_by_owner(studio.xml())
    assert after["public_notice"] == before["public_notice"]
    untouched = set(before) - {"check_eligibility", "price_plan", "plan_refused_message"}
    assert {k: after.get(k) for k in untouched} == {k: before[k] for k in untouched}
    studio.assert_clean()
    studio.close()


@needs_chromium
def test_people_who_chose_english_get_the_studio_in_english(chromium, studio_server):
    editor_fixture(studio_server, "english", BPMN / "home_adaptation" / "home_adaptation.bpmn")
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("editor", "english", ready="#canvas", lang="en")
    assert (
        page.locator(".djs-palette [data-action='create.task']").get_attribute("aria-label") == "Create task"
    )
    assert page.evaluate("(id) => window.studioHarness.editor.focusElement(id)", "township_review")
    expect(
        page.locator("[data-group-id='group-spiff-form'] .bio-properties-panel-group-header-title")
    ).to_have_text("Form")
    assert page.locator("label[for='bio-properties-panel-spiff-due-workdays']").inner_text() == (
        "Time limit (working days)"
    )
    page.evaluate(
        "() => window.studioHarness.editor.setProblems([{element: 'township_review', severity: 'warning', message: 'x'}])"
    )
    assert page.locator("#problems .studio-problems-summary").inner_text() == "Errors: 0, warnings: 1"
    studio.assert_clean()
    studio.close()


@needs_chromium
def test_a_file_that_is_not_bpmn_is_refused_in_chinese_and_the_editor_goes_on(chromium, studio_server):
    editor_fixture(studio_server, "broken", BPMN / "home_adaptation" / "home_adaptation.bpmn")
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("editor", "broken", ready="#canvas")
    refused = page.evaluate(
        """async () => {
            try { await window.studioHarness.editor.importXml('<bpmn:definitions><unclosed>'); return null; }
            catch (error) { return String(error.message); }
        }"""
    )
    assert refused
    assert page.locator("#canvas .studio-error").inner_text().startswith("流程图无法打开：")
    shipped = (BPMN / "visiting_care" / "visiting_care.bpmn").read_text(encoding="utf-8")
    page.evaluate("(xml) => window.studioHarness.editor.importXml(xml)", shipped)
    assert page.locator("#canvas .studio-error").count() == 0
    assert page.locator("#canvas [data-element-id='visiting_care_participant']").count() == 1
    studio.assert_clean()
    studio.close()


@needs_chromium
def test_the_diff_names_what_changed_inside_an_element(chromium, studio_server):
    """A new county version that changes a form file, a decision table, a condition and a timer: each element
    is listed as changed with what changed in it; two equal versions say so."""
    old = (BPMN / "home_adaptation" / "home_adaptation.bpmn").read_text(encoding="utf-8")
    new = (
        old.replace('value="township_review.json"', 'value="township_review_2027.json"')
        .replace(
            ">adaptation_eligibility</spiffworkflow:calledDecisionId>",
            ">eligibility_2027</spiffworkflow:calledDecisionId>",
        )
        .replace(
            'decision == "send_back"</bpmn:conditionExpression>',
            'decision in ("send_back", "incomplete")</bpmn:conditionExpression>',
            1,
        )
        .replace("adaptation_notice_period()", '"P7D"')
    )
    assert new.count("2027") == 2 and '"P7D"' in new and "incomplete" in new
    studio_server.fixtures["diff-inside"] = {"title": "", "oldXml": old, "newXml": new}
    studio_server.fixtures["diff-same"] = {"title": "", "oldXml": old, "newXml": old}
    studio = StudioPage(chromium, studio_server)
    page = studio.page
    studio.open("diff", "diff-inside")
    page.wait_for_selector("#diff-new[data-ready='1']")
    entries = {e["id"]: (e["kind"], e["details"]) for e in page.evaluate("window.studioHarness.diff.entries")}
    assert entries == {
        "township_review": ("changed", ["表单文件"]),
        "check_eligibility": ("changed", ["调用的决策表"]),
        "township_sent_back": ("changed", ["条件"]),
        "notice_period_ends": ("changed", ["定时"]),
    }
    assert page.locator("#diff-old .studio-diff-changed").count() == 4
    studio.open("diff", "diff-same")
    page.wait_for_selector("#diff-new[data-ready='1']")
    assert page.locator("#diff-list").inner_text().strip() == "两个版本的流程图相同。"
    studio.assert_clean()
    studio.close()
