"""Areas added, renamed and retired inside one's own; organisations registered with their service areas,
contract and 六助, or their beds by type; the providers an order can go to follow from them."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from tests.factories import OTHER_TOWNSHIP, TOWNSHIP, VILLAGE, add_elder, id_number
from workflows import admin_log, areas, organisations
from workflows.errors import Conflict, PermissionDenied, RegistryError, ValidationFailed
from workflows.models.admission import Facility
from workflows.models.organisations import BedType


def test_areas_are_added_below_ones_own_and_never_twice(session, people):
    town = people["town_admin"]
    added = areas.add_area(session, f"{TOWNSHIP}209", "新合村", actor=town)
    assert (added.parent_code, added.level.value) == (TOWNSHIP, "village")
    for code, says in (
        (f"{OTHER_TOWNSHIP}209", "只能在本人管辖的区划"),
        ("410825102", "只能在本人管辖的区划"),
        (TOWNSHIP, "只能在本人管辖的区划"),
        (f"{TOWNSHIP}209", "已存在"),
        ("41082510020", "应为6位"),
        ("4108251002０9", "应为6位"),  # a full-width digit
    ):
        with pytest.raises(RegistryError) as refused:
            areas.add_area(session, code, "某村", actor=town)
        assert says in refused.value.field_errors["code"], code
    with pytest.raises(PermissionDenied):
        areas.add_area(session, f"{TOWNSHIP}210", "某村", actor=people["caseworker"])
    assert admin_log.history(session, subject="area", subject_id=added.code)[0].summary == (
        f"添加村（社区） {TOWNSHIP}209 新合村"
    )


def test_an_area_in_use_is_not_retired_one_nobody_uses_is_and_comes_back(session, people):
    admin = people["admin"]
    add_elder(session, id_number=id_number(date(1940, 1, 1), 31), village=VILLAGE)
    with pytest.raises(Conflict) as refused:
        areas.retire_area(session, admin, VILLAGE, "并村")
    assert "1 个启用的用户" in refused.value.message and "1 位在册老人" in refused.value.message
    empty = areas.add_area(session, f"{TOWNSHIP}299", "空村", actor=admin)
    with pytest.raises(RegistryError):
        areas.retire_area(session, admin, empty.code, " ")
    areas.retire_area(session, admin, empty.code, "并入祥云村")
    assert empty.retired_at is not None
    # Nobody is put in a retired area, and nothing is added below it.
    assert empty.code not in {a.code for a in areas.assignable_areas(session, admin)}
    areas.rename_area(session, admin, empty.code, "空村（已并）")
    areas.restore_area(session, admin, empty.code)
    assert empty.retired_at is None and empty.name == "空村（已并）"
    assert [e.action for e in admin_log.history(session, subject="area", subject_id=empty.code)] == [
        "restored",
        "renamed",
        "retired",
        "added",
    ]
    with pytest.raises(PermissionDenied):
        areas.retire_area(session, people["town_admin"], TOWNSHIP, "自己")


def test_the_tree_shows_ones_own_areas_with_their_people(session, people):
    tree = areas.area_tree(session, people["town_admin"])
    [county] = tree
    assert county.area.code == "410825" and not county.managed
    [town] = county.children
    assert town.area.code == TOWNSHIP and town.managed and town.users == 2  # caseworker, town_admin
    assert {c.area.code for c in town.children} >= {VILLAGE}


def _provider(session, admin, **overrides):
    data = {
        "kind": "provider",
        "name": "番田镇爱心助老服务站",
        "area_code": "410825",
        "phone": "0391-6100000",
        "contract_start": "2025-01-01",
        "contract_end": "2025-12-31",
        "services": ["meal", "cleaning"],
        "service_areas": [OTHER_TOWNSHIP],
        **overrides,
    }
    return organisations.create_organisation(session, admin, data)


def test_a_provider_takes_orders_only_within_its_contract_areas_and_services(session, people):
    provider = _provider(session, people["admin"])
    day = date(2025, 6, 2)

    def why(area, services, on=day):
        return organisations.why_not_dispatchable(session, provider, area, services, on)

    assert why(f"{OTHER_TOWNSHIP}201", ["meal"]) is None
    assert "服务区域不含" in why(VILLAGE, ["meal"])
    assert "不提供：助浴" in why(f"{OTHER_TOWNSHIP}201", ["meal", "bathing"])
    assert "合同不在有效期内" in why(f"{OTHER_TOWNSHIP}201", ["meal"], date(2026, 1, 1))
    organisations.update_organisation(session, people["admin"], provider.id, {"is_active": False})
    assert "已停用" in why(f"{OTHER_TOWNSHIP}201", ["meal"])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"contract_end": "2024-12-31"}, "contract_end"),
        ({"contract_end": None}, "contract_end"),
        ({"contract_start": "2025-13-01"}, "contract_start"),
        ({"services": ["meal", "massage"]}, "services"),
        ({"services": "meal"}, "services"),
        ({"service_areas": ["999999"]}, "service_areas"),
        ({"name": ""}, "name"),
        ({"phone": "12345"}, "phone"),
        ({"kind": "bank"}, "kind"),
        ({"area_code": OTHER_TOWNSHIP}, "area_code"),
    ],
)
def test_a_provider_with_wrong_details_is_refused_by_field(session, people, overrides, field):
    actor = people["town_admin"] if field == "area_code" else people["admin"]
    with pytest.raises(ValidationFailed) as refused:
        _provider(session, actor, **overrides)
    assert field in refused.value.field_errors


def test_a_nursing_home_has_beds_by_type_and_a_facility_row_kept_in_step(session, people):
    admin = people["admin"]
    home = organisations.create_organisation(
        session,
        admin,
        {
            "kind": "facility",
            "name": "温县第二福利院",
            "area_code": "410825",
            "beds": {"self_care": 10, "nursing": "25"},
        },
    )
    facility = session.scalar(select(Facility).where(Facility.organisation_id == home.id))
    assert facility.beds == 35
    assert organisations.bed_counts(session, facility.id) == {
        BedType.SELF_CARE: 10,
        BedType.NURSING: 25,
        BedType.DEMENTIA: 0,
    }
    organisations.update_organisation(
        session, admin, home.id, {"name": "温县第二社会福利院", "beds": {"dementia": 8}}
    )
    assert (facility.name, facility.beds) == ("温县第二社会福利院", 8)
    entry = admin_log.history(session, subject="organisation", subject_id=home.id)[0]
    assert entry.summary == "修改公办养老机构 温县第二社会福利院：名称、床位"
    for beds in ({"nursing": -1}, {"nursing": 10001}, {"nursing": True}, {"suite": 2}, "many"):
        with pytest.raises(ValidationFailed):
            organisations.update_organisation(session, admin, home.id, {"beds": beds})
    with pytest.raises(PermissionDenied):
        organisations.get_organisation(session, people["town_admin"], home.id)
