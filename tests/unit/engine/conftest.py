"""Fixtures for engine tests: areas, one user per role, a movable clock, deployed test bundles."""

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workflows import clock, processes
from workflows.models import Area, AreaLevel, Role, User

HERE = Path(__file__).parent
REPO = Path(__file__).resolve().parents[3]
INTEROP = Path(
    os.environ.get("ELDERCARE_INTEROP_DIR", REPO.parent / "shared" / "interop" / "spiff-example-cli")
)
COUNTY, TOWNSHIP, OTHER_TOWNSHIP = "410825", "410825100", "410825101"


@pytest.fixture
def manual_clock():
    c = clock.ManualClock(datetime(2025, 6, 2, 1, 0, tzinfo=UTC))
    with clock.using(c):
        yield c


@pytest.fixture
def users(session):
    session.add(Area(code=COUNTY, name="温县", level=AreaLevel.COUNTY))
    session.add(Area(code=TOWNSHIP, name="祥云镇", level=AreaLevel.TOWNSHIP, parent_code=COUNTY))
    session.add(Area(code=OTHER_TOWNSHIP, name="番田镇", level=AreaLevel.TOWNSHIP, parent_code=COUNTY))
    made = {}
    for role in Role:
        area = TOWNSHIP if role in (Role.CASEWORKER, Role.VILLAGE_ASSISTANT) else COUNTY
        made[role.value] = User(
            username=role.value, display_name=f"{role.value}用户", role=role, area_code=area
        )
    made["caseworker2"] = User(
        username="caseworker2", display_name="番田经办人", role=Role.CASEWORKER, area_code=OTHER_TOWNSHIP
    )
    session.add_all(made.values())
    session.flush()
    return made


def interop_bundle() -> dict[str, str]:
    """SpiffWorkflow's own tutorial models: the order process, its call activity, both tables, the forms."""
    if not INTEROP.is_dir():
        pytest.skip(f"interop models not found at {INTEROP} (set ELDERCARE_INTEROP_DIR)")
    files = {
        name: text
        for name, text in processes.read_bundle(INTEROP).items()
        if not name.endswith(".bpmn") or name in ("top_level.bpmn", "call_activity.bpmn")
    }
    return files


@pytest.fixture
def deployed(session, users):
    processes.deploy(session, users["process_owner"], processes.read_bundle(HERE / "bpmn"))
    processes.deploy(session, users["process_owner"], interop_bundle())
    return users
