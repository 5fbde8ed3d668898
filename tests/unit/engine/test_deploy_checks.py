"""Deploying checks everything the engine will later evaluate, and names everything it would not honour:
every problem of every file in one report, in Chinese, with file, element, name and line."""

from __future__ import annotations

import pytest

from workflows import registry
from workflows.engine import DeployError

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)


def diagram(body: str, *, process_id: str = "trial", executable: str = "true") -> str:
    return (
        HEADER
        + f'<bpmn:process id="{process_id}" name="试验流程" isExecutable="{executable}">\n'
        + '<bpmn:startEvent id="start" name="开始"><bpmn:outgoing>to_first</bpmn:outgoing></bpmn:startEvent>\n'
        + body
        + "\n</bpmn:process>\n</bpmn:definitions>\n"
    )


def one_step(task: str, *, task_id: str = "step", name: str = "步骤") -> str:
    """A start, one element `task` (its open tag's extra content given), and an end."""
    return diagram(
        f'<bpmn:{task} id="{task_id}" name="{name}"><bpmn:incoming>to_first</bpmn:incoming>'
        f"<bpmn:outgoing>to_end</bpmn:outgoing></bpmn:{task.split()[0]}>\n"
        '<bpmn:endEvent id="end" name="结束"><bpmn:incoming>to_end</bpmn:incoming></bpmn:endEvent>\n'
        f'<bpmn:sequenceFlow id="to_first" sourceRef="start" targetRef="{task_id}" />\n'
        f'<bpmn:sequenceFlow id="to_end" sourceRef="{task_id}" targetRef="end" />'
    )


def script_step(script: str) -> str:
    return diagram(
        f'<bpmn:scriptTask id="compute" name="计算"><bpmn:incoming>to_first</bpmn:incoming>'
        f"<bpmn:outgoing>to_end</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>\n"
        '<bpmn:endEvent id="end" name="结束"><bpmn:incoming>to_end</bpmn:incoming></bpmn:endEvent>\n'
        '<bpmn:sequenceFlow id="to_first" sourceRef="start" targetRef="compute" />\n'
        '<bpmn:sequenceFlow id="to_end" sourceRef="compute" targetRef="end" />'
    )


def timer_step(expression: str) -> str:
    return diagram(
        '<bpmn:intermediateCatchEvent id="wait" name="等待"><bpmn:incoming>to_first</bpmn:incoming>'
        "<bpmn:outgoing>to_end</bpmn:outgoing>"
        f'<bpmn:timerEventDefinition id="wait_timer"><bpmn:timeCycle>{expression}</bpmn:timeCycle>'
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>\n"
        '<bpmn:endEvent id="end" name="结束"><bpmn:incoming>to_end</bpmn:incoming></bpmn:endEvent>\n'
        '<bpmn:sequenceFlow id="to_first" sourceRef="start" targetRef="wait" />\n'
        '<bpmn:sequenceFlow id="to_end" sourceRef="wait" targetRef="end" />'
    )


def refused(files: dict, *, warnings: bool = False) -> list:
    """The errors deploying `files` raises (and its warnings too, when asked)."""
    with pytest.raises(DeployError) as raised:
        registry.engine().parse_bundle(files)
    return [p for p in raised.value.problems if warnings or p.severity == "error"]


def messages(problems, severity="error") -> list[str]:
    return [p.message for p in problems if p.severity == severity]


def test_an_unquoted_timer_is_refused_with_the_fix():
    [problem] = refused({"t.bpmn": timer_step("R6/P1D")})
    assert (problem.file, problem.element, problem.name) == ("t.bpmn", "wait", "等待")
    assert '须写成带引号的字符串（"R6/P1D"）' in problem.message and problem.line == 5
    assert registry.engine().parse_bundle({"t.bpmn": timer_step('"R6/P1D"')})


def test_a_service_task_is_refused_unless_it_calls_one_of_our_operations():
    [problem] = refused({"s.bpmn": one_step("serviceTask")})
    assert problem.element == "step" and "服务任务没有指定要调用的操作" in problem.message
    assert "send_sms" in problem.message


def test_a_bundle_of_non_executable_processes_is_refused_naming_them():
    problems = refused(
        {"n.bpmn": one_step("userTask").replace('isExecutable="true"', 'isExecutable="false"')}
    )
    assert messages(problems) == [
        '没有可执行的流程（trial 均标记为 isExecutable="false"）：请在建模工具中将要运行的流程设为可执行'
    ]


