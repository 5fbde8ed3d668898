"""Running cases through the functions the web layer uses: start, complete, audit, errors."""

import pytest
from sqlalchemy import func, select

from tests.factories import ORDER_ANSWERS
from workflows import access, audit, cases, engine, tasks
from workflows.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from workflows.models import CaseEvent, CaseStatus, EventKind, HumanTask, TaskStatus

from .conftest import TOWNSHIP


def ready(session, case_id):
    return list(
        session.scalars(
            select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.READY)
        )
    )


def test_interop_order_product_runs_start_to_end(session, deployed):
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    done = []
    while todo := ready(session, case.id):
        task = min(todo, key=lambda t: t.task_spec)  # fulfilment and charging run in parallel
        cases.forget_live_instances()  # every step restored from the stored state
        tasks.complete(session, caseworker, task.id, ORDER_ANSWERS.get(task.task_spec, {}))
        done.append(task.task_spec)
    session.expire_all()
    case = cases.get_case(session, caseworker, case.id)
    assert case.status == CaseStatus.COMPLETED
    data = cases.case_data(case)
    # The call activity's decision table priced product F at 30 each; the shipping table added 5.
    assert (data["product_price"], data["shipping_cost"], data["order_total"]) == (30.0, 5.0, 65.0)
    assert done[:4] == ["Activity_1uazifo", "Activity_0263vxi", "Activity_1x0wxtq", "Activity_1mkqpod"]
    assert {"Activity_1p0c9z2", "Activity_1f76alf", "Activity_1f2e8xi"} <= set(done)  # manual tasks too
    kinds = [
        e.kind
        for e in session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
        )
    ]
    assert kinds[0] == EventKind.STARTED and kinds[-1] == EventKind.COMPLETED
    assert kinds.count(EventKind.TASK_COMPLETED) == len(done)
    assert audit.verify_chain(session, case.id) == []


def test_form_errors_are_field_level_in_chinese_and_nothing_is_written(session, deployed):
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    task = ready(session, case.id)[0]
    events_before = session.scalar(
        select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case.id)
    )
    with pytest.raises(ValidationFailed) as raised:
        tasks.complete(
            session, caseworker, task.id, {"product_name": "product_z", "product_quantity": "两个"}
        )
    assert raised.value.field_errors == {"product_name": "不是允许的选项", "product_quantity": "应为整数"}
    with pytest.raises(ValidationFailed) as raised:
        tasks.complete(session, caseworker, task.id, {})
    assert raised.value.field_errors == {"product_name": "此项为必填项", "product_quantity": "此项为必填项"}
    session.expire_all()
    assert session.get(HumanTask, task.id).status == TaskStatus.READY
    assert (
        session.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case.id))
        == events_before
    )


def test_completing_twice_or_a_withdrawn_task_is_a_clear_conflict(session, deployed):
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    task = ready(session, case.id)[0]
    tasks.complete(session, caseworker, task.id, ORDER_ANSWERS["Activity_1uazifo"])
    with pytest.raises(Conflict) as raised:
        tasks.complete(session, caseworker, task.id, ORDER_ANSWERS["Activity_1uazifo"])
    assert "已由caseworker用户" in raised.value.message and "办理完成" in raised.value.message


def test_ids_beyond_the_databases_integers_are_not_found(session, deployed):
    # 2**40 overflows PostgreSQL's integer ids and 2**70 SQLite's: "not found", never a driver error.
    caseworker = deployed["caseworker"]
    for huge in (2**40, 2**70):
        with pytest.raises(NotFound):
            cases.get_case(session, caseworker, huge)
    # The transaction goes on (a driver error would have aborted it on PostgreSQL).
    assert session.scalar(select(func.count()).select_from(CaseEvent)) >= 0


