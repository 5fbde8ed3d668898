from collections import Counter

import pytest
from sqlalchemy import func, select

from workflows.demo import load_demo_registry
from workflows.elders import clean_elder
from workflows.errors import LoginRefused
from workflows.models import Area, Role, User
from workflows.models.elders import Assessment, Elder
from workflows.rules.assessment import DisabilityLevel
from workflows.rules.idnumber import parse_id_number
from workflows.users import authenticate

from .registry_world import TODAY

PASSWORD = "demo-password"


def counts(session):
    return {
        "areas": session.scalar(select(func.count()).select_from(Area)),
        "users": session.scalar(select(func.count()).select_from(User)),
        "elders": session.scalar(select(func.count()).select_from(Elder)),
        "assessments": session.scalar(select(func.count()).select_from(Assessment)),
    }


def test_demo_has_every_role_and_loading_twice_adds_nothing(session):
    first = load_demo_registry(session, PASSWORD)
    after_first = counts(session)

    second = load_demo_registry(session, PASSWORD)

    assert first["created"] is True and second["created"] is False
    assert counts(session) == after_first
    assert first["counts"] == second["counts"] == after_first
    assert after_first["areas"] == 12 and after_first["users"] == 10 and after_first["elders"] == 200
    assert 5 <= after_first["assessments"] <= 60
    users = {user.username: user for user in session.scalars(select(User))}
    assert {user.role for user in users.values()} == set(Role)
    for role in Role:
        assert users[role.value].role == role  # the username is the role name
    assert set(first["logins"]) == set(users)
    # Township staff work in a township, county staff at the county.
    assert (users["caseworker"].area_code, users["caseworker2"].area_code) == ("410825100", "410825101")
    assert len(users["village_assistant"].area_code) == 12
    for username in ("approver", "auditor", "process_owner", "admin"):
        assert users[username].area_code == "410825"
    assert all(user.display_name and user.password_hash.startswith("$argon2") for user in users.values())


def test_demo_users_can_log_in(session):
    load_demo_registry(session, PASSWORD)

    assert authenticate(session, "caseworker", PASSWORD).username == "caseworker"
    for username, password in (("caseworker", "wrong-password"), ("nobody", PASSWORD)):
        with pytest.raises(LoginRefused):
            authenticate(session, username, password)


def test_demo_elders_are_valid_varied_and_deterministic(session):
    load_demo_registry(session, PASSWORD)
    elders = session.scalars(select(Elder).order_by(Elder.id)).all()
    snapshot = [(e.name, e.id_number, e.phone, e.residence_area_code, e.disability_level) for e in elders]

    levels = {code: area.level for code, area in ((a.code, a) for a in session.scalars(select(Area)))}
    seen = Counter()
    for elder in elders:
        info = parse_id_number(elder.id_number, today=TODAY)
        assert info.area_code == "410825" and 1925 <= info.birth_date.year <= 1965
        assert elder.age_on(TODAY) >= 60
        assert elder.residence_area_code.startswith("410825") and len(elder.residence_area_code) == 12
        data = {field: getattr(elder, field) for field in ("name", "id_number", "phone", "hukou_type")}
        data |= {
            field: getattr(elder, field)
            for field in (
                "residence_area_code",
                "living_arrangement",
                "dibao",
                "near_dibao",
                "tekun",
                "home_support",
                "institutional_support",
                "living_alone",
                "empty_nest",
                "severe_handicap",
                "severe_handicap_grade",
            )
        }
        assert clean_elder(data, areas=levels, today=TODAY)[1] == {}
        seen["90+"] += elder.age_on(TODAY) >= 90
        seen["living_alone"] += elder.living_alone
        seen["tekun_home"] += elder.tekun and elder.home_support
        seen["dibao_disabled"] += elder.dibao and elder.disability_level in (
            DisabilityLevel.MODERATE,
            DisabilityLevel.SEVERE,
        )
        seen["no_phone"] += elder.phone is None
        seen["handicap"] += elder.severe_handicap
    assert seen["90+"] >= 10 and seen["living_alone"] >= 15 and seen["tekun_home"] >= 3
    assert seen["dibao_disabled"] >= 3 and seen["handicap"] >= 3 and seen["no_phone"] >= 3
    assert len({e.name for e in elders}) > 150  # names vary

    # Loading into an empty database again gives the very same elders.
    session.rollback()
    assert counts(session)["elders"] == 0
    load_demo_registry(session, PASSWORD)
    again = session.scalars(select(Elder).order_by(Elder.id)).all()
    assert [
        (e.name, e.id_number, e.phone, e.residence_area_code, e.disability_level) for e in again
    ] == snapshot
