"""Shared fixtures: a real database per run (SQLite always; PostgreSQL when ELDERCARE_TEST_PG_URL is set).

Each test runs inside a transaction that is rolled back afterwards (SAVEPOINT-isolated), so tests
can commit freely through `session.commit()` without leaking rows into one another.
"""

import os
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import MONDAY_MORNING
from workflows import clock, processes
from workflows.db import make_engine
from workflows.models import Base

# As every entry point does at start-up: the shipped processes' declarations, and the engine they wire.
processes.install()


def _backends():
    backends = ["sqlite"]
    if os.environ.get("ELDERCARE_TEST_PG_URL"):
        backends.append("postgresql")
    return backends


@pytest.fixture(scope="session", params=_backends())
def db_engine(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.sqlite"
        engine = make_engine(f"sqlite:///{path}")
    else:
        # A database of this run's own, so parallel runs on one server never meet.
        server = os.environ["ELDERCARE_TEST_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        name = f"eldercare_test_{uuid.uuid4().hex[:12]}"
        admin = make_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(server.rsplit("/", 1)[0] + "/" + name)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def session(db_engine):
    """A session whose every commit is undone when the test ends."""
    conn = db_engine.connect()
    outer = conn.begin()
    sess = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield sess
    sess.close()
    if outer.is_active:
        outer.rollback()
    conn.close()


@pytest.fixture
def manual_clock():
    """The clock every use case reads, standing still at a Monday 09:00 (Beijing) until moved."""
    c = clock.ManualClock(MONDAY_MORNING)
    with clock.using(c):
        yield c