def test_numbers_a_case_cannot_hold_are_field_errors_and_nothing_is_written(session, deployed):
    # Too large for the stored state (or for a browser to read back exactly), or not a number at all
    # (NaN would be stored as null): refused like any other bad field.
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    task = ready(session, case.id)[0]
    for bad in (2**70, 2**53, float("nan"), float("inf")):
        answers = {**ORDER_ANSWERS["Activity_1uazifo"], "product_quantity": bad}
        with pytest.raises(ValidationFailed) as raised:
            tasks.complete(session, caseworker, task.id, answers)
        assert raised.value.field_errors["product_quantity"] == "数值超出允许范围"
        with pytest.raises(ValidationFailed):
            tasks.complete(session, caseworker, task.id, {**ORDER_ANSWERS["Activity_1uazifo"], "note": [bad]})
    session.expire_all()
    assert session.get(HumanTask, task.id).status == TaskStatus.READY
    tasks.complete(
        session, caseworker, task.id, {**ORDER_ANSWERS["Activity_1uazifo"], "product_quantity": 2**53 - 1}
    )


def test_a_step_without_a_lane_is_the_offices_work_not_outside_staffs(session, deployed):
    # The interop diagram has no lanes: its steps go to the office's staff, never to a provider or a home.
    case = cases.start_case(session, deployed["caseworker"], "order_product", area_code=TOWNSHIP)
    task = ready(session, case.id)[0]
    assert task.role is None
    assert access.can_work_task(deployed["caseworker"], task)
    for outside in ("provider", "facility_admin"):
        assert not access.can_work_task(deployed[outside], task)
        assert not cases.may_read(session, deployed[outside], case)
        with pytest.raises(PermissionDenied):
            tasks.complete(session, deployed[outside], task.id, ORDER_ANSWERS["Activity_1uazifo"])


def test_task_of_another_case_or_unknown_task_is_refused(session, deployed):
    caseworker = deployed["caseworker"]
    first = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    second = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    task = ready(session, first.id)[0]
    with pytest.raises(NotFound, match="不属于此案件"):
        tasks.complete(session, caseworker, task.id, ORDER_ANSWERS["Activity_1uazifo"], case_id=second.id)
    with pytest.raises(NotFound):
        tasks.complete(session, caseworker, "00000000-0000-0000-0000-000000000000", {})
    session.expire_all()
    assert session.get(HumanTask, task.id).status == TaskStatus.READY


def test_area_and_role_are_checked(session, deployed):
    case = cases.start_case(
        session,
        deployed["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2030-01-01T00:00:00+08:00"},
    )
    task = ready(session, case.id)[0]
    assert task.role == "caseworker" and task.task_spec == "review"
    with pytest.raises(PermissionDenied, match="其他辖区"):
        tasks.complete(session, deployed["caseworker2"], task.id, {})
    with pytest.raises(PermissionDenied, match="角色"):
        tasks.complete(session, deployed["approver"], task.id, {})
    with pytest.raises(PermissionDenied):
        cases.get_case(session, deployed["caseworker2"], case.id)


def test_claimed_task_is_only_for_the_claimer(session, deployed, users):
    case = cases.start_case(
        session,
        deployed["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2030-01-01T00:00:00+08:00"},
    )
    task = ready(session, case.id)[0]
    other = type(users["caseworker"])(
        username="cw3", display_name="另一位经办人", role=users["caseworker"].role, area_code=TOWNSHIP
    )
    session.add(other)
    session.flush()
    tasks.claim(session, other, task.id)
    with pytest.raises(PermissionDenied, match="他人认领"):
        tasks.complete(session, deployed["caseworker"], task.id, {})
    tasks.assign(session, deployed["approver"], task.id, deployed["caseworker"].id)
    tasks.complete(session, deployed["caseworker"], task.id, {})
    kinds = [e.kind for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    assert EventKind.CLAIMED in kinds and EventKind.ASSIGNED in kinds
    assert audit.verify_chain(session, case.id) == []


def test_sending_back_requires_a_comment(session, deployed):
    from workflows import versions

    bench = versions.read_bundle(
        __import__("pathlib").Path(__file__).resolve().parents[3] / "bench" / "workloads"
    )
    versions.deploy(session, deployed["process_owner"], bench, comment="测试部署")
    case = cases.start_case(
        session, deployed["caseworker"], "bench_home_care", area_code=TOWNSHIP, data={"months": 1}
    )
    tasks.complete(session, deployed["caseworker"], ready(session, case.id)[0].id, {"age": 70, "dibao": True})
    approval = ready(session, case.id)[0]
    with pytest.raises(ValidationFailed) as raised:
        tasks.complete(session, deployed["approver"], approval.id, {"decision": "send_back"})
    assert raised.value.field_errors == {"comment": "退回时必须填写意见"}


def test_tampering_with_the_trail_is_detected(session, deployed):
    case = cases.start_case(session, deployed["caseworker"], "order_product", area_code=TOWNSHIP)
    tasks.complete(
        session, deployed["caseworker"], ready(session, case.id)[0].id, ORDER_ANSWERS["Activity_1uazifo"]
    )
    assert audit.verify_chain(session, case.id) == []
    event = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
    ).all()[1]
    event.comment = "改过的意见"
    session.flush()
    assert any("被改动" in p for p in audit.verify_chain(session, case.id))


