"""Two administrators at once, on PostgreSQL with real transactions: the same new username (one wins, the
other is told), the same year of the calendar (the second becomes a correction of the first), the same
account changed twice (both changes land, one after the other, both logged)."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import date

import pytest
from sqlalchemy import func, select, text

from tests.factories import TOWNSHIP, add_users
from workflows import calendars, users
from workflows.db import make_engine, session_factory
from workflows.errors import RegistryError
from workflows.models import Base, User
from workflows.models.office import AdminEvent, CalendarYear

pytestmark = pytest.mark.skipif(not os.environ.get("ELDERCARE_TEST_PG_URL"), reason="PostgreSQL only")


@pytest.fixture
def pg():
    server = os.environ["ELDERCARE_TEST_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"eldercare_races_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(server.rsplit("/", 1)[0] + "/" + name)
    Base.metadata.create_all(engine)
    make = session_factory(engine)
    with make.begin() as session:
        add_users(session)
    yield make
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _admin(session) -> User:
    return session.scalar(select(User).where(User.username == "admin"))


def _wait_until_blocked(make, application: str) -> None:
    """Until the other transaction waits on a lock held by the first (no sleeping on a guess)."""
    with make() as watcher:
        for _ in range(10_000):
            waiting = watcher.scalar(
                text(
                    "select count(*) from pg_stat_activity where application_name = :app "
                    "and wait_event_type = 'Lock'"
                ),
                {"app": application},
            )
            if waiting:
                return
            watcher.rollback()
    raise AssertionError("the second transaction never waited")


def _second(make, application: str, work, outcome: dict) -> threading.Thread:
    def run():
        try:
            with make.begin() as session:
                session.execute(text(f"set application_name = '{application}'"))
                outcome["value"] = work(session)
        except Exception as exc:  # noqa: BLE001 - the test reads what happened
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _add(session, username: str):
    data = {"username": username, "display_name": "同名", "role": "caseworker", "area_code": TOWNSHIP}
    return users.add_user(session, _admin(session), data).user.username


def test_two_administrators_adding_the_same_username_one_wins(pg):
    outcome: dict = {}
    with pg.begin() as first:
        _add(first, "zhang.san")
        thread = _second(pg, "second_admin", lambda s: _add(s, "zhang.san"), outcome)
        _wait_until_blocked(pg, "second_admin")
    thread.join(30)
    assert isinstance(outcome.get("error"), RegistryError)
    assert outcome["error"].field_errors == {"username": "用户名 zhang.san 已被使用"}
    with pg() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.username == "zhang.san")) == 1


def test_two_administrators_entering_the_same_year_the_second_corrects_the_first(pg):
    def enter(session, name):
        days = [calendars.Day(date(2031, 1, 1), calendars.DayKind.HOLIDAY, name)]
        return calendars.enter_year(session, _admin(session), 2031, days).created

    outcome: dict = {}
    with pg.begin() as first:
        assert enter(first, "元旦") is True
        thread = _second(pg, "second_calendar", lambda s: enter(s, "新年"), outcome)
        _wait_until_blocked(pg, "second_calendar")
    thread.join(30)
    assert outcome == {"value": False}, outcome
    with pg() as session:
        row = session.get(CalendarYear, 2031)
        assert row.revision == 2
        assert calendars.year_days(session, 2031)[1][0].name == "新年"
        actions = session.scalars(
            select(AdminEvent.action).where(AdminEvent.subject == "calendar").order_by(AdminEvent.id)
        ).all()
        assert actions == ["entered", "corrected"]


def test_two_changes_to_one_account_both_land_in_turn(pg):
    with pg() as session:
        target = session.scalar(select(User.id).where(User.username == "assessor"))
    outcome: dict = {}
    with pg.begin() as first:
        users.update_user(first, _admin(first), target, {"display_name": "刘敏（县评估中心）"})
        thread = _second(
            pg,
            "second_change",
            lambda s: users.update_user(s, _admin(s), target, {"area_code": TOWNSHIP}).display_name,
            outcome,
        )
        _wait_until_blocked(pg, "second_change")
    thread.join(30)
    assert outcome == {"value": "刘敏（县评估中心）"}, outcome  # the second saw the first's change
    with pg() as session:
        user = session.get(User, target)
        assert (user.display_name, user.area_code) == ("刘敏（县评估中心）", TOWNSHIP)
        assert (
            session.scalar(
                select(func.count()).select_from(AdminEvent).where(AdminEvent.subject_id == str(target))
            )
            == 2
        )
