"""The dashboard and the case list in a real browser, on a laptop (1366 px) and a phone (390 px), on the demo
county with its demo cases: the charts draw, a bar opens the list behind it, the case list filters. The
screenshots are kept in docs/screenshots/ for the README."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from werkzeug.serving import make_server

from workflows import clock, demo, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base

from .conftest import PASSWORD, ROOT, Person, _free_port, _on_clock, needs_chromium

SCREENSHOTS = ROOT / "docs" / "screenshots"
# A Wednesday in the demo's month, 10:00 in Beijing.
WHEN = datetime(2026, 11, 18, 10, 0, tzinfo=clock.LOCAL)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("supervision")
    url = f"sqlite:///{folder / 'demo.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    demo_clock = clock.ManualClock(WHEN)
    with clock.using(demo_clock), session_factory(engine).begin() as session:
        versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
        demo.load_demo(session, PASSWORD)
    from webapp import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-tests", "UPLOAD_DIR": str(folder / "up")})
    app.wsgi_app = _on_clock(app.wsgi_app, demo_clock)
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["db_engine"].dispose()
        engine.dispose()


@pytest.fixture(scope="module")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def _charts_drawn(page) -> dict:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('canvas[data-chart]')]
             .filter(c => !c.parentElement.hidden)
             .map(c => [c.dataset.chart, (window.Chart.getChart(c) || {data: {labels: []}}).data.labels.length]))"""
    )


@needs_chromium
def test_dashboard_on_a_laptop_draws_its_charts_and_a_bar_opens_its_list(chromium, demo_server, screenshots):
    approver = Person(chromium, demo_server, "approver", screenshots)
    page = approver.page
    page.goto("/dashboard")
    page.wait_for_function("() => window.Chart && document.querySelectorAll('canvas[data-chart]').length > 0")
    drawn = _charts_drawn(page)
    assert drawn["open"] > 0 and drawn["visits"] > 0 and drawn["levels"] == 6, drawn
    assert "月探访率" in page.inner_text(".kpis")
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
    # Click the first bar of the open-cases chart: the case list of that process opens.
    point = page.evaluate(
        """() => { const c = document.querySelector('canvas[data-chart="open"]');
                   const bar = window.Chart.getChart(c).getDatasetMeta(0).data[0];
                   const box = c.getBoundingClientRect();
                   return {x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2}; }"""
    )
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url("**/cases?*")
    assert "status=running" in page.url and "process=" in page.url
    assert "共" in page.inner_text("h1")
    # A figure in the tables opens its list too: the month's unvisited elders.
    page.goto("/dashboard")
    page.click(".kpis a.kpi >> nth=2")
    page.wait_for_url("**/dashboard/visits**")
    assert "未探访名单" in page.inner_text("h1")
    assert not approver.errors, approver.errors
    approver.close()


@needs_chromium
def test_dashboard_on_a_phone(chromium, demo_server, screenshots):
    approver = Person(chromium, demo_server, "approver", screenshots, phone=True)
    page = approver.page
    page.goto("/dashboard")
    page.wait_for_function("() => window.Chart && document.querySelectorAll('canvas[data-chart]').length > 0")
    assert _charts_drawn(page)["visits"] > 0
    # Nothing wider than the phone: the page does not scroll sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshots / "dashboard-phone.png"), full_page=False)
    page.locator("#visits").screenshot(path=str(screenshots / "dashboard-phone-visits.png"))
    assert not approver.errors, approver.errors
    approver.close()


@needs_chromium
def test_case_list_on_a_laptop_and_a_phone(chromium, demo_server, screenshots):
    caseworker = Person(chromium, demo_server, "caseworker", screenshots)
    page = caseworker.page
    page.goto("/cases")
    total = page.inner_text("h1 small")
    assert total.startswith("共")
    page.select_option("#case-filters select[name=status]", "running")
    page.click("#case-filters button.primary")
    page.wait_for_url("**/cases?*status=running*")
    rows = page.locator("table.cases tbody tr")
    assert rows.count() > 0
    assert all("办理中" in text for text in rows.all_inner_texts())
    assert "番田" not in page.inner_text("table.cases")  # another township's cases are not there
    page.goto("/cases")
    page.screenshot(path=str(screenshots / "case-list.png"), full_page=False)
    assert not caseworker.errors, caseworker.errors
    caseworker.close()

    phone = Person(chromium, demo_server, "caseworker", screenshots, phone=True)
    page = phone.page
    page.goto("/cases")
    assert page.locator("details.filters[open]").count() == 0  # folded on a phone: the list comes first
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshots / "case-list-phone.png"), full_page=False)
    phone.close()
