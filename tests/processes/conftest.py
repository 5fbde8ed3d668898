"""Fixtures for diagram tests: a real database, the shipped processes deployed (the clock: tests/conftest)."""

import pytest

from tests.processes.harness import World


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)
