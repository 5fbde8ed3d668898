from datetime import date, timedelta

import pytest
from sqlalchemy import select

from workflows.elders import (
    DuplicateElder,
    get_elder,
    list_changes,
    record_assessment,
    register_elder,
    search_elders,
    update_elder,
)
from workflows.errors import NotFound, PermissionDenied, RegistryError
from workflows.models.elders import Assessment, ElderChange, ElderStatus, LivingArrangement, Sex
from workflows.rules.assessment import ITEMS, AssessmentReason, DisabilityLevel, score_assessment
from workflows.rules.idnumber import mask_id_number

from .registry_world import DAYULAN_VILLAGE, FANTIAN_VILLAGE, make_id


def changes_of(session, elder_id):
    rows = session.scalars(
        select(ElderChange).where(ElderChange.elder_id == elder_id).order_by(ElderChange.id)
    )
    return [(c.field, c.old_value, c.new_value, c.reason) for c in rows]


def test_register_derives_birth_date_sex_and_age_from_the_id(session, users, elder_data):
    elder = register_elder(session, users["caseworker"], elder_data)

    assert elder.id is not None
    assert (elder.birth_date, elder.sex, elder.age_on(date(2025, 6, 1))) == (date(1950, 3, 15), Sex.MALE, 75)
    assert elder.status == ElderStatus.ACTIVE
    assert elder.living_alone is False and elder.empty_nest is True
    assert elder.contact_list() == [{"name": "王军", "relation": "儿子", "phone": "13900001111"}]
    assert elder.created_by == users["caseworker"].id


def test_register_writes_one_created_change_per_field(session, users, elder_data):
    elder = register_elder(session, users["village_assistant"], elder_data)

    changes = {field: (old, new, reason) for field, old, new, reason in changes_of(session, elder.id)}
    assert changes["name"] == (None, "王建国", "新登记")
    assert changes["birth_date"] == (None, "1950-03-15", "新登记")
    assert changes["sex"] == (None, "male", "新登记")
    assert changes["empty_nest"] == (None, "true", "新登记")
    assert changes["dibao"] == (None, "false", "新登记")
    assert "guardian_name" not in changes  # nothing recorded for what was not given
    assert all(old is None for old, _new, _reason in changes.values())


def test_register_accepts_chinese_labels_and_legacy_15_digit_ids(session, users, elder_data):
    data = {
        **elder_data,
        "id_number": "410825500315011",
        "hukou_type": "城镇",
        "living_arrangement": "独居",
        "empty_nest": "是",
        "tekun": "是",
        "home_support": "是",
        "severe_handicap": True,
        "severe_handicap_grade": "二级",
    }
    elder = register_elder(session, users["caseworker"], data)

    assert elder.id_number == make_id(date(1950, 3, 15))
    assert elder.living_arrangement == LivingArrangement.LIVING_ALONE
    assert elder.living_alone is True  # follows the arrangement when not stated
    assert (elder.tekun, elder.home_support, elder.severe_handicap_grade) == (True, True, 2)


