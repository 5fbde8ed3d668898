"""Fixtures for the elder register: the demo areas, one user per role (no password hashing), a frozen clock."""

from datetime import date

import pytest

from tests.factories import add_areas, add_users
from workflows.models import User

from .registry_world import NOW, XIANGYUN_VILLAGE, make_id


@pytest.fixture(autouse=True)
def frozen_clock(manual_clock):
    """The register's tests run on 2025-06-01, 10:00 in Beijing."""
    manual_clock.set(NOW)
    return manual_clock


@pytest.fixture
def areas(session):
    add_areas(session)


@pytest.fixture
def users(session, areas) -> dict[str, User]:
    """One user per role, named as in the demo; caseworker in 祥云镇, caseworker2 in 番田镇."""
    return add_users(session)


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
