"""Fixtures for the elder register: the demo areas, one user per role (no password hashing), a frozen clock."""

from datetime import date

import pytest

import workflows.models.elders  # noqa: F401  (registers the elder tables before the database is created)
from workflows import clock
from workflows.demo import create_areas
from workflows.models import Role, User

from .registry_world import FANTIAN, NOW, XIANGYUN, XIANGYUN_VILLAGE, make_id


@pytest.fixture(autouse=True)
def frozen_clock():
    manual = clock.ManualClock(NOW)
    with clock.using(manual):
        yield manual


@pytest.fixture
def areas(session):
    create_areas(session)
    session.flush()


@pytest.fixture
def users(session, areas) -> dict[str, User]:
    """One user per role, named as in the demo; caseworker in 祥云镇, caseworker2 in 番田镇."""
    spec = {
        "caseworker": (Role.CASEWORKER, XIANGYUN),
        "caseworker2": (Role.CASEWORKER, FANTIAN),
        "village_assistant": (Role.VILLAGE_ASSISTANT, XIANGYUN_VILLAGE),
        "approver": (Role.APPROVER, "410825"),
        "provider": (Role.PROVIDER, "410825"),
        "assessor": (Role.ASSESSOR, "410825"),
        "facility_admin": (Role.FACILITY_ADMIN, "410825"),
        "auditor": (Role.AUDITOR, "410825"),
        "process_owner": (Role.PROCESS_OWNER, "410825"),
        "admin": (Role.ADMIN, "410825"),
    }
    made = {}
    for username, (role, area_code) in spec.items():
        user = User(username=username, display_name=username, role=role, area_code=area_code, created_at=NOW)
        session.add(user)
        made[username] = user
    session.flush()
    return made


@pytest.fixture
def elder_data():
    """Valid registration data for a 75-year-old man living with his wife in 祥云村."""
    return {
        "name": "王建国",
        "id_number": make_id(date(1950, 3, 15)),
        "phone": "13812345678",
        "hukou_type": "rural",
        "residence_area_code": XIANGYUN_VILLAGE,
        "address": "3组12号",
        "living_arrangement": "with_spouse",
        "empty_nest": True,
        "contacts": [{"name": "王军", "relation": "儿子", "phone": "13900001111"}],
    }