YOUNG_ID = make_id(date(1970, 1, 1))
BAD_PHONE = "电话号码格式错误：请填写11位手机号，或带区号的固定电话（如 0391-1234567）"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": " "}, "name", "请填写姓名"),
        ({"name": "王2"}, "name", "姓名不能含数字"),
        ({"id_number": ""}, "id_number", "请填写身份证号"),
        ({"id_number": "110101202311012171"}, "id_number", "身份证号校验位错误：应为 6"),
        ({"id_number": "11010519490230002X"}, "id_number", "身份证号中的出生日期 19490230 不是有效日期"),
        ({"id_number": "4108251950"}, "id_number", "身份证号长度错误：应为18位（或旧版15位），实为10位"),
        ({"id_number": YOUNG_ID}, "id_number", "未满60周岁（按身份证号计算现年55周岁），不能登记为老年人"),
        ({"phone": "12345"}, "phone", BAD_PHONE),
        ({"hukou_type": ""}, "hukou_type", "请填写户籍类型（农村或城镇）"),
        ({"hukou_type": "外地"}, "hukou_type", "户籍类型“外地”无法识别：请填写“农村”或“城镇”"),
        ({"residence_area_code": ""}, "residence_area_code", "请填写居住村(社区)"),
        ({"residence_area_code": "410825100299"}, "residence_area_code", "行政区划代码 410825100299 不存在"),
        ({"residence_area_code": "410825100"}, "residence_area_code", "居住地须填到村(社区)一级（12位代码）"),
        ({"hukou_area_code": "999999"}, "hukou_area_code", "行政区划代码 999999 不存在"),
        ({"living_arrangement": ""}, "living_arrangement", "请填写居住状况"),
        (
            {"living_arrangement": "住院"},
            "living_arrangement",
            "居住状况“住院”无法识别：请填写独居、与配偶同住、与子女同住、入住机构、其他之一",
        ),
        ({"dibao": "可能"}, "dibao", "请填写“是”或“否”"),
        ({"home_support": True}, "home_support", "分散供养仅适用于特困人员：请同时选择特困，或取消分散供养"),
        (
            {"institutional_support": True},
            "institutional_support",
            "集中供养仅适用于特困人员：请同时选择特困，或取消集中供养",
        ),
        ({"tekun": True}, "tekun", "特困人员须选择供养方式：分散供养或集中供养"),
        (
            {"tekun": True, "institutional_support": True},
            "living_arrangement",
            "集中供养的特困人员居住状况应为“入住机构”",
        ),
        (
            {
                "tekun": True,
                "home_support": True,
                "institutional_support": True,
                "living_arrangement": "institution",
            },
            "institutional_support",
            "分散供养与集中供养只能选其一",
        ),
        ({"dibao": True, "tekun": True, "home_support": True}, "tekun", "低保、低保边缘、特困只能选其一"),
        ({"dibao": True, "near_dibao": True}, "near_dibao", "低保、低保边缘、特困只能选其一"),
        ({"severe_handicap_grade": 2}, "severe_handicap_grade", "只有重度残疾才填写残疾等级"),
        (
            {"severe_handicap": True, "severe_handicap_grade": 5},
            "severe_handicap_grade",
            "残疾等级须为1至4级（一级最重）",
        ),
        ({"living_alone": True}, "living_alone", "居住状况为“与配偶同住”，与独居矛盾"),
        (
            {"living_arrangement": "living_alone", "living_alone": False},
            "living_alone",
            "居住状况为“独居”，独居应为“是”",
        ),
        (
            {"living_arrangement": "with_children"},
            "empty_nest",
            "空巢老人不与子女同住，与居住状况“与子女同住”矛盾",
        ),
        (
            {"contacts": [{"name": "王军", "relation": "儿子", "phone": "110"}]},
            "contacts",
            f"第1位联系人：{BAD_PHONE}",
        ),
        ({"contacts": [{"relation": "儿子", "phone": "13900001111"}]}, "contacts", "第1位联系人：请填写姓名"),
        ({"guardian_phone": "13900002222"}, "guardian_name", "填写了监护人电话，请同时填写监护人姓名"),
        ({"birth_date": "1950-01-01"}, "birth_date", "不能填写或修改此项"),
        ({"status": "deceased"}, "status", "不能填写或修改此项"),
    ],
)
def test_register_refuses_invalid_data(session, users, elder_data, changes, field, message):
    with pytest.raises(RegistryError) as caught:
        register_elder(session, users["caseworker"], {**elder_data, **changes})

    assert caught.value.field_errors[field] == message
    assert message in caught.value.message
    assert session.scalars(select(ElderChange)).first() is None


def test_register_reports_every_field_at_once(session, users, elder_data):
    with pytest.raises(RegistryError) as caught:
        register_elder(
            session, users["caseworker"], {**elder_data, "name": "", "phone": "1", "hukou_type": ""}
        )

    assert set(caught.value.field_errors) == {"name", "phone", "hukou_type"}
    assert caught.value.message.startswith("老人信息有误，请修改后重新提交。姓名：请填写姓名；")


