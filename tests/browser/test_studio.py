"""The process owners' studio components (webapp/static/studio) in a real Chromium, under a strict
Content-Security-Policy: the BPMN editor with our properties panel, validation markers, the DMN editor, the
diff of two versions and the form editor with its server-rendered preview.

The components are served from the built bundle (webapp/static/studio/dist, `npm run build`) by a small
HTTP server started here, with a test-only harness page (tests/browser/studio/) and a fixture preview
endpoint standing in for the server's; the pages that embed them for real belong to the app."""

from __future__ import annotations

import html
import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from lxml import etree

from .conftest import LAPTOP, ROOT, needs_chromium

DIST = ROOT / "webapp" / "static" / "studio" / "dist"
HARNESS = Path(__file__).parent / "studio"
STATIC = ROOT / "webapp" / "static"
BPMN = ROOT / "bpmn"
INTEROP = ROOT.parent.parent / "shared" / "interop" / "spiff-example-cli"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CSP = (
    "default-src 'self'; script-src 'self' 'report-sample'; style-src 'self' 'report-sample'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# The only things the policy refuses: style="" attributes that two libraries write through innerHTML (the
# properties panel's container height, dmn-js's bpmn.io logo position). studio.css gives them the same
# styles by class. Anything else refused (a script, eval, another style) fails the test.
REFUSED_LIBRARY_STYLES = ("height: 100%", "position: absolute; bottom: 15px; right: 15px", "vertical-align:middle")
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
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".map": "application/json",
         ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".eot": "application/vnd.ms-fontobject",
         ".svg": "image/svg+xml", ".txt": "text/plain"}


def render_preview(schema: dict) -> str:
    """The fixture's stand-in for the server's form preview: one labelled field per property, escaped."""
    rows = []
    for key, spec in (schema.get("properties") or {}).items():
        title = html.escape(str(spec.get("title", key)))
        rows.append(f'<div class="field" data-path="{html.escape(key)}"><label>{title}</label><input disabled></div>')
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
                    return self._send(HTTPStatus.UNPROCESSABLE_ENTITY, body, "application/json; charset=utf-8")

                if record["csrf"] != CSRF_TOKEN:
                    return fail("CSRF 令牌无效")
                try:
                    schema = json.loads(raw)["schema"]
                except (ValueError, KeyError, TypeError):
                    return fail("请求不是 {\"schema\": …}")
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
            lambda msg: self.errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
        )

    def open(self, view: str, fixture: str | None = None, ready: str | None = None):
        self.page.goto(f"/harness/harness.html?view={view}&fixture={fixture or view}")
        if ready:
            self.page.wait_for_selector(f"{ready}[data-ready='1']")

    def assert_clean(self):
        violations = [
            v for v in self.page.evaluate("window.cspViolations")
            if not (v["directive"] == "style-src-attr" and v["sample"].startswith(REFUSED_LIBRARY_STYLES))
        ]
        assert violations == [], violations
        errors = [e for e in self.errors if "Applying inline style violates" not in e]
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


def canonical(element) -> tuple:
    """An element as (tag, attributes, text, children) with children sorted: the same model whatever the
    order, indentation or namespace prefixes an exporter chose."""
    text = (element.text or "").strip()
    children = tuple(sorted(canonical(child) for child in element if isinstance(child.tag, str)))
    return (element.tag, tuple(sorted(element.attrib.items())), text, children)


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
        **bundle_of(path.parent if path.parent.name != "spiff-example-cli" else path.parent),
        **extra,
    }


@needs_chromium
def test_every_shipped_diagram_round_trips_through_the_editor_unchanged(chromium, studio_server):
    """Import, export: every element (extensions, conditions, timers, scripts, lanes, DI) comes back the same."""
    home = BPMN / "home_adaptation" / "home_adaptation.bpmn"
    editor_fixture(studio_server, "roundtrip", home)
    studio = StudioPage(chromium, studio_server)
    studio.open("editor", "roundtrip", ready="#canvas")
    checked = 0
    for path in shipped_diagrams():
        original = path.read_text(encoding="utf-8")
        exported = studio.page.evaluate(
            "async (xml) => { await window.studioHarness.editor.importXml(xml); return window.studioHarness.editor.getXml(); }",
            original,
        )
        before, after = by_id(original), by_id(exported)
        assert before.keys() == after.keys(), (path.name, before.keys() ^ after.keys())
        changed = [key for key in before if before[key] != after[key]]
        assert changed == [], (path.name, changed[:5])
        assert extensions_by_owner(original) == extensions_by_owner(exported), path.name
        checked += 1
    assert checked >= 13  # 8 shipped diagrams and 5 interop models
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
        """(id) => window.studioHarness.editor.modeler.get('elementRegistry').get(id).incoming[0].id""", task_id
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
        [{"element": flow_id, "severity": "error", "message": "分支网关“初审意见？”的这条出口没有条件，也不是默认路径"}],
    )
    marked = f"#canvas .djs-connection[data-element-id='{flow_id}'].studio-problem-error"
    assert page.locator(marked).count() == 1
    assert page.locator("#canvas .studio-problem-badge.is-error").count() == 1
    page.click(f"#problems button[data-element='{flow_id}']")  # the list entry selects the flow
    assert page.locator(".bio-properties-panel-header-type").inner_text() == "顺序流"
    page.fill("#bio-properties-panel-spiff-condition-expression", CONDITION)
    page.wait_for_function("(c) => (window.studioHarness.lastXml || '').includes(c.replace(/\"/g, '&#34;'))"
                           " || (window.studioHarness.lastXml || '').includes(c)", arg=CONDITION)
    studio.page.evaluate("() => window.studioHarness.editor.setProblems([])")  # validated again: clean
    assert page.locator("#canvas .studio-problem-error").count() == 0
    assert page.locator("#problems").inner_text().strip() == "没有发现问题。"

    # the editor as a process owner sees it on a 1366x768 laptop, the new task selected
    studio.page.evaluate(
        "(p) => window.studioHarness.editor.setProblems(p)",
        [{"element": task_id, "severity": "warning",
          "message": f"编号 {task_id} 是自动生成的，请改为有意义的英文编号（如 home_check）"}],
    )
    page.evaluate("window.scrollTo(0, 0)")
    studio.click_element(task_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
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
        for p in new_task.findall("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)
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
    expected_changes = {"township_review", "township_review_di", "township_decision", "lane_caseworker",
                        "home_adaptation_lanes", "home_adaptation", "home_adaptation_definitions",
                        "home_adaptation_diagram", "home_adaptation_plane", "home_adaptation_collaboration"}
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
