"""Test factories, in one place: the demo county's areas, a person in every role, elders.

Tests build their world from these (directly, or through the fixtures in tests/conftest.py) rather than
each folder making its own areas and users.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from workflows import clock, versions
from workflows.demo import create_areas
from workflows.models import Area, Elder, Role, User
from workflows.models.elders import HukouType, LivingArrangement, Sex
from workflows.rules.idnumber import compute_check_char, parse_id_number

COUNTY = "410825"  # 温县
TOWNSHIP, VILLAGE = "410825100", "410825100201"  # 祥云镇, 祥云村
OTHER_TOWNSHIP, OTHER_VILLAGE = "410825101", "410825101201"  # 番田镇, 番田村

# A Monday, 09:00 in Beijing: where the manual clock starts unless a test sets it.
MONDAY_MORNING = datetime(2025, 6, 2, 1, 0, tzinfo=UTC)

# Where each demo person works: the village assistant in 祥云村, the caseworker in 祥云镇, caseworker2 in
# 番田镇, everyone else county-wide.
HOMES = {
    "village_assistant": VILLAGE,
    "caseworker": TOWNSHIP,
    "caseworker2": OTHER_TOWNSHIP,
}


def add_areas(session: Session) -> None:
    """The demo county with its townships and villages (once per session)."""
    if session.get(Area, COUNTY) is None:
        create_areas(session)
        session.flush()


def add_users(
    session: Session,
    *,
    prefix: str = "",
    homes: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, User]:
    """One user per role, plus caseworker2 in the other township, keyed by role (and "caseworker2").

    Usernames are `prefix + key`; `homes` and `names` override an area or a display name per key.
    """
    add_areas(session)
    homes = {**HOMES, **(homes or {})}
    made = {}
    for key in [*(role.value for role in Role), "caseworker2"]:
        role = Role.CASEWORKER if key == "caseworker2" else Role(key)
        made[key] = User(
            username=prefix + key,
            display_name=(names or {}).get(key, key),
            role=role,
            area_code=homes.get(key, COUNTY),
            created_at=clock.now(),
        )
    session.add_all(made.values())
    session.flush()
    return made


def id_number(birth: date, sequence: int = 11, area: str = COUNTY) -> str:
    """A valid 18-character resident ID number (odd sequence: male)."""
    first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return first17 + compute_check_char(first17)


def add_elder(
    session: Session, *, id_number: str, name: str = "张三", village: str = VILLAGE, **fields
) -> Elder:
    """An elder on the register, inserted directly (for tests that are not about the register's checks)."""
    info = parse_id_number(id_number, today=date(2025, 6, 2))
    now = clock.now()
    elder = Elder(
        id_number=info.number,
        name=name,
        sex=Sex(info.sex),
        birth_date=info.birth_date,
        hukou_type=fields.pop("hukou_type", HukouType.RURAL),
        residence_area_code=village,
        address=fields.pop("address", "祥云村1组"),
        living_arrangement=fields.pop("living_arrangement", LivingArrangement.WITH_SPOUSE),
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(elder)
    session.flush()
    return elder


# SpiffWorkflow's own tutorial models (../shared/interop beside the project, or ELDERCARE_INTEROP_DIR).
INTEROP = Path(
    os.environ.get(
        "ELDERCARE_INTEROP_DIR",
        Path(__file__).resolve().parents[2] / "shared" / "interop" / "spiff-example-cli",
    )
)
# What each step of the interop order process is answered with, to run it to its end.
ORDER_ANSWERS = {
    "Activity_1uazifo": {"product_name": "product_f", "product_quantity": 2},
    "Activity_0263vxi": {"product_color": "white"},
    "Activity_1x0wxtq": {"product_size": "medium"},
    "Activity_1mkqpod": {"product_style": "short"},
    "Activity_0gg5h3v": {"shipping_method": "standard"},
    "Activity_0h4nuly": {"shipping_address": "河南省焦作市温县祥云镇"},
    "Activity_0t2klx8": {"card_number": "6222020000000000"},
}


def require_interop(*, skip: bool = True) -> None:
    """Fail where SpiffWorkflow's interop models are missing in CI (they must run there); elsewhere skip the
    test, or with `skip=False` let it go on without them."""
    if INTEROP.is_dir():
        return
    missing = f"SpiffWorkflow's interop models not found at {INTEROP} (set ELDERCARE_INTEROP_DIR)"
    if os.environ.get("CI") == "true":
        pytest.fail(missing)
    if skip:
        pytest.skip(missing)


def interop_bundle() -> dict[str, str]:
    """The interop order process: its main diagram, its call activity, both tables, the forms."""
    require_interop()
    return {
        name: content.decode("utf-8")
        for name, content in versions.read_bundle(INTEROP).items()
        if not name.endswith(".bpmn") or name in ("top_level.bpmn", "call_activity.bpmn")
    }