def test_duplicate_id_is_refused_pointing_at_the_existing_record(session, users, elder_data):
    first = register_elder(session, users["caseworker"], elder_data)

    # The same person again, typed in the legacy 15-digit form, by the assistant of the same village.
    again = {**elder_data, "name": "王建国", "id_number": "410825500315011"}
    with pytest.raises(DuplicateElder) as caught:
        register_elder(session, users["village_assistant"], again)

    masked = mask_id_number(make_id(date(1950, 3, 15)))
    expected = f"身份证号 {masked} 已登记：老人档案 #{first.id}（王**，温县祥云镇祥云村），请勿重复登记"
    assert caught.value.message == expected
    assert caught.value.field_errors == {"id_number": expected}
    assert caught.value.existing_id == first.id
    # The refusal left the session usable.
    assert get_elder(session, users["caseworker"], first.id) is first


def test_update_audits_each_changed_field_old_to_new(session, users, elder_data, frozen_clock):
    elder = register_elder(session, users["caseworker"], elder_data)
    created = len(changes_of(session, elder.id))
    frozen_clock.advance(days=3)

    update_elder(
        session,
        users["village_assistant"],
        elder.id,
        {"phone": "0391-6123456", "living_arrangement": "独居", "dibao": "是", "address": "3组12号"},
        reason="入户核实",
    )

    later = changes_of(session, elder.id)[created:]
    assert later == [
        ("phone", "13812345678", "0391-6123456", "入户核实"),
        ("living_arrangement", "with_spouse", "living_alone", "入户核实"),
        ("dibao", "false", "true", "入户核实"),
        ("living_alone", "false", "true", "入户核实"),
    ]
    assert elder.updated_at == frozen_clock.current
    history = list_changes(session, users["auditor"], elder.id)
    assert history[-1].actor_id == users["village_assistant"].id


def test_update_of_id_number_rederives_and_audits_birth_date_and_sex(session, users, elder_data):
    elder = register_elder(session, users["caseworker"], elder_data)
    created = len(changes_of(session, elder.id))
    corrected = make_id(date(1950, 3, 16), sequence=12)

    update_elder(session, users["caseworker"], elder.id, {"id_number": corrected}, reason="身份证号录入错误")

    assert [change[:3] for change in changes_of(session, elder.id)[created:]] == [
        ("id_number", make_id(date(1950, 3, 15)), corrected),
        ("sex", "male", "female"),
        ("birth_date", "1950-03-15", "1950-03-16"),
    ]


def test_update_without_real_change_writes_nothing(session, users, elder_data):
    elder = register_elder(session, users["caseworker"], elder_data)
    before = changes_of(session, elder.id)

    update_elder(session, users["caseworker"], elder.id, {"phone": "138 1234 5678", "hukou_type": "农村"})

    assert changes_of(session, elder.id) == before


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"status": "deceased"}, "deceased_on", "状态为已故时须填写死亡日期"),
        ({"deceased_on": "2025-05-01"}, "deceased_on", "只有已故老人才填写死亡日期"),
        ({"status": "deceased", "deceased_on": "2025-07-01"}, "deceased_on", "死亡日期不能晚于今天"),
        ({"status": "gone"}, "status", "状态须为在册、已故或迁出"),
        ({"birth_date": date(1950, 1, 1)}, "birth_date", "不能填写或修改此项"),
        ({"disability_level": "complete"}, "disability_level", "不能填写或修改此项"),
        ({"home_support": True}, "home_support", "分散供养仅适用于特困人员：请同时选择特困，或取消分散供养"),
    ],
)
def test_update_refuses_invalid_changes_and_changes_nothing(
    session, users, elder_data, changes, field, message
):
    elder = register_elder(session, users["caseworker"], elder_data)
    before = changes_of(session, elder.id)

    with pytest.raises(RegistryError) as caught:
        update_elder(session, users["caseworker"], elder.id, changes)

    assert caught.value.field_errors[field] == message
    assert changes_of(session, elder.id) == before
    assert elder.status == ElderStatus.ACTIVE


