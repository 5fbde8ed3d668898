"""Fixtures for diagram tests: a real database, the shipped processes deployed, a clock to move."""

from datetime import UTC, datetime

import pytest

from workflows import clock

from .harness import World


@pytest.fixture
def manual_clock():
    c = clock.ManualClock(datetime(2025, 6, 2, 1, 0, tzinfo=UTC))  # a Monday, 09:00 in Beijing
    with clock.using(c):
        yield c


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)
