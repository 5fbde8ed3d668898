"""Fixtures for engine tests: areas, one user per role, deployed test bundles (the clock: tests/conftest)."""

import os
from pathlib import Path

import pytest

from tests.factories import COUNTY, OTHER_TOWNSHIP, TOWNSHIP, add_users
from workflows import versions
from workflows.models import Role

HERE = Path(__file__).parent
REPO = Path(__file__).resolve().parents[3]
INTEROP = Path(
    os.environ.get("ELDERCARE_INTEROP_DIR", REPO.parent / "shared" / "interop" / "spiff-example-cli")
)
__all__ = ["COUNTY", "OTHER_TOWNSHIP", "TOWNSHIP"]


@pytest.fixture
def users(session):
    """One user per role; the village assistant works the whole township here (cases are township-wide)."""
    names = {role.value: f"{role.value}用户" for role in Role} | {"caseworker2": "番田经办人"}
    return add_users(session, homes={"village_assistant": TOWNSHIP}, names=names)


def texts(path: Path) -> dict[str, str]:
    """A bundle read as text, for tests that edit it."""
    return {name: content.decode("utf-8") for name, content in versions.read_bundle(path).items()}


def interop_bundle() -> dict[str, str]:
    """SpiffWorkflow's own tutorial models: the order process, its call activity, both tables, the forms."""
    if not INTEROP.is_dir():
        missing = f"SpiffWorkflow's interop models not found at {INTEROP} (set ELDERCARE_INTEROP_DIR)"
        if os.environ.get("CI") == "true":  # in CI they must run: a missing corpus is a failure, not a skip
            pytest.fail(missing)
        pytest.skip(missing)
    files = {
        name: content.decode("utf-8")
        for name, content in versions.read_bundle(INTEROP).items()
        if not name.endswith(".bpmn") or name in ("top_level.bpmn", "call_activity.bpmn")
    }
    return files


@pytest.fixture
def deployed(session, users):
    versions.deploy(session, users["process_owner"], versions.read_bundle(HERE / "bpmn"), comment="测试部署")
    versions.deploy(session, users["process_owner"], interop_bundle(), comment="测试部署")
    return users
