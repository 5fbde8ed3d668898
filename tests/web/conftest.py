"""A real app on a fresh SQLite file: the demo county's registry (one user per role), the shipped processes
deployed, and a client per role signed in through the login form (CSRF on, as in production).

Home care allows one running application per elder, so a test that starts a case registers its own elder
(`make_elder`), with a valid assessment unless it wants the assessment call activity."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from workflows import clock, demo, elders, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base, Elder, User
from workflows.rules.assessment import ITEMS, AssessmentReason, score_assessment
from workflows.rules.idnumber import compute_check_char

PASSWORD = "test-password-1"
PROCESS = "home_care"
ROLES = (
    "caseworker",
    "caseworker2",
    "village_assistant",
    "approver",
    "provider",
    "assessor",
    "facility_admin",
    "auditor",
    "process_owner",
    "admin",
)


def demo_database(folder):
    """A SQLite database in `folder` with the demo registry and the shipped processes: (url, engine)."""
    url = f"sqlite:///{folder / 'web.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with session_factory(engine).begin() as session:
        demo.load_demo_registry(session, PASSWORD)
        versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
    return url, engine


def web_app(url: str, folder, secret: str = "test"):
    """The app on `url`, uploads under `folder`. Test clients live for a whole run while tests move the clock
    by days: no idle sign-out (it is tested on apps of its own: tests/web/office/test_sessions.py)."""
    from webapp import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "SECRET_KEY": secret,
            "UPLOAD_DIR": str(folder / "up"),
            "IDLE_MINUTES": 10 * 365 * 24 * 60,
        }
    )


@pytest.fixture(scope="session")
def web_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    url, engine = demo_database(folder)
    yield url, folder, engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(web_db):
    url, folder, _ = web_db
    app = web_app(url, folder)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def db_session(web_db):
    """A session for the test's own reads, on a plain engine: its read transactions take no write lock
    (the app's engine begins every transaction IMMEDIATE), so requests made meanwhile never wait on it."""
    from sqlalchemy import create_engine

    engine = create_engine(web_db[0])
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


class Browser:
    """A test client that signs in through the form and posts forms with their CSRF token."""

    def __init__(self, app, username: str | None):
        self.client = app.test_client()
        self.username = username
        if username:
            page = self.client.get("/login")
            response = self.client.post(
                "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
            )
            assert response.status_code == 302, response.text

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def token(self, url="/inbox") -> str:
        return csrf_of(self.client.get(url).text)

    def post(self, url, data=None, *, token_from="/inbox", **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(token_from))
        return self.client.post(url, data=data, **kw)


@pytest.fixture(scope="session")
def browsers(app):
    return {name: Browser(app, name) for name in ROLES}


@pytest.fixture
def anonymous(app):
    return Browser(app, None)


@pytest.fixture(scope="session")
def users(web_db):
    _, _, engine = web_db
    with session_factory(engine)() as session:
        found = {u.username: u for u in session.scalars(select(User))}
        session.expunge_all()
    return found


@pytest.fixture(scope="session")
def elders_by_township(web_db):
    """One elder id in 祥云镇 (caseworker's) and one in 番田镇 (caseworker2's)."""
    _, _, engine = web_db
    with session_factory(engine)() as session:
        xiangyun = session.scalar(
            select(Elder.id).where(Elder.residence_area_code == "410825100201").order_by(Elder.id)
        )
        fantian = session.scalar(
            select(Elder.id).where(Elder.residence_area_code.like("410825101%")).order_by(Elder.id)
        )
    return {"xiangyun": xiangyun, "fantian": fantian}


def add_user(web_db, username: str, display_name: str, role, area_code: str = "410825") -> int:
    """Add a user (password PASSWORD) to the shared test database; return its id."""
    from workflows.users import create_user

    with session_factory(web_db[2]).begin() as session:
        return create_user(
            session,
            username=username,
            display_name=display_name,
            role=role,
            area_code=area_code,
            password=PASSWORD,
        ).id


def api_token(client, username: str) -> str:
    response = client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json["token"]


@pytest.fixture(scope="session")
def api(app):
    """An API caller per role: api["caseworker"].get("/api/tasks")."""

    class Caller:
        def __init__(self, username):
            self.client = app.test_client()
            self.headers = {"Authorization": f"Bearer {api_token(self.client, username)}"}

        def get(self, url, **kw):
            return self.client.get(url, headers=self.headers, **kw)

        def post(self, url, json=None, **kw):
            return self.client.post(url, headers=self.headers, json=json if json is not None else {}, **kw)

    return {name: Caller(name) for name in ROLES}


APPLICATION = {
    "applicant_type": "proxy",
    "applicant_name": "李秀梅",
    "applicant_phone": "13812345678",
    "requested_services": ["meal", "cleaning"],
    "application_note": "独居，行动不便",
}
VILLAGES = {"xiangyun": "410825100201", "fantian": "410825101201"}
_BANDS = {"intact": 90, "mild": 75, "moderate": 50, "severe": 40, "complete": 20}


def id_number(birth: date, seq: int) -> str:
    first17 = f"410825{birth:%Y%m%d}{seq:03d}"
    return first17 + compute_check_char(first17)


def item_scores(total: int) -> dict[str, int]:
    """GB/T 42195 item scores adding up to `total`."""
    scores = {item.key: item.max_score for item in ITEMS}
    missing = sum(scores.values()) - total
    for item in ITEMS:
        cut = min(missing, scores[item.key])
        scores[item.key] -= cut
        missing -= cut
    return scores


@pytest.fixture(scope="session")
def make_elder(web_db):
    """Register a fresh elder (on 低保, living alone) in a village of 祥云镇 or 番田镇 and return its id;
    `level` records a valid capability assessment (None: never assessed)."""
    _, _, engine = web_db
    serial = itertools.count(1)

    def make(level: str | None = "moderate", *, township: str = "xiangyun", name: str = "测试老人") -> int:
        with session_factory(engine).begin() as session:
            admin = session.scalar(select(User).where(User.username == "admin"))
            assessor = session.scalar(select(User).where(User.username == "assessor"))
            while True:
                n = next(serial)
                number = id_number(date(1944, 1, 1) + timedelta(days=n), 900 + n % 99)
                if session.scalar(select(Elder.id).where(Elder.id_number == number)) is None:
                    break
            elder = elders.register_elder(
                session,
                admin,
                {
                    "name": name,
                    "id_number": number,
                    "phone": "13912345678",
                    "hukou_type": "rural",
                    "residence_area_code": VILLAGES[township],
                    "address": f"{n % 12 + 1}组{n}号",
                    "living_arrangement": "living_alone",
                    "dibao": True,
                },
            )
            if level is not None:
                items = item_scores(_BANDS[level])
                elders.record_assessment(
                    session,
                    assessor,
                    elder.id,
                    score_assessment(items),
                    clock.today() - timedelta(days=10),
                    AssessmentReason.INITIAL,
                    items=items,
                )
            return elder.id

    return make