def test_other_tools_extensions_are_named_never_silently_ignored():
    camunda = diagram(
        '<bpmn:userTask id="approve" name="审批" camunda:assignee="${initiator}" camunda:dueDate="${due}" '
        'camunda:asyncBefore="true"><bpmn:extensionElements>'
        '<camunda:executionListener class="com.example.Audit" event="start" /></bpmn:extensionElements>'
        "<bpmn:incoming>to_first</bpmn:incoming><bpmn:outgoing>to_gate</bpmn:outgoing></bpmn:userTask>\n"
        '<bpmn:exclusiveGateway id="gate" name="是否批准" default="to_no"><bpmn:incoming>to_gate</bpmn:incoming>'
        "<bpmn:outgoing>to_yes</bpmn:outgoing><bpmn:outgoing>to_no</bpmn:outgoing></bpmn:exclusiveGateway>\n"
        '<bpmn:endEvent id="yes" name="批准"><bpmn:incoming>to_yes</bpmn:incoming></bpmn:endEvent>\n'
        '<bpmn:endEvent id="no" name="不批准"><bpmn:incoming>to_no</bpmn:incoming></bpmn:endEvent>\n'
        '<bpmn:sequenceFlow id="to_first" sourceRef="start" targetRef="approve" />\n'
        '<bpmn:sequenceFlow id="to_gate" sourceRef="approve" targetRef="gate" />\n'
        '<bpmn:sequenceFlow id="to_yes" sourceRef="gate" targetRef="yes">'
        "<bpmn:conditionExpression>${approved}</bpmn:conditionExpression></bpmn:sequenceFlow>\n"
        '<bpmn:sequenceFlow id="to_no" sourceRef="gate" targetRef="no" />'
    )
    problems = refused({"camunda.bpmn": camunda}, warnings=True)
    errors = messages(problems)
    assert any("Camunda 的属性 assignee=“${initiator}”本系统不会执行" in m for m in errors)
    assert any("Camunda 的属性 dueDate" in m for m in errors)
    assert any("Camunda 的扩展元素 executionListener 本系统不会执行" in m for m in errors)
    assert any("条件“${approved}”是 JUEL 表达式" in m for m in errors)
    assert messages(problems, "warning") == [
        "Camunda 的属性 asyncBefore 对本系统无作用，将被忽略",
        "用户任务没有表单（formJsonSchemaFilename）：办理人只能提交空表单",
    ]
    assert {p.element for p in problems} == {"approve", "to_yes"}


def test_every_problem_of_every_file_is_in_one_report():
    problems = refused(
        {
            "a.bpmn": script_step("total = price * 2 +"),
            "b.bpmn": timer_step("P7D").replace('id="trial"', 'id="other"'),
            "c.dmn": "<dmn>not closed",
            "forms/x.json": "{oops",
        }
    )
    assert {p.file for p in problems} == {"a.bpmn", "b.bpmn", "c.dmn", "forms/x.json"}
    assert all(p.severity == "error" and p.message for p in problems)


def test_scripts_may_only_call_the_helpers_the_processes_offer():
    [problem] = refused({"f.bpmn": script_step("total = open_the_vault(1)")})
    assert "调用了 open_the_vault()，它不是本系统提供给流程的函数" in problem.message
    assert "assessment_total" in problem.message  # the helpers that are offered are listed
    [problem] = refused({"f.bpmn": script_step("import os")})
    assert (problem.element, problem.name) == ("compute", "计算") and "不允许导入模块" in problem.message


def test_names_nothing_assigns_are_a_warning_not_a_refusal():
    [parsed] = registry.engine().parse_bundle({"w.bpmn": script_step("total = price * 2")})
    [warning] = parsed.warnings
    assert warning.severity == "warning" and "price" in warning.message and warning.element == "compute"


def test_dmn_expressions_are_checked_at_deploy():
    table = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">
  <decision id="price_of" name="定价">
    <decisionTable id="price_table">
      <input id="i1" label="类别"><inputExpression id="ie1" typeRef="string"><text>category</text></inputExpression></input>
      <output id="o1" label="金额" name="amount" typeRef="number" />
      <rule id="r1"><inputEntry id="e1"><text>__import__('os')</text></inputEntry><outputEntry id="x1"><text>10</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="e2"><text>"a"</text></inputEntry><outputEntry id="x2"><text>().__class__</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""
    problems = refused({"p.dmn": table, "a.bpmn": script_step("total = 1")})
    found = [p for p in problems if p.file == "p.dmn" and p.severity == "error"]
    assert len(found) == 2 and {p.element for p in found} == {"price_of"}
    assert any("决策表第1行“类别”的条件" in p.message for p in found)
    assert any("决策表第2行的输出" in p.message and "下划线" in p.message for p in found)


def test_instructions_that_are_not_a_valid_template_are_refused():
    body = one_step("userTask").replace(
        '<bpmn:userTask id="step" name="步骤">',
        '<bpmn:userTask id="step" name="步骤"><bpmn:extensionElements><spiffworkflow:instructionsForEndUser>'
        "{% for x in items %}没有结束</spiffworkflow:instructionsForEndUser></bpmn:extensionElements>",
    )
    [problem] = refused({"i.bpmn": body})
    assert problem.element == "step" and "办理说明的模板有语法错误" in problem.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('<?xml version="1.0" encoding="UTF-16"?><x/>'.encode("utf-16"), "像是 UTF-16"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "不是 UTF-8 编码"),
    ],
)
def test_a_file_that_is_not_utf8_xml_is_refused_clearly(content, expected):
    [problem] = refused({"bad.bpmn": content})
    assert problem.file == "bad.bpmn" and expected in problem.message


def test_the_parser_s_own_refusals_are_said_in_chinese_without_object_reprs():
    body = one_step("businessRuleTask").replace(
        '<bpmn:businessRuleTask id="step" name="步骤">',
        '<bpmn:businessRuleTask id="step" name="步骤"><bpmn:extensionElements>'
        "<spiffworkflow:calledDecisionId>no_such_table</spiffworkflow:calledDecisionId></bpmn:extensionElements>",
    )
    problems = refused({"r.bpmn": body})
    assert [p.message for p in problems] == ["业务规则任务引用的决策表“no_such_table”不在部署包中"]
    assert "0x" not in str(problems)


def test_a_file_out_of_the_bpmn_schema_is_explained_without_namespaces():
    misplaced = diagram(
        '<bpmn:userTask id="approve" name="审批"><bpmn:incoming>to_first</bpmn:incoming>'
        "<bpmn:extensionElements /></bpmn:userTask>"
    )
    [problem] = refused({"x.bpmn": misplaced})
    assert "元素 extensionElements 的位置或写法不符合 BPMN 2.0 规范" in problem.message
    assert "{http" not in problem.message