def test_update_records_a_death(session, users, elder_data):
    elder = register_elder(session, users["caseworker"], elder_data)

    update_elder(
        session, users["caseworker"], elder.id, {"status": "已故", "deceased_on": "2025-05-20"}, "家属告知"
    )

    assert (elder.status, elder.deceased_on) == (ElderStatus.DECEASED, date(2025, 5, 20))
    assert changes_of(session, elder.id)[-2:] == [
        ("status", "active", "deceased", "家属告知"),
        ("deceased_on", None, "2025-05-20", "家属告知"),
    ]


def test_update_refuses_a_duplicate_id(session, users, elder_data):
    first = register_elder(session, users["caseworker"], elder_data)
    other = register_elder(
        session,
        users["caseworker"],
        {**elder_data, "name": "李桂兰", "id_number": make_id(date(1948, 5, 2), 22)},
    )

    with pytest.raises(DuplicateElder) as caught:
        update_elder(session, users["caseworker"], other.id, {"id_number": first.id_number})

    assert caught.value.existing_id == first.id


# ---- area and role scope ------------------------------------------------------------------------------


@pytest.fixture
def two_elders(session, users, elder_data):
    """One elder in 祥云镇祥云村, one in 番田镇番田村."""
    xiangyun = register_elder(session, users["caseworker"], elder_data)
    fantian = register_elder(
        session,
        users["caseworker2"],
        {
            **elder_data,
            "name": "王桂兰",
            "id_number": make_id(date(1940, 8, 8), 22),
            "residence_area_code": FANTIAN_VILLAGE,
        },
    )
    return xiangyun, fantian


def test_caseworker_cannot_register_an_elder_of_another_township(session, users, elder_data):
    with pytest.raises(PermissionDenied) as caught:
        register_elder(session, users["caseworker2"], elder_data)

    assert caught.value.message == "无权操作：该老人居住在温县祥云镇祥云村，不在您的管辖范围（温县番田镇）内"


@pytest.mark.parametrize(
    ("username", "xiangyun", "fantian"),
    [
        ("caseworker", True, False),
        ("caseworker2", False, True),
        ("village_assistant", True, False),
        ("approver", True, True),
        ("auditor", True, True),
        ("assessor", True, True),
        ("admin", True, True),
        ("provider", False, False),
        ("facility_admin", False, False),
        ("process_owner", False, False),
    ],
)
def test_reading_an_elder_needs_area_and_role(session, users, two_elders, username, xiangyun, fantian):
    for elder, allowed in zip(two_elders, (xiangyun, fantian), strict=True):
        if allowed:
            assert get_elder(session, users[username], elder.id) is elder
        else:
            with pytest.raises(PermissionDenied):
                get_elder(session, users[username], elder.id)


def test_village_assistant_sees_only_their_village(session, users, elder_data):
    neighbour = register_elder(
        session, users["caseworker"], {**elder_data, "residence_area_code": DAYULAN_VILLAGE}
    )

    with pytest.raises(PermissionDenied):
        get_elder(session, users["village_assistant"], neighbour.id)
    with pytest.raises(PermissionDenied):
        update_elder(session, users["village_assistant"], neighbour.id, {"phone": "13900000000"})


@pytest.mark.parametrize("username", ["auditor", "approver", "provider", "assessor"])
def test_roles_that_do_not_keep_the_register_cannot_change_it(session, users, elder_data, username):
    with pytest.raises(PermissionDenied) as caught:
        register_elder(session, users[username], elder_data)
    assert caught.value.message.startswith("您的角色（")


def test_caseworker_cannot_update_an_elder_of_another_township(session, users, two_elders):
    _xiangyun, fantian = two_elders
    with pytest.raises(PermissionDenied):
        update_elder(session, users["caseworker"], fantian.id, {"phone": "13900000000"})


def test_inactive_user_is_refused(session, users, two_elders):
    users["caseworker"].is_active = False
    with pytest.raises(PermissionDenied, match="账号已停用"):
        get_elder(session, users["caseworker"], two_elders[0].id)


