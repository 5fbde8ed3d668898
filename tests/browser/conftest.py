"""Browser tests: the real app served by a real WSGI server on a free loopback port, with a fresh SQLite
database and the shipped processes, driven by Playwright in Debian's headless Chromium. Screenshots go to
test-artifacts/.

The server answers on the test's clock (a `ManualClock` every request runs under), so a journey can move
time on, e.g. into the next service month, and run the background jobs on that same clock."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from datetime import datetime
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from workflows import clock, demo, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base, Role
from workflows.users import create_user

CHROMIUM = os.environ.get("ELDERCARE_CHROMIUM", "/usr/bin/chromium")
# The browser's own widgets (date fields, file pickers) in Chinese, as on a county office's PC.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=zh-CN"]
PASSWORD = "browser-test-1"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# A Monday, 09:00 in Beijing: the day the journey starts.
START = datetime(2026, 11, 16, 9, 0, tzinfo=clock.LOCAL)
# Providers besides the demo's county-wide one: another county-wide, and one serving 番田镇 only.
EXTRA_PROVIDERS = (
    ("provider_county2", "温县夕阳红家政服务有限公司", "410825"),
    ("provider_fantian", "番田镇爱心助老服务站", "410825101"),
)
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _on_clock(wsgi_app, source):
    """Run every request under the test's clock (the server's threads do not inherit the test's context)."""

    def app(environ, start_response):
        with clock.using(source):
            return wsgi_app(environ, start_response)

    return app


@contextlib.contextmanager
def serving(folder: Path):
    """The app on http://127.0.0.1:<port> on a journey's clock, over a fresh database in `folder` with the
    demo county and the shipped processes: what a test gets (url, engine, sessions, clock, folder)."""
    url = f"sqlite:///{folder / 'browser.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    journey_clock = clock.ManualClock(START)
    with clock.using(journey_clock), session_factory(engine).begin() as session:
        demo.load_demo_registry(session, PASSWORD)
        versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
        for username, name, area in EXTRA_PROVIDERS:
            create_user(
                session,
                username=username,
                display_name=name,
                role=Role.PROVIDER,
                area_code=area,
                password=PASSWORD,
            )
    from webapp import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "browser-tests",
            "UPLOAD_DIR": str(folder / "uploads"),
            # The journey moves the clock by weeks with people signed in: no idle sign-out on this server
            # (tests/browser/test_office.py signs out on one of its own).
            "IDLE_MINUTES": 10 * 365 * 24 * 60,
        }
    )
    app.wsgi_app = _on_clock(app.wsgi_app, journey_clock)
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "engine": engine,
            "sessions": session_factory(engine),
            "clock": journey_clock,
            "folder": folder,
        }
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["db_engine"].dispose()
        engine.dispose()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The shared server of the journeys that keep the shipped processes as they are."""
    with serving(tmp_path_factory.mktemp("browser")) as server:
        yield server


@pytest.fixture(scope="session")
def chromium():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        # The browser's UI language comes from the environment (needs Debian's chromium-l10n; else English).
        env = {**os.environ, "LANG": "zh_CN.UTF-8", "LANGUAGE": "zh_CN:zh"}
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True, env=env)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts():
    folder = ARTIFACTS / "browser"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Person:
    """One signed-in person in their own browser context (own cookies), on a laptop or a phone."""

    def __init__(self, chromium, base_url: str, username: str, artifacts: Path, *, phone: bool = False):
        options = (
            {"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
            if phone
            else {"viewport": LAPTOP}
        )
        self.context = chromium.new_context(
            base_url=base_url, locale="zh-CN", timezone_id="Asia/Shanghai", **options
        )
        self.context.set_default_timeout(15000)
        self.page = self.context.new_page()
        self.username = username
        self.artifacts = artifacts
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # A page that breaks its own Content-Security-Policy would lose a script or a style for real users.
        self.page.on(
            "console",
            lambda message: (
                self.errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        self.sign_in()

    def sign_in(self):
        page = self.page
        page.goto("/login")
        page.fill("input[name=username]", self.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        page.wait_for_url("**/inbox**")

    def shot(self, name: str, *, full_page: bool = True):
        self.page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=full_page)

    def close(self):
        self.context.close()
