"""The database away (issue 16 #4, #5): down, restarted under the app, read-only or out of disk. The answer
is a 503 with a Chinese message and Retry-After, JSON on /api, a page that needs no database otherwise;
the health check says so; a connection the server closed while pooled is never handed to a request."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from sqlalchemy import event, func, select, text

from tests.web.conftest import PASSWORD
from webapp import create_app
from workflows.db import make_engine
from workflows.models import Case

from .conftest import backends, pg_server_url

UNAVAILABLE = "数据库暂时不可用，您的操作未保存，请稍后重试"


def _app(url: str, folder):
    # Not TESTING: what a deployed app answers, with its own error handling (no exception propagation).
    return create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "UPLOAD_DIR": str(folder / "up")})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens on it once the socket is closed


def _unreachable(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite'}"  # cannot be opened
    base = pg_server_url().rsplit("@", 1)[0]
    return f"{base}@127.0.0.1:{_closed_port()}/eldercare?connect_timeout=2"


def _assert_unavailable(response, *, api: bool):
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    if api:
        assert response.json == {"message": UNAVAILABLE, "field_errors": {}}
    else:
        assert response.mimetype == "text/html" and UNAVAILABLE in response.text


@pytest.mark.parametrize("kind", backends())
def test_a_database_that_is_down_is_a_503_in_chinese_and_the_health_check_says_so(kind, tmp_path):
    app = _app(_unreachable(kind, tmp_path), tmp_path)
    client = app.test_client()
    _assert_unavailable(
        client.post("/api/login", json={"username": "caseworker", "password": PASSWORD}), api=True
    )
    _assert_unavailable(client.get("/api/tasks", headers={"Authorization": "Bearer ec_x"}), api=True)
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json == {"status": "unavailable", "database": "unreachable"}
    assert health.headers["Retry-After"] == "5"
    # A page: signing in needs the database; the answer is a page that needs none.
    page = client.get("/login")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    signed = client.post("/login", data={"username": "caseworker", "password": PASSWORD, "csrf_token": token})
    _assert_unavailable(signed, api=False)
    app.extensions["db_engine"].dispose()


def test_the_health_check_answers_ok_when_the_database_answers(live):
    response = live.app.test_client().get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


def test_a_pooled_connection_the_server_closed_is_not_handed_to_a_request(live, tmp_path):
    """A PostgreSQL restart while the app sits idle: its pooled connections are dead. The first request
    after it must not be the one that finds out."""
    if live.kind != "postgresql":
        pytest.skip("PostgreSQL only")
    app = _app(live.url, tmp_path)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {live.tokens['caseworker']}"}
    assert client.get("/api/tasks", headers=headers).status_code == 200  # the pool now holds a connection
    database = live.url.rsplit("/", 1)[1]
    admin = make_engine(pg_server_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        ended = conn.execute(
            text(
                "WITH theirs AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()) "
                "SELECT array_agg(pid) FROM theirs WHERE pg_terminate_backend(pid)"
            ),
            {"db": database},
        ).scalar()
        assert ended
        # As after a restart: the server processes are gone (not merely told to go) before anyone asks.
        for _ in range(500):
            alive = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": ended}
            ).scalar()
            if not alive:
                break
            conn.execute(text("SELECT pg_sleep(0.01)"))
        assert not alive
    admin.dispose()
    for _ in range(3):  # every request after it succeeds, the first included
        response = client.get("/api/tasks", headers=headers)
        assert response.status_code == 200, response.text
    app.extensions["db_engine"].dispose()


@pytest.fixture
def sqlite_copy(live, tmp_path):
    """A copy of the SQLite world holding one more elder (the shared file stays untouched): (path, elder)."""
    if live.kind != "sqlite":
        pytest.skip("SQLite only")
    elder_id = live.make_elder()
    path = tmp_path / "copy.sqlite"
    raw = live.engine.raw_connection()
    try:
        target = sqlite3.connect(path)
        raw.driver_connection.backup(target)
        target.close()
    finally:
        raw.close()
    return path, elder_id


def _start(client, token, elder_id):
    return client.post(
        "/api/cases",
        headers={"Authorization": f"Bearer {token}"},
        json={"process": "visiting_care", "elder_id": elder_id, "data": {"note": "独居"}},
    )


def _cases_of(path, elder_id) -> int:
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        found = conn.scalar(select(func.count()).select_from(Case).where(Case.elder_id == elder_id))
    engine.dispose()
    return found


def test_a_read_only_sqlite_file_is_a_503_json_on_the_api(live, sqlite_copy, tmp_path):
    path, elder_id = sqlite_copy
    app = _app(f"sqlite:///file:{path}?mode=ro&uri=true", tmp_path)
    _assert_unavailable(_start(app.test_client(), live.tokens["village_assistant"], elder_id), api=True)
    app.extensions["db_engine"].dispose()
    assert _cases_of(path, elder_id) == 0


def test_a_full_disk_under_sqlite_is_a_503_json_on_the_api(live, sqlite_copy, tmp_path):
    path, elder_id = sqlite_copy
    app = _app(f"sqlite:///{path}", tmp_path)
    engine = app.extensions["db_engine"]

    @event.listens_for(engine, "connect")
    def _no_room_left(dbapi_conn, _record):
        # The file may not grow by a single page: what a full disk does to SQLite's writes.
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()  # new connections get the limit
    _assert_unavailable(_start(app.test_client(), live.tokens["village_assistant"], elder_id), api=True)
    engine.dispose()
    assert _cases_of(path, elder_id) == 0