def test_unknown_elder_is_not_found(session, users):
    with pytest.raises(NotFound, match="老人档案 #999999 不存在"):
        get_elder(session, users["admin"], 999999)


@pytest.mark.parametrize(
    ("username", "query", "expected"),
    [
        ("caseworker", "王", ["王建国"]),
        ("caseworker2", "王", ["王桂兰"]),
        ("approver", "王", ["王建国", "王桂兰"]),
        ("approver", "桂兰", ["王桂兰"]),
        ("caseworker", "桂兰", []),
        ("approver", "19500315", ["王建国"]),
        ("approver", "19400808", ["王桂兰"]),
        ("approver", "%", []),  # LIKE wildcards are searched for literally
        ("village_assistant", "", ["王建国"]),
    ],
)
def test_search_stays_inside_the_actors_area(session, users, two_elders, username, query, expected):
    found = search_elders(session, users[username], query)
    assert [elder.name for elder in found] == expected


def test_search_refuses_roles_without_register_access(session, users, two_elders):
    with pytest.raises(PermissionDenied):
        search_elders(session, users["provider"], "王")


def test_search_honours_limit_and_puts_exact_matches_first(session, users, elder_data):
    for number in range(5):
        register_elder(
            session,
            users["caseworker"],
            {
                **elder_data,
                "name": f"王建国{'甲乙丙丁戊'[number]}",
                "id_number": make_id(date(1945, 1, 1), 31 + 2 * number),
            },
        )
    register_elder(session, users["caseworker"], elder_data)

    found = search_elders(session, users["caseworker"], "王建国", limit=3)

    assert [elder.name for elder in found] == ["王建国", "王建国丁", "王建国丙"]


# ---- assessments -----------------------------------------------------------------------------------------


def scores_for(total: int) -> dict[str, int]:
    """Return item scores adding up to `total`, taken off the items in order."""
    items = {item.key: item.max_score for item in ITEMS}
    deficit = sum(items.values()) - total
    for item in ITEMS:
        cut = min(deficit, items[item.key])
        items[item.key] -= cut
        deficit -= cut
    return items


def test_record_assessment_stores_it_and_updates_the_elder(session, users, elder_data):
    elder = register_elder(session, users["caseworker"], elder_data)
    items = scores_for(50)
    result = score_assessment(items, dementia=True)

    assessment = record_assessment(
        session, users["assessor"], elder.id, result, date(2025, 5, 20), "initial", case_id=42, items=items
    )

    assert (assessment.total, assessment.level, assessment.reason) == (
        50,
        DisabilityLevel.SEVERE,
        AssessmentReason.INITIAL,
    )
    assert assessment.item_scores() == items
    assert assessment.valid_until == date(2026, 5, 20)
    assert assessment.case_id == 42 and assessment.assessor_id == users["assessor"].id
    assert "确诊痴呆（F00–F03），上调一个等级" in assessment.adjustments
    assert (elder.disability_level, elder.disability_assessed_on, elder.disability_valid_until) == (
        DisabilityLevel.SEVERE,
        date(2025, 5, 20),
        date(2026, 5, 20),
    )
    assert changes_of(session, elder.id)[-3:] == [
        ("disability_level", None, "severe", f"能力评估 #{assessment.id}（首次评估）"),
        ("disability_assessed_on", None, "2025-05-20", f"能力评估 #{assessment.id}（首次评估）"),
        ("disability_valid_until", None, "2026-05-20", f"能力评估 #{assessment.id}（首次评估）"),
    ]
    assert elder.current_disability_level(date(2026, 5, 20)) == DisabilityLevel.SEVERE
    assert elder.current_disability_level(date(2026, 5, 21)) is None


class ResultWithItems:
    """A result object as other callers may pass it: items carried on the result itself."""

    def __init__(self, items, level, adjustments=()):
        self.items, self.total, self.level, self.adjustments = (
            items,
            sum(items.values()),
            level,
            list(adjustments),
        )


