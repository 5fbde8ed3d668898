"""Staff of an organisation read and work only its own cases: a provider's orders, a nursing home's
applications and queue. Dispatch offers only accounts whose organisation is under contract, serves the
elder's area and offers what was applied for."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.processes.admission.test_admission import offers_of, queued, vacancy
from tests.processes.harness import World
from tests.processes.home_care.test_home_care import APPLICATION, REVIEW_PASS, apply, make_elder
from workflows import cases, inbox, organisations, tasks, users
from workflows.errors import PermissionDenied, ValidationFailed
from workflows.models import Case, HumanTask, Role, TaskStatus, User
from workflows.models.admission import Facility
from workflows.processes.admission import beds, waitlist
from workflows.processes.home_care import enrolment as home_care


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)


def _provider_org(world, name, **overrides):
    data = {
        "kind": "provider",
        "name": name,
        "area_code": "410825",
        "contract_start": "2025-01-01",
        "contract_end": "2026-12-31",
        "services": ["meal", "cleaning", "bathing"],
        "service_areas": ["410825"],
        **overrides,
    }
    return organisations.create_organisation(world.session, world.users["admin"], data)


def _staff(world, username, organisation, role=Role.PROVIDER):
    user = User(
        username=username,
        display_name=username,
        role=role,
        area_code="410825",
        created_at=world.clock(),
        organisation_id=organisation.id,
    )
    world.session.add(user)
    world.session.flush()
    return user


def _to_dispatch(world):
    case = apply(world, make_elder(world))
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "approve", "comment": "同意"})
    return case, next(t for t in world.ready(case) if t.task_spec == "dispatch_provider")


def test_dispatch_offers_accounts_of_organisations_that_can_take_the_order(world):
    kangle = _provider_org(world, "康乐")
    world.users["provider"].organisation_id = kangle.id
    _staff(world, "short_contract", _provider_org(world, "合同过期", contract_end="2025-05-31"))
    _staff(world, "no_bathing", _provider_org(world, "不助浴", services=["meal", "cleaning"]))
    _staff(world, "elsewhere", _provider_org(world, "番田", service_areas=["410825101"]))
    case, task = _to_dispatch(world)
    offered = home_care.provider_options(world.session, world.refresh(case))
    assert [label for _id, label in offered] == ["康乐（provider）"]
    refused_id = world.session.scalar(select(User.id).where(User.username == "no_bathing"))
    with pytest.raises(ValidationFailed) as refused:
        tasks.complete(world.session, world.users["caseworker"], task.id, {"provider_id": refused_id})
    assert refused.value.field_errors == {"provider_id": "不助浴不提供：助浴"}
    assert APPLICATION["requested_services"] == ["meal", "cleaning", "bathing"]


def test_another_providers_staff_neither_read_nor_work_an_order(world):
    ours, theirs = _provider_org(world, "康乐"), _provider_org(world, "夕阳红")
    world.users["provider"].organisation_id = ours.id
    colleague = _staff(world, "kangle_2", ours)
    stranger = _staff(world, "xiyang_1", theirs)
    case, task = _to_dispatch(world)
    tasks.complete(
        world.session, world.users["caseworker"], task.id, {"provider_id": world.users["provider"].id}
    )
    case = world.refresh(case)
    assert case.organisation_id == ours.id
    accept = next(t for t in world.ready(case) if t.task_spec == "provider_accept")
    assert cases.may_read(world.session, colleague, case) and not cases.may_read(
        world.session, stranger, case
    )
    with pytest.raises(PermissionDenied):
        cases.get_case(world.session, stranger, case.id)
    with pytest.raises(PermissionDenied):
        tasks.complete(
            world.session, stranger, accept.id, {"decision": "accept", "planned_start_on": "2025-07-01"}
        )
    seen = inbox.list_inbox(world.session, stranger, inbox.InboxFilter(scope=inbox.Scope.ALL))
    assert accept.id not in {r.id for r in seen.rows}
    # A supervisor may hand the order to a colleague of the same organisation, never to another's.
    candidates = {u.username for u in inbox.assignable_users(world.session, world.users["approver"], accept)}
    assert "kangle_2" in candidates and "xiyang_1" not in candidates
    with pytest.raises(ValidationFailed):
        tasks.assign(world.session, world.users["approver"], accept.id, stranger.id)
    tasks.assign(world.session, world.users["approver"], accept.id, colleague.id)
    tasks.complete(
        world.session, colleague, accept.id, {"decision": "accept", "planned_start_on": "2025-07-01"}
    )


def test_moving_staff_to_another_organisation_releases_its_orders(world):
    ours, theirs = _provider_org(world, "康乐"), _provider_org(world, "夕阳红")
    provider = world.users["provider"]
    provider.organisation_id = ours.id
    case, task = _to_dispatch(world)
    tasks.complete(world.session, world.users["caseworker"], task.id, {"provider_id": provider.id})
    accept = next(t for t in world.ready(case) if t.task_spec == "provider_accept")
    assert accept.assignee_id == provider.id
    users.update_user(world.session, world.users["admin"], provider.id, {"organisation_id": theirs.id})
    world.session.refresh(accept)
    assert accept.assignee_id is None and accept.status == TaskStatus.READY


def test_a_homes_staff_see_only_their_homes_queue_and_applications(world):
    admin = world.users["admin"]
    first = organisations.create_organisation(
        world.session, admin, {"kind": "facility", "name": "一院", "area_code": "410825"}
    )
    second = organisations.create_organisation(
        world.session, admin, {"kind": "facility", "name": "二院", "area_code": "410825"}
    )
    home_one = world.session.scalar(select(Facility).where(Facility.organisation_id == first.id))
    home_two = world.session.scalar(select(Facility).where(Facility.organisation_id == second.id))
    staff_one = world.users["facility_admin"]
    staff_one.organisation_id = first.id
    staff_two = _staff(world, "home_two", second, Role.FACILITY_ADMIN)
    case = queued(world, home_one, name="申请一院")
    assert world.refresh(case).organisation_id == first.id
    assert [p.elder_name for p in waitlist.waitlist(world.session, staff_one, home_one.id)] == ["申请一院"]
    with pytest.raises(PermissionDenied):
        waitlist.waitlist(world.session, staff_two, home_one.id)
    with pytest.raises(PermissionDenied):
        beds.page(world.session, staff_two, home_one.id)
    with pytest.raises(PermissionDenied):
        waitlist.register_vacancy(world.session, staff_two, home_one.id, "1-1")
    assert [f.id for f in beds.readable_facilities(world.session, staff_two)] == [home_two.id]
    vacancy(world, home_one)
    [offer] = offers_of(world, case)
    assert not cases.may_read(world.session, staff_two, world.refresh(case))
    arrival = world.session.scalar(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
    )
    with pytest.raises(PermissionDenied):
        tasks.claim(world.session, staff_two, arrival.id)
    page = beds.page(world.session, staff_one, home_one.id)
    assert [o.offer_id for o in page.offers] == [offer.id]
    assert page.queue[0].case_id == case.id and "已通知床位" in page.queue[0].explanation
    # The county's office supervises every home of its area.
    assert beds.page(world.session, world.users["approver"], home_two.id).facility.id == home_two.id
    assert world.session.get(Case, case.id).organisation_id == first.id
