"""Fixtures for engine tests: areas, one user per role, deployed test bundles (the clock: tests/conftest)."""

from pathlib import Path

import pytest

from tests.factories import COUNTY, INTEROP, OTHER_TOWNSHIP, TOWNSHIP, add_users, interop_bundle
from workflows import versions
from workflows.models import Role

HERE = Path(__file__).parent
__all__ = ["COUNTY", "INTEROP", "OTHER_TOWNSHIP", "TOWNSHIP", "interop_bundle"]


@pytest.fixture
def users(session):
    """One user per role; the village assistant works the whole township here (cases are township-wide)."""
    names = {role.value: f"{role.value}用户" for role in Role} | {"caseworker2": "番田经办人"}
    return add_users(session, homes={"village_assistant": TOWNSHIP}, names=names)


def texts(path: Path) -> dict[str, str]:
    """A bundle read as text, for tests that edit it."""
    return {name: content.decode("utf-8") for name, content in versions.read_bundle(path).items()}


@pytest.fixture
def deployed(session, users):
    versions.deploy(session, users["process_owner"], versions.read_bundle(HERE / "bpmn"), comment="测试部署")
    versions.deploy(session, users["process_owner"], interop_bundle(), comment="测试部署")
    return users
