"""Deploying bundles: versions, content hashes, and clear errors that leave nothing half-deployed."""

import json

import pytest
from sqlalchemy import func, select

from workflows import engine, versions
from workflows.errors import PermissionDenied
from workflows.models import ProcessVersion

from .conftest import HERE, interop_bundle, texts


def _versions(session) -> int:
    return session.scalar(select(func.count()).select_from(ProcessVersion))


def test_interop_bundle_deploys_unchanged(session, users):
    deployed = versions.deploy(session, users["process_owner"], interop_bundle(), comment="测试部署")
    assert {(d.key, d.version, d.created) for d in deployed} == {
        ("order_product", 1, True),
        ("customize_product", 1, True),
    }
    version = versions.latest(session, "order_product")
    sources = json.loads(version.sources)
    # The version keeps exactly the files the process depends on (the call activity, both tables, its forms).
    assert {"top_level.bpmn", "call_activity.bpmn", "product_prices.dmn", "shipping_costs.dmn"} <= set(
        sources
    )
    assert "forms/select_product_and_quantity.json" in sources
    assert "forms/ask_for_feedback.json" not in sources  # no task of this process uses it


def test_identical_content_is_a_no_op_and_a_change_makes_a_new_version(session, users):
    owner = users["process_owner"]
    bundle = texts(HERE / "bpmn")
    first = {d.key: d for d in versions.deploy(session, owner, bundle, comment="测试部署")}
    again = {d.key: d for d in versions.deploy(session, owner, bundle, comment="测试部署")}
    assert all(not d.created and d.version == 1 for d in again.values())
    assert _versions(session) == len(first)

    bundle["loop.bpmn"] = bundle["loop.bpmn"].replace('name="完成"', 'name="办结"')
    changed = {d.key: d for d in versions.deploy(session, owner, bundle, comment="测试部署")}
    assert changed["runaway_loop"].created and changed["runaway_loop"].version == 2
    # Processes in other files did not change, so they keep their version.
    assert not changed["timer_paths"].created and changed["timer_paths"].version == 1


def test_only_process_owners_deploy(session, users):
    with pytest.raises(PermissionDenied):
        versions.deploy(session, users["caseworker"], versions.read_bundle(HERE / "bpmn"), comment="测试部署")


def _broken(bundle: dict[str, str], name: str, old: str, new: str) -> dict[str, str]:
    assert old in bundle[name], old
    return {**bundle, name: bundle[name].replace(old, new)}


BAD_BUNDLES = [
    pytest.param(
        ("top_level.bpmn", "</bpmn:definitions>", ""),
        ("top_level.bpmn", None, "不是有效的 XML"),
        id="malformed-xml",
    ),
    pytest.param(
        ("top_level.bpmn", 'value="select_shipping_method.json"', 'value="no_such_form.json"'),
        ("top_level.bpmn", "Activity_0gg5h3v", "找不到表单文件 no_such_form.json"),
        id="missing-form-file",
    ),
    pytest.param(
        (
            "top_level.bpmn",
            "<spiffworkflow:calledDecisionId>shipping_costs<",
            "<spiffworkflow:calledDecisionId>no_such_decision<",
        ),
        ("top_level.bpmn", "Activity_0jnqqws", "no_such_decision"),
        id="unknown-decision",
    ),
    pytest.param(
        ("top_level.bpmn", 'calledElement="customize_product"', 'calledElement="no_such_process"'),
        ("top_level.bpmn", None, "no_such_process"),
        id="unknown-called-process",
    ),
]


@pytest.mark.parametrize("change,expected", BAD_BUNDLES)
def test_bad_bundles_name_file_element_and_problem(session, users, change, expected):
    bundle = _broken(interop_bundle(), *change)
    before = _versions(session)
    with pytest.raises(engine.DeployError) as raised:
        versions.deploy(session, users["process_owner"], bundle, comment="测试部署")
    file, element, words = expected
    problems = raised.value.problems
    assert any(
        p.file == file and (element is None or p.element == element) and words in p.message for p in problems
    ), problems
    assert _versions(session) == before  # nothing deployed, not even the processes that were fine


def test_unsupported_element_is_refused(session, users):
    bundle = _broken(
        interop_bundle(), "call_activity.bpmn", "<bpmn:exclusiveGateway id=", "<bpmn:complexGateway id="
    )
    bundle = {
        **bundle,
        "call_activity.bpmn": bundle["call_activity.bpmn"].replace(
            "</bpmn:exclusiveGateway>", "</bpmn:complexGateway>", 1
        ),
    }
    with pytest.raises(engine.DeployError) as raised:
        versions.deploy(session, users["process_owner"], bundle, comment="测试部署")
    assert any(
        "complexGateway" in p.message and p.file == "call_activity.bpmn" for p in raised.value.problems
    )


def test_form_that_is_not_json_schema_is_refused(session, users):
    bundle = {**interop_bundle(), "forms/select_shipping_method.json": '{"type": "objekt"}'}
    with pytest.raises(engine.DeployError) as raised:
        versions.deploy(session, users["process_owner"], bundle, comment="测试部署")
    assert any(
        p.file == "forms/select_shipping_method.json" and "JSON Schema" in p.message
        for p in raised.value.problems
    )


SCRIPT_ATTACKS = [
    ("import os", "不允许导入模块"),
    ("from subprocess import run", "不允许导入模块"),
    ("x = ().__class__.__bases__", "下划线"),
    ("f = open('/etc/passwd')", "open"),
    ("__import__('os').system('true')", "__import__"),
    ("x = eval('1')", "eval"),
]


@pytest.mark.parametrize("script,words", SCRIPT_ATTACKS)
def test_scripts_that_reach_outside_are_refused_at_deploy(session, users, script, words):
    bundle = _broken(interop_bundle(), "top_level.bpmn", "order_total = ", f"{script}\norder_total = ")
    with pytest.raises(engine.DeployError) as raised:
        versions.deploy(session, users["process_owner"], bundle, comment="测试部署")
    assert any(p.element == "Activity_1ulwq7u" and words in p.message for p in raised.value.problems), (
        raised.value.problems
    )


def test_condition_that_imports_is_refused(session, users):
    bundle = _broken(
        interop_bundle(),
        "call_activity.bpmn",
        "product_name in [ 'product_c'",
        "__import__('os') or product_name in [ 'product_c'",
    )
    with pytest.raises(engine.DeployError) as raised:
        versions.deploy(session, users["process_owner"], bundle, comment="测试部署")
    assert any("条件表达式" in p.message for p in raised.value.problems)