def test_an_older_assessment_entered_late_does_not_replace_the_current_level(session, users, elder_data):
    elder = register_elder(session, users["caseworker"], elder_data)
    record_assessment(
        session,
        users["assessor"],
        elder.id,
        ResultWithItems(scores_for(70), "mild"),
        date(2025, 5, 1),
        "routine",
    )

    record_assessment(
        session,
        users["caseworker"],
        elder.id,
        ResultWithItems(scores_for(40), "severe"),
        date(2024, 5, 1),
        "initial",
    )

    assert (elder.disability_level, elder.disability_assessed_on) == (DisabilityLevel.MILD, date(2025, 5, 1))
    assert len(session.scalars(select(Assessment).where(Assessment.elder_id == elder.id)).all()) == 2


@pytest.mark.parametrize(
    ("result", "kwargs", "field", "message"),
    [
        (
            ResultWithItems(scores_for(70), "intact"),
            {},
            "level",
            "评估等级不能低于按总分确定的等级（轻度失能）",
        ),
        (
            ResultWithItems(scores_for(70), "unknown"),
            {},
            "level",
            "评估等级须为能力完好、轻度、中度、重度或完全失能",
        ),
        (
            type("R", (), {"total": 70, "level": "mild", "adjustments": []})(),
            {},
            "items",
            "缺少各评估项目得分",
        ),
        (
            type("R", (), {"total": 71, "level": "mild", "adjustments": [], "items": scores_for(70)})(),
            {},
            "total",
            "总分 71 与各项得分之和 70 不符",
        ),
        (ResultWithItems({"eating": 4}, "mild"), {}, "items", None),
        (
            ResultWithItems(scores_for(70), "mild"),
            {"reason": "weekly"},
            "reason",
            "评估类型须为首次评估、常规评估、即时评估或复评",
        ),
        (
            ResultWithItems(scores_for(70), "mild"),
            {"assessed_on": date(2025, 6, 2)},
            "assessed_on",
            "评估日期不能晚于今天",
        ),
    ],
)
def test_record_assessment_refuses_inconsistent_results(
    session, users, elder_data, result, kwargs, field, message
):
    elder = register_elder(session, users["caseworker"], elder_data)
    arguments = {"assessed_on": date(2025, 5, 1), "reason": "routine", **kwargs}

    with pytest.raises(RegistryError) as caught:
        record_assessment(
            session, users["assessor"], elder.id, result, arguments["assessed_on"], arguments["reason"]
        )

    assert field in caught.value.field_errors
    if message is not None:
        assert caught.value.field_errors[field] == message
    assert elder.disability_level is None


def test_record_assessment_needs_an_assessing_role_in_the_area(session, users, two_elders):
    xiangyun, fantian = two_elders
    result = ResultWithItems(scores_for(70), "mild")
    with pytest.raises(PermissionDenied):
        record_assessment(session, users["auditor"], xiangyun.id, result, date(2025, 5, 1), "routine")
    with pytest.raises(PermissionDenied):
        record_assessment(session, users["caseworker"], fantian.id, result, date(2025, 5, 1), "routine")


def test_assessment_validity_months_is_configurable(session, users, elder_data):
    elder = register_elder(session, users["caseworker"], elder_data)
    assessment = record_assessment(
        session,
        users["assessor"],
        elder.id,
        ResultWithItems(scores_for(60), "moderate"),
        date(2025, 1, 31),
        "initial",
        valid_months=1,
    )
    assert assessment.valid_until == date(2025, 2, 28)
    assert elder.disability_valid_until == date(2025, 2, 28)
    assert elder.current_disability_level(date(2025, 1, 31) + timedelta(days=28)) == DisabilityLevel.MODERATE


def test_an_id_ending_in_x_can_be_typed_and_searched_in_lower_case(session, users, elder_data):
    number = next(
        make_id(date(1951, 1, 1), s) for s in range(1, 999, 2) if make_id(date(1951, 1, 1), s).endswith("X")
    )

    elder = register_elder(session, users["caseworker"], {**elder_data, "id_number": number.lower()})

    assert elder.id_number == number
    assert search_elders(session, users["caseworker"], number[-6:].lower()) == [elder]
