"""The office's own world: the demo county, one person per role, an administrator of one township, and the
working-day calendar put back as the library has it after every test (it is the process's)."""

from __future__ import annotations

import pytest

from tests.factories import OTHER_TOWNSHIP, TOWNSHIP, add_users
from workflows import calendars, deadlines
from workflows.models import Role, User
from workflows.rules import workdays


@pytest.fixture(autouse=True)
def library_calendar():
    workdays.use_entered_years({})
    calendars._seen_revisions = None
    yield
    workdays.use_entered_years({})
    calendars._seen_revisions = None
    deadlines._due_at.cache_clear()


@pytest.fixture
def people(session, manual_clock):
    """One user per role (county-wide admin), plus an administrator of 祥云镇 and one of 番田镇."""
    made = add_users(session, prefix="o_")
    for key, area in (("town_admin", TOWNSHIP), ("other_town_admin", OTHER_TOWNSHIP)):
        made[key] = User(
            username=f"o_{key}", display_name=key, role=Role.ADMIN, area_code=area, created_at=manual_clock()
        )
        session.add(made[key])
    session.flush()
    return made
