"""A real app on each database (SQLite, and PostgreSQL when the run has one): the demo county's registry,
the shipped processes deployed, API callers per role. For races between requests and for outages:
requests run on threads of their own against the app, as two people at once would."""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from contextlib import contextmanager, suppress
from datetime import date, timedelta

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from tests.web.conftest import PASSWORD, id_number, item_scores
from webapp import create_app
from workflows import clock, demo, elders, users, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base, Role, User
from workflows.rules.assessment import AssessmentReason, score_assessment

ROLES = (
    "caseworker",
    "caseworker_b",  # a colleague in the same township
    "village_assistant",
    "approver",
    "provider",
    "assessor",
    "auditor",
    "admin",
)


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("ELDERCARE_TEST_PG_URL") else ["sqlite"]


def pg_server_url() -> str:
    return os.environ["ELDERCARE_TEST_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_database(kind: str, folder):
    """The URL of an empty database of this kind, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'live.sqlite'}"
        return
    name = f"eldercare_live_{uuid.uuid4().hex[:12]}"
    admin = make_engine(pg_server_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_server_url().rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Live:
    """The app on one database, with an API caller per role."""

    def __init__(self, kind: str, url: str, app):
        self.kind = kind
        self.url = url
        self.app = app
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        self.tokens = {role: self._login(role) for role in ROLES}
        self._serial = itertools.count(1)

    def _login(self, username: str) -> str:
        response = self.app.test_client().post(
            "/api/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return response.json["token"]

    def call(self, role: str, method: str, path: str, body: dict | None = None):
        """One request as `role`, on a client of its own (threads may call this at once)."""
        client = self.app.test_client()
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        if method == "GET":
            return client.get(path, headers=headers)
        return client.post(path, headers=headers, json=body if body is not None else {})

    def make_elder(self, level: str | None = "moderate") -> int:
        """A fresh elder on 低保, living alone, in 祥云村; `level` records a valid assessment."""
        bands = {"intact": 90, "mild": 75, "moderate": 50, "severe": 40, "complete": 20}
        with self.sessions.begin() as session:
            admin = session.scalar(select(User).where(User.username == "admin"))
            assessor = session.scalar(select(User).where(User.username == "assessor"))
            n = next(self._serial)
            elder = elders.register_elder(
                session,
                admin,
                {
                    "name": "并发老人",
                    "id_number": id_number(date(1940, 1, 1) + timedelta(days=n), 500 + n % 400),
                    "phone": "13912345678",
                    "hukou_type": "rural",
                    "residence_area_code": "410825100201",
                    "address": f"{n % 12 + 1}组{n}号",
                    "living_arrangement": "living_alone",
                    "dibao": True,
                },
            )
            if level is not None:
                items = item_scores(bands[level])
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

    def read(self) -> Session:
        return self.sessions()


@pytest.fixture(scope="module", params=backends())
def live(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("live")
    with fresh_database(request.param, folder) as url:
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        with session_factory(engine).begin() as session:
            demo.load_demo_registry(session, PASSWORD)
            users.create_user(
                session,
                username="caseworker_b",
                display_name="祥云镇经办人乙",
                role=Role.CASEWORKER,
                area_code="410825100",
                password=PASSWORD,
            )
            versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
        engine.dispose()
        app = create_app(
            {"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": "test", "UPLOAD_DIR": str(folder / "up")}
        )
        world = Live(request.param, url, app)
        yield world
        world.engine.dispose()
        app.extensions["db_engine"].dispose()


@contextmanager
def meeting_at_commit(app, parties: int = 2, patience: float = 3.0):
    """Make the app's requests wait for each other just before they commit, so that each has done all
    its reads and writes before any commits: the moment two people's requests overlap. A request that
    is itself held up (by a lock the other holds) lets the other go on after `patience` seconds."""
    barrier = threading.Barrier(parties)

    def meet(_session):
        with suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=patience)

    factory = app.extensions["db_sessions"]
    factory.class_ = type("MeetingSession", (Session,), {})
    event.listen(factory.class_, "before_commit", meet)
    try:
        yield
    finally:
        factory.class_ = Session


def at_once(*calls):
    """Run the calls on threads of their own, all at once; return their results in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i, call):
        start.wait(timeout=10)
        try:
            results[i] = call()
        except Exception as exc:  # reported as the result: the test says what it expected
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a request never finished"
    return results