def test_a_case_keeps_its_version_when_a_new_one_is_deployed(session, deployed):
    from workflows import versions

    from .conftest import HERE

    owner = deployed["process_owner"]
    old = cases.start_case(session, owner, "runaway_loop", area_code=TOWNSHIP, data={"rounds": 1})
    bundle = versions.read_bundle(HERE / "bpmn")
    bundle["loop.bpmn"] = bundle["loop.bpmn"].decode().replace('name="完成"', 'name="办结"')
    versions.deploy(session, owner, bundle, comment="测试部署")
    new = cases.start_case(session, owner, "runaway_loop", area_code=TOWNSHIP, data={"rounds": 1})
    assert [t.name for t in ready(session, old.id)] == ["完成"]
    assert [t.name for t in ready(session, new.id)] == ["办结"]
    pinned = cases.start_case(
        session, owner, "runaway_loop", area_code=TOWNSHIP, data={"rounds": 1}, version=1
    )
    assert [t.name for t in ready(session, pinned.id)] == ["完成"]


def test_runaway_loop_fails_loudly_instead_of_stalling(session, deployed):
    # SpiffWorkflow 3.2 stops seeing tasks past depth 1,000 (~247+ loop rounds) and the case silently stops.
    owner = deployed["process_owner"]
    ok = cases.start_case(session, owner, "runaway_loop", area_code=TOWNSHIP, data={"rounds": 200})
    assert [t.task_spec for t in ready(session, ok.id)] == ["finish"]
    with pytest.raises(cases.ProcessFailure, match="循环次数过多") as raised:
        cases.start_case(session, owner, "runaway_loop", area_code=TOWNSHIP, data={"rounds": 600})
    assert raised.value.element == "more"
    assert engine.MAX_TASK_DEPTH < 1000


def test_a_failing_script_leaves_the_case_as_it_was(session, deployed):
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "failing_script", area_code=TOWNSHIP)
    task = ready(session, case.id)[0]
    lock = session.get(type(case), case.id).lock_version
    with pytest.raises(cases.ProcessFailure) as raised:
        tasks.complete(session, caseworker, task.id, {"price": 12})  # no quantity: the script fails
    assert raised.value.element == "compute_total" and "quantity" in raised.value.message
    assert "案件保持原状" in raised.value.message
    session.expire_all()
    assert session.get(HumanTask, task.id).status == TaskStatus.READY
    assert session.get(type(case), case.id).lock_version == lock


def test_restricted_runtime_stops_what_the_static_check_cannot_see(session, deployed):
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "failing_script", area_code=TOWNSHIP)
    task = ready(session, case.id)[0]
    with pytest.raises(cases.ProcessFailure) as raised:  # a size only the data decides: refused as it runs
        tasks.complete(session, caseworker, task.id, {"price": 12, "quantity": 10**9})
    assert raised.value.element == "sneak" and "上限" in raised.value.message
    session.expire_all()
    assert session.get(HumanTask, task.id).status == TaskStatus.READY
