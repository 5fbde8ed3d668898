"""Administering accounts: an administrator adds, edits, moves, disables, unlocks and resets accounts in
their own area only, never their own role, area or state; temporary passwords must be changed; one-time
links work once; every change is in the log; the command line (no actor) may do anything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import OTHER_TOWNSHIP, TOWNSHIP, VILLAGE
from workflows import admin_log, organisations, tokens, users, versions
from workflows.config import bpmn_dir
from workflows.errors import LoginRefused, NotFound, PermissionDenied, RegistryError, ValidationFailed
from workflows.models import Role, User


def _add(session, actor, **overrides):
    data = {
        "username": "li.xm",
        "display_name": "李晓梅（祥云镇经办人）",
        "role": "caseworker",
        "area_code": TOWNSHIP,
        **overrides,
    }
    return users.add_user(session, actor, data)


def test_an_added_account_gets_a_temporary_password_to_be_changed_at_first_sign_in(session, people):
    issued = _add(session, people["admin"])
    assert len(issued.temporary_password) == users.TEMPORARY_LENGTH
    user = issued.user
    assert user.must_change_password and user.role == Role.CASEWORKER
    assert users.authenticate(session, "li.xm", issued.temporary_password).id == user.id
    # The API will not hand out a token for a temporary password.
    with pytest.raises(PermissionDenied):
        tokens.login(session, "li.xm", issued.temporary_password)
    with pytest.raises(ValidationFailed) as same:
        users.change_own_password(session, user, issued.temporary_password, issued.temporary_password)
    assert "不能与当前密码相同" in same.value.field_errors["new"]
    users.change_own_password(session, user, issued.temporary_password, "my-own-pass-1")
    assert not user.must_change_password
    assert tokens.login(session, "li.xm", "my-own-pass-1")[0].startswith("ec_")
    log = admin_log.history(session, subject="user", subject_id=user.id)
    assert [e.action for e in log] == ["password_changed", "added"]
    assert log[1].actor_name == people["admin"].display_name


def test_a_township_administrator_manages_only_accounts_of_their_township(session, people):
    town = people["town_admin"]
    # Adding inside: fine; outside, or above: refused.
    assert _add(session, town, username="in.town").user.area_code == TOWNSHIP
    with pytest.raises(PermissionDenied):
        _add(session, town, username="other.town", area_code=OTHER_TOWNSHIP)
    with pytest.raises(PermissionDenied):
        _add(session, town, username="county.wide", area_code="410825")
    # Reading or changing another township's account, or a county-wide one: refused.
    for other in (people["caseworker2"], people["approver"]):
        with pytest.raises(PermissionDenied):
            users.get_user(session, town, other.id)
        with pytest.raises(PermissionDenied):
            users.update_user(session, town, other.id, {"display_name": "改名"})
    # Moving an account of theirs outside their township: refused, nothing changed.
    mine = people["village_assistant"]
    with pytest.raises(ValidationFailed) as moved:
        users.update_user(session, town, mine.id, {"area_code": OTHER_TOWNSHIP})
    assert moved.value.field_errors == {"area_code": "只能调整到本人管辖的区划内"}
    assert mine.area_code == VILLAGE
    listed = {u.username for u in users.list_users(session, town)}
    assert "o_village_assistant" in listed and "o_caseworker2" not in listed and "o_approver" not in listed
    # Not an administrator at all: refused before anything is read.
    with pytest.raises(PermissionDenied):
        users.list_users(session, people["caseworker"])


def test_an_administrator_cannot_change_their_own_role_area_or_state(session, people):
    admin = people["admin"]
    with pytest.raises(ValidationFailed) as refused:
        users.update_user(
            session, admin, admin.id, {"role": "caseworker", "area_code": TOWNSHIP, "is_active": False}
        )
    assert set(refused.value.field_errors) == {"role", "area_code", "is_active"}
    # Their own name is theirs to correct.
    assert users.update_user(session, admin, admin.id, {"display_name": "系统管理员（县）"}).display_name


def test_moving_an_account_releases_the_tasks_it_can_no_longer_work_and_logs_old_and_new(session, people):
    from workflows.models import Case, CaseStatus, HumanTask, TaskStatus
    from workflows.models.process import new_lock_token

    worker = people["caseworker"]
    now = session.scalar(select(User.created_at).where(User.id == worker.id))
    case = Case(
        process_version_id=_version(session),
        process_key="x",
        version_hash="h",
        title="t",
        status=CaseStatus.RUNNING,
        area_code=VILLAGE,
        state="{}",
        lock_version=new_lock_token(),
        started_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    task = HumanTask(
        id="00000000-0000-0000-0000-0000000000aa",
        case_id=case.id,
        process_key="x",
        task_spec="review",
        name="初审",
        role="caseworker",
        area_code=VILLAGE,
        status=TaskStatus.READY,
        assignee_id=worker.id,
        created_at=now,
    )
    session.add(task)
    session.flush()
    users.update_user(session, people["admin"], worker.id, {"area_code": OTHER_TOWNSHIP})
    session.refresh(task)
    assert task.assignee_id is None
    entry = admin_log.history(session, subject="user", subject_id=worker.id)[0]
    assert entry.changes == {"area_code": [TOWNSHIP, OTHER_TOWNSHIP]}
    assert "管辖区划 410825100 → 410825101" in entry.summary


def _version(session) -> int:
    versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
    return versions.latest(session, "assessment").id


def test_disable_unlock_and_reset_take_effect_at_once(session, people, manual_clock):
    issued = _add(session, people["admin"])
    user = issued.user
    users.change_own_password(session, user, issued.temporary_password, "first-pass-1")
    secret, _token = tokens.login(session, "li.xm", "first-pass-1")
    for _ in range(users.MAX_FAILED_LOGINS):
        with pytest.raises(LoginRefused):
            users.authenticate(session, "li.xm", "wrong")
    assert users.is_locked(user)
    users.update_user(session, people["town_admin"], user.id, {"unlock": True})
    assert not users.is_locked(user)
    # A reset to a temporary password revokes the API tokens and must be changed again.
    reset = users.reset_password(session, people["admin"], user.id, "temporary")
    assert user.must_change_password
    with pytest.raises(tokens.NotAuthenticated):
        tokens.user_for_token(session, secret)
    assert users.authenticate(session, "li.xm", reset.temporary_password).id == user.id
    # Disabled: no sign-in.
    users.update_user(session, people["admin"], user.id, {"is_active": False})
    with pytest.raises(LoginRefused):
        users.authenticate(session, "li.xm", reset.temporary_password)


def test_a_one_time_link_sets_the_password_once_and_expires(session, people, manual_clock):
    user = _add(session, people["admin"]).user
    first = users.reset_password(session, people["admin"], user.id, "link").reset_token
    second = users.reset_password(session, people["admin"], user.id, "link").reset_token
    with pytest.raises(NotFound):  # the newer link voids the older one
        users.check_reset_link(session, first)
    assert users.check_reset_link(session, second).id == user.id
    with pytest.raises(ValidationFailed):
        users.redeem_reset_link(session, second, "short")
    users.redeem_reset_link(session, second, "linked-pass-1")
    assert (
        users.authenticate(session, "li.xm", "linked-pass-1").id == user.id and not user.must_change_password
    )
    with pytest.raises(NotFound):
        users.redeem_reset_link(session, second, "again-pass-1")
    late = users.reset_password(session, people["admin"], user.id, "link").reset_token
    manual_clock.advance(hours=users.RESET_LINK_HOURS, seconds=1)
    with pytest.raises(NotFound):
        users.check_reset_link(session, late)
    for hostile in ("", "x" * 500, "../../etc/passwd"):
        with pytest.raises(NotFound):
            users.check_reset_link(session, hostile)


def test_staff_are_linked_only_to_an_organisation_of_their_kind(session, people):
    admin = people["admin"]
    home = organisations.create_organisation(
        session,
        admin,
        {"kind": "facility", "name": "温县社会福利中心", "area_code": "410825", "beds": {"nursing": 10}},
    )
    provider = people["provider"]
    with pytest.raises(ValidationFailed) as refused:
        users.update_user(session, admin, provider.id, {"organisation_id": home.id})
    assert "服务机构不能隶属于公办养老机构" in refused.value.field_errors["organisation_id"]
    facility_admin = people["facility_admin"]
    users.update_user(session, admin, facility_admin.id, {"organisation_id": home.id})
    assert facility_admin.organisation_id == home.id
    # A new role outside the organisation's kind takes the link away with the old role.
    users.update_user(session, admin, facility_admin.id, {"role": "auditor"})
    assert facility_admin.organisation_id is None
    # A township's administrator cannot link anyone to the county's home.
    with pytest.raises(PermissionDenied):
        _add(
            session,
            people["town_admin"],
            username="home.staff",
            role="facility_admin",
            organisation_id=home.id,
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"role": "emperor"}, "role"),
        ({"area_code": "999999"}, "area_code"),
        ({"area_code": ["410825"]}, "area_code"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "名" * 65}, "display_name"),
        ({"is_active": "yes"}, "is_active"),
        ({"organisation_id": 2**40}, "organisation_id"),
        ({"password_hash": "x"}, "password_hash"),
    ],
)
def test_hostile_changes_are_refused_by_field(session, people, changes, field):
    target = people["assessor"]
    before = (target.role, target.area_code, target.display_name, target.password_hash)
    with pytest.raises(ValidationFailed) as refused:
        users.update_user(session, people["admin"], target.id, changes)
    assert field in refused.value.field_errors
    assert (target.role, target.area_code, target.display_name, target.password_hash) == before


def test_the_command_line_manages_any_account_and_is_logged_as_the_server(session, people):
    users.set_active(session, "o_caseworker2", False)
    assert not people["caseworker2"].is_active
    entry = admin_log.history(session, subject="user", subject_id=people["caseworker2"].id)[0]
    assert entry.actor_name == "命令行（服务器）" and entry.changes == {"is_active": [True, False]}
    with pytest.raises(RegistryError):
        users.add_user(
            session,
            None,
            {
                "username": "o_caseworker2",
                "display_name": "重名",
                "role": "caseworker",
                "area_code": TOWNSHIP,
            },
            password="long-enough-1",
        )


def test_temporary_passwords_are_unambiguous_and_unlike_each_other():
    made = {users.temporary_password() for _ in range(200)}
    assert len(made) == 200
    assert not any(set(p) & set("0O1lI") for p in made)
    assert timedelta(hours=users.RESET_LINK_HOURS) <= timedelta(days=1)
