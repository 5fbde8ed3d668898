"""Browser tests: the real app served by a real WSGI server on a free loopback port, with a fresh SQLite
database, driven by Playwright in Debian's headless Chromium. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from workflows import demo, processes
from workflows.db import make_engine, session_factory
from workflows.models import Base, Elder

CHROMIUM = os.environ.get("ELDERCARE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PASSWORD = "browser-test-1"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
JOURNEY = Path(__file__).resolve().parent / "journey"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The app on http://127.0.0.1:<port>, its database and the elders the journey uses."""
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'browser.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with session_factory(engine).begin() as session:
        demo.load_demo_registry(session, PASSWORD)
        processes.deploy(session, None, processes.read_bundle(JOURNEY))
        elder = session.scalar(
            select(Elder)
            .where(Elder.residence_area_code == "410825100201", Elder.dibao.is_(True))
            .order_by(Elder.id)
        ) or session.scalar(
            select(Elder).where(Elder.residence_area_code == "410825100201").order_by(Elder.id)
        )
        elder_info = {"id": elder.id, "name": elder.name}
    from webapp import create_app

    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "browser-tests", "UPLOAD_DIR": str(folder / "uploads")}
    )
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{port}", "engine": engine, "elder": elder_info, "folder": folder}
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["db_engine"].dispose()
        engine.dispose()


@pytest.fixture(scope="session")
def chromium():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
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
