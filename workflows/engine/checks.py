"""What a bundle is checked for before it is stored: everything the engine will later evaluate, and
everything in a file the engine would not honour.

SpiffWorkflow's parser stops at the first problem of a file and speaks English with object reprs. These
checks read the XML themselves, so that one report lists every problem of every file, in Chinese, each
with its file, element id, element name and line:

- files that are not UTF-8 XML; bundles whose processes are all non-executable;
- scripts, pre/post scripts, gateway conditions, DMN input expressions, input entries and output entries,
  timer expressions, multi-instance cardinality/collection/completion, message payloads: each must compile
  under the restricted runtime; a function called that is no helper of the engine is an error, a name that
  nothing in the bundle assigns is a warning (the data a case starts with may supply it);
- instructions (Jinja templates) must parse;
- elements and extensions the engine will not run or honour: complex gateways, transactions, service tasks
  whose operation is not one of ours, business rule tasks without a table, other tools' vendor attributes
  and extension elements (Camunda, Zeebe, Activiti, Flowable), JUEL expressions.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree

from .errors import Problem
from .scripting import CONNECTORS, check_script

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
DI_NAMESPACES = {
    "http://www.omg.org/spec/BPMN/20100524/DI",
    "http://www.omg.org/spec/DD/20100524/DC",
    "http://www.omg.org/spec/DD/20100524/DI",
}
OUR_NAMESPACES = {BPMN, SPIFF, "http://www.w3.org/2001/XMLSchema-instance", *DI_NAMESPACES}
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)
VENDORS = {
    "camunda.org": "Camunda",
    "zeebe": "Zeebe",
    "activiti": "Activiti",
    "flowable": "Flowable",
    "signavio": "Signavio",
}
# Vendor attributes that only steer the other tool's job executor or modeler: ignored, said as a warning.
HARMLESS_VENDOR_ATTRIBUTES = {
    "asyncBefore",
    "asyncAfter",
    "exclusive",
    "jobPriority",
    "versionTag",
    "historyTimeToLive",
    "isStartableInTasklist",
    "modelerTemplate",
    "modelerTemplateVersion",
    "executionPlatform",
    "executionPlatformVersion",
}
UNSUPPORTED_ELEMENTS = {
    "complexGateway": "复杂网关（complexGateway）",
    "transaction": "事务子流程（transaction）",
}
# Data every case starts with (`cases.start_case` seeds it).
SEEDED_NAMES = {"case_area_code", "elder_id"}
_ISO_8601 = re.compile(
    r"^(R\d*/)?(P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?|\d{4}-\d\d-\d\d\S*)(/\S+)?$"
)
_JUEL = re.compile(r"[$#]\{")
_jinja = SandboxedEnvironment()


@dataclass
class Expression:
    """One piece of code in a file, with where it stands."""

    file: str
    element: str | None
    source: str
    mode: str  # "exec" (scripts) or "eval" (conditions, expressions)
    line: int | None
    what: str  # what it is, in Chinese: "脚本", "条件表达式", ...
    label: str | None = None  # the element's name
    quote: bool = True  # whether messages quote the source (not when `what` already shows it)


@dataclass
class ProcessFacts:
    """What a process's diagram holds, for checking it against what the process's code expects and for
    telling versions apart: its elements, the messages it throws and waits for, its lanes."""

    elements: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (kind, name)
    throws: set[str] = field(default_factory=set)
    catches: set[str] = field(default_factory=set)
    lanes: list[str] = field(default_factory=list)

    def merge(self, other: ProcessFacts) -> None:
        self.elements.update(other.elements)
        self.throws |= other.throws
        self.catches |= other.catches
        self.lanes += [lane for lane in other.lanes if lane not in self.lanes]


_THROWING = {"intermediateThrowEvent", "endEvent", "sendTask"}
_CATCHING = {"intermediateCatchEvent", "boundaryEvent", "startEvent", "receiveTask"}


def describe(root) -> dict[str, ProcessFacts]:
    """The facts of every process of a BPMN file, by process id."""
    messages = {m.get("id"): m.get("name") or m.get("id") for m in root.iter(f"{{{BPMN}}}message")}
    found: dict[str, ProcessFacts] = {}
    for process in root.iter(f"{{{BPMN}}}process"):
        facts = found.setdefault(process.get("id"), ProcessFacts())
        for node in process.iter():
            if not isinstance(node.tag, str) or etree.QName(node).namespace != BPMN:
                continue
            local = etree.QName(node).localname
            if node.get("id") and local not in ("laneSet", "extensionElements"):
                facts.elements[node.get("id")] = (local, node.get("name"))
            if local == "lane":
                facts.lanes.append(node.get("name") or "")
            ref = node.get("messageRef")
            if ref and local in ("messageEventDefinition", "sendTask", "receiveTask"):
                owner = node if local != "messageEventDefinition" else node.getparent()
                kind = _local(owner.tag)
                (facts.throws if kind in _THROWING else facts.catches if kind in _CATCHING else set()).add(
                    messages.get(ref, ref)
                )
    return found


@dataclass
class Report:
    """Every problem found in a bundle (errors block deploying; warnings are shown)."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, file, element, message, line=None, name=None) -> None:
        self.problems.append(Problem(file, element, message, line, name=name))

    def warn(self, file, element, message, line=None, name=None) -> None:
        self.problems.append(Problem(file, element, message, line, name=name, severity="warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def read_xml(name: str, content: str | bytes, report: Report):
    """Parse one file as UTF-8 XML, or say in the report why it is not."""
    if isinstance(content, bytes):
        if content.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in content[:200]:
            report.error(
                name, None, "文件不是 UTF-8 编码（像是 UTF-16）：请在建模工具中另存为 UTF-8 编码的 XML"
            )
            return None
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            report.error(
                name, None, f"文件不是 UTF-8 编码的文本（第 {exc.start} 字节处无法解码），或不是 XML 文件"
            )
            return None
    try:
        return etree.fromstring(content.lstrip("\ufeff").encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        report.error(name, None, f"不是有效的 XML：{exc.msg}", exc.lineno)
        return None


def _name_of(node) -> str | None:
    return node.get("name") or None


_CONTAINERS = {
    "definitions",
    "process",
    "subProcess",
    "adHocSubProcess",
    "transaction",
    "collaboration",
    "laneSet",
}


def _owner(node):
    """The element a problem is about: the flow element (task, event, gateway, flow, lane) holding `node`."""
    while node is not None:
        parent = node.getparent()
        if parent is None or _local(parent.tag) in _CONTAINERS:
            return node if node.get("id") is not None else None
        node = parent
    return None


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _vendor(namespace: str | None) -> str | None:
    if not namespace or namespace in OUR_NAMESPACES:
        return None
    for marker, vendor in VENDORS.items():
        if marker in namespace:
            return vendor
    return "其他建模工具"


# --------------------------------------------------------------------------------------------------
# BPMN files


def check_bpmn(name: str, root, report: Report, expressions: list[Expression], assigned: set[str]) -> None:
    """Check one BPMN file's elements and collect its code (checked with the whole bundle's names later)."""
    processes = list(root.iter(f"{{{BPMN}}}process"))
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        namespace = etree.QName(node).namespace
        local = etree.QName(node).localname
        if namespace in DI_NAMESPACES:
            continue
        owner = _owner(node)
        element, label = (owner.get("id"), _name_of(owner)) if owner is not None else (None, None)
        vendor = _vendor(namespace)
        if vendor:
            report.error(
                name,
                element,
                f"{vendor} 的扩展元素 {local} 本系统不会执行（如监听器、输入输出映射）：请删除，或改用本系统支持的写法",
                node.sourceline,
                label,
            )
            continue
        for attribute in node.attrib:
            qname = etree.QName(attribute)
            attr_vendor = _vendor(qname.namespace)
            if not attr_vendor or node is root:
                continue
            if qname.localname in HARMLESS_VENDOR_ATTRIBUTES:
                report.warn(
                    name,
                    element,
                    f"{attr_vendor} 的属性 {qname.localname} 对本系统无作用，将被忽略",
                    node.sourceline,
                    label,
                )
            else:
                value = node.get(attribute)
                report.error(
                    name,
                    element,
                    f"{attr_vendor} 的属性 {qname.localname}=“{value}”本系统不会执行（办理人由泳道角色和案件辖区决定，"
                    "期限用 dueWorkdays/dueDays 属性）：请删除或改写",
                    node.sourceline,
                    label,
                )
        _collect_assignments(node, local, namespace, assigned)
        if namespace != BPMN:
            continue
        if local in UNSUPPORTED_ELEMENTS:
            report.error(
                name, element, f"不支持的元素：{UNSUPPORTED_ELEMENTS[local]}", node.sourceline, label
            )
        elif local == "serviceTask":
            _check_service_task(name, node, report, expressions)
        elif local in ("exclusiveGateway", "inclusiveGateway"):
            _check_gateway(name, node, root, report)
        elif local == "userTask" and not _has_form(node):
            report.warn(
                name,
                element,
                "用户任务没有表单（formJsonSchemaFilename）：办理人只能提交空表单",
                node.sourceline,
                label,
            )
        elif local == "businessRuleTask":
            if not _spiff_text(node, "calledDecisionId"):
                report.error(
                    name, element, "业务规则任务未指定决策表（calledDecisionId）", node.sourceline, label
                )
        elif local == "scriptTask":
            script = node.find(f"{{{BPMN}}}script")
            if script is None or not (script.text or "").strip():
                report.error(name, element, "脚本任务没有脚本", node.sourceline, label)
            else:
                expressions.append(Expression(name, element, script.text, "exec", script.sourceline, "脚本"))
        elif local == "conditionExpression":
            text = (node.text or "").strip()
            if _JUEL.search(text):
                report.error(
                    name,
                    element,
                    f"条件“{text}”是 JUEL 表达式，本系统不支持：请改用 Python 表达式（如 approved == True）",
                    node.sourceline,
                    label,
                )
            elif text:
                expressions.append(Expression(name, element, text, "eval", node.sourceline, "条件表达式"))
        elif local in ("timeDate", "timeDuration", "timeCycle"):
            _check_timer(name, node, element, label, report, expressions)
        elif local in ("loopCardinality", "completionCondition"):
            text = (node.text or "").strip()
            if text:
                what = "多实例次数" if local == "loopCardinality" else "多实例完成条件"
                expressions.append(Expression(name, element, text, "eval", node.sourceline, what))
    for node in root.iter(f"{{{SPIFF}}}preScript", f"{{{SPIFF}}}postScript", f"{{{SPIFF}}}messagePayload"):
        owner = _owner(node)
        text = (node.text or "").strip()
        if not text:
            continue
        local = etree.QName(node).localname
        mode, what = ("eval", "消息内容") if local == "messagePayload" else ("exec", "前置/后置脚本")
        expressions.append(
            Expression(
                name, owner.get("id") if owner is not None else None, text, mode, node.sourceline, what
            )
        )
    for node in root.iter(f"{{{SPIFF}}}instructionsForEndUser"):
        owner = _owner(node)
        try:
            _jinja.parse(node.text or "")
        except TemplateSyntaxError as exc:
            report.error(
                name,
                owner.get("id") if owner is not None else None,
                f"办理说明的模板有语法错误：{exc.message}",
                (node.sourceline or 0) + (exc.lineno or 1) - 1,
                _name_of(owner) if owner is not None else None,
            )
    for node in root.iter(f"{{{BPMN}}}multiInstanceLoopCharacteristics"):
        collection = node.get("collection") or _text_of(node, "loopDataInputRef")
        if collection and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", collection.strip()):
            owner = _owner(node)
            expressions.append(
                Expression(name, owner.get("id"), collection.strip(), "eval", node.sourceline, "多实例集合")
            )
    _name_expressions(name, root, expressions)
    if processes and not any(p.get("isExecutable", "true").lower() == "true" for p in processes):
        ids = "、".join(p.get("id") or "?" for p in processes)
        report.error(
            name,
            None,
            f'没有可执行的流程（{ids} 均标记为 isExecutable="false"）：请在建模工具中将要运行的流程设为可执行',
        )
    else:
        for process in processes:
            if process.get("isExecutable", "true").lower() != "true":
                report.warn(
                    name,
                    process.get("id"),
                    '该流程标记为不可执行（isExecutable="false"），不会部署',
                    process.sourceline,
                    _name_of(process),
                )


def _has_form(node) -> bool:
    return any(
        p.get("name") == "formJsonSchemaFilename" and (p.get("value") or "").strip()
        for p in node.iter(f"{{{SPIFF}}}property")
    )


def _check_gateway(name: str, gateway, root, report: Report) -> None:
    """A diverging gateway's flows each need a condition, except its one default flow."""
    gid = gateway.get("id")
    outgoing = [f for f in root.iter(f"{{{BPMN}}}sequenceFlow") if f.get("sourceRef") == gid]
    if len(outgoing) < 2:
        return
    default = gateway.get("default")
    bare = [
        f.get("id")
        for f in outgoing
        if f.get("id") != default and not (f.findtext(f"{{{BPMN}}}conditionExpression") or "").strip()
    ]
    for flow_id in bare:
        flow = next(f for f in outgoing if f.get("id") == flow_id)
        report.error(
            name,
            flow_id,
            f"网关“{gateway.get('name') or gid}”的出口没有条件：请写条件，或把它设为网关的默认路径",
            flow.sourceline,
            flow.get("name"),
        )


def _spiff_text(node, tag: str) -> str:
    found = node.find(f".//{{{SPIFF}}}{tag}")
    return (found.text or "").strip() if found is not None else ""


def _text_of(node, tag: str) -> str:
    found = node.find(f"{{{BPMN}}}{tag}")
    return (found.text or "").strip() if found is not None else ""


def _check_service_task(name: str, node, report: Report, expressions: list[Expression]) -> None:
    operator = node.find(f".//{{{SPIFF}}}serviceTaskOperator")
    operation = operator.get("id") if operator is not None else None
    if operation not in CONNECTORS:
        offered = "、".join(f"{k}（{v}）" for k, v in CONNECTORS.items())
        what = f"调用的操作“{operation}”" if operation else "没有指定要调用的操作（serviceTaskOperator）"
        report.error(
            name,
            node.get("id"),
            f"服务任务{what}不受支持；可用的操作：{offered}",
            node.sourceline,
            _name_of(node),
        )
        return
    for parameter in operator.iter(f"{{{SPIFF}}}parameter"):
        value = (parameter.get("value") or "").strip()
        what = f"服务任务参数 {parameter.get('id')}"
        if not value:
            report.error(name, node.get("id"), f"{what}没有取值", parameter.sourceline, _name_of(node))
        else:
            expressions.append(Expression(name, node.get("id"), value, "eval", parameter.sourceline, what))
    if operation == "send_sms":
        given = {p.get("id") for p in operator.iter(f"{{{SPIFF}}}parameter")}
        for needed in sorted({"to", "body"} - given):
            report.error(
                name,
                node.get("id"),
                f"发送短信须有参数 {needed}（to: 手机号码，body: 短信内容）",
                node.sourceline,
                _name_of(node),
            )


def _check_timer(name, node, element, label, report: Report, expressions: list[Expression]) -> None:
    text = (node.text or "").strip()
    kind = {"timeDate": "定时日期", "timeDuration": "定时时长", "timeCycle": "定时周期"}[
        etree.QName(node).localname
    ]
    if not text:
        report.error(name, element, f"{kind}为空", node.sourceline, label)
    elif _ISO_8601.match(text):
        report.error(
            name,
            element,
            f'{kind}“{text}”须写成带引号的字符串（"{text}"）或计算它的表达式：不加引号会被当作变量名',
            node.sourceline,
            label,
        )
    else:
        expressions.append(Expression(name, element, text, "eval", node.sourceline, kind))


def _collect_assignments(node, local: str, namespace: str | None, assigned: set[str]) -> None:
    """Names a diagram gives values to (so code that reads them later is not suspected)."""
    if namespace == SPIFF and local == "messageVariable" and node.text:
        assigned.add(node.text.strip())
    elif namespace == SPIFF and local == "property" and node.get("name") == "resultVariable":
        assigned.add(node.get("value") or "")
    elif namespace == BPMN and local in ("dataObject", "dataObjectReference"):
        assigned.update(v for v in (node.get("name"), node.get("id")) if v)
    elif namespace == BPMN and local == "multiInstanceLoopCharacteristics":
        for tag in ("inputDataItem", "outputDataItem", "loopDataOutputRef"):
            found = node.find(f"{{{BPMN}}}{tag}")
            if found is not None:
                assigned.update(v for v in (found.get("name"), found.get("id"), found.text) if v)


# --------------------------------------------------------------------------------------------------
# DMN files


def check_dmn(name: str, root, report: Report, expressions: list[Expression], assigned: set[str]) -> None:
    """Collect a decision table's code the way SpiffWorkflow's DMN engine will evaluate it."""
    for ns in DMN_NAMESPACES:
        for table in root.iter(f"{{{ns}}}decisionTable"):
            decision = table.getparent()
            element = decision.get("id") if decision is not None else table.get("id")
            inputs = []
            for item in table.findall(f"{{{ns}}}input"):
                text_node = item.find(f"{{{ns}}}inputExpression/{{{ns}}}text")
                source = (text_node.text or "").strip() if text_node is not None else ""
                label = item.get("label") or source
                if not source:
                    report.error(name, element, f"决策表的输入“{label}”没有表达式", item.sourceline)
                else:
                    expressions.append(
                        Expression(
                            name, element, source, "eval", text_node.sourceline, f"决策表输入“{label}”"
                        )
                    )
                inputs.append((source, label))
            for output in table.findall(f"{{{ns}}}output"):
                # SpiffWorkflow names the result by the output's name, else its label (`a.b` nests).
                key = output.get("name") or output.get("label")
                if key:
                    assigned.add(key.split(".")[0])
            for row, rule in enumerate(table.findall(f"{{{ns}}}rule"), start=1):
                for (source, label), entry in zip(inputs, rule.findall(f"{{{ns}}}inputEntry"), strict=False):
                    text = _entry_text(entry, ns)
                    if text and text != "-":
                        expressions.append(
                            Expression(
                                name,
                                element,
                                _as_test(source, text),
                                "eval",
                                entry.sourceline,
                                f"决策表第{row}行“{label}”的条件“{text}”",
                            )
                        )
                for entry in rule.findall(f"{{{ns}}}outputEntry"):
                    text = _entry_text(entry, ns)
                    if text:
                        expressions.append(
                            Expression(
                                name, element, text, "eval", entry.sourceline, f"决策表第{row}行的输出"
                            )
                        )
    _name_expressions(name, root, expressions)


def _name_expressions(file: str, root, expressions: list[Expression]) -> None:
    """Give the expressions of a file the names of their elements (the report shows both)."""
    names = {
        node.get("id"): node.get("name")
        for node in root.iter()
        if isinstance(node.tag, str) and node.get("id")
    }
    for expression in expressions:
        if expression.file == file and expression.label is None:
            expression.label = names.get(expression.element)


def _entry_text(entry, ns: str) -> str:
    node = entry.find(f"{{{ns}}}text")
    return (node.text or "").strip() if node is not None else ""


def _as_test(input_source: str, entry: str) -> str:
    """The expression SpiffWorkflow's DMN engine evaluates for an input entry (see DMNEngine.evaluate)."""
    if re.search(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", entry):
        return re.sub(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", "dmninputexpr", entry)
    try:
        ast.parse(entry, mode="eval")
    except SyntaxError:
        return f"{input_source or 'dmninputexpr'} {entry}"
    return f"({input_source or 'dmninputexpr'}) == ({entry})"


# --------------------------------------------------------------------------------------------------
# The code, checked against the names the bundle and the engine provide

_BUILTINS = set(dir(builtins))


def check_expressions(
    expressions: Iterable[Expression], helpers: Iterable[str], assigned: set[str], report: Report
) -> None:
    known_functions = set(helpers) | _BUILTINS
    for expression in expressions:
        problem = check_script(expression.source, expression.mode)
        if problem:
            report.error(
                expression.file,
                expression.element,
                f"{expression.what}{('“' + _short(expression.source) + '”') if expression.quote else ''}：{problem}",
                expression.line,
                expression.label,
            )
            continue
        called, read, written = _names(expression.source, expression.mode)
        assigned |= written
        for function in sorted(called - known_functions - written):
            report.error(
                expression.file,
                expression.element,
                f"{expression.what}调用了 {function}()，它不是本系统提供给流程的函数"
                f"（可用：{'、'.join(sorted(helpers)) or '无'}）",
                expression.line,
                expression.label,
            )
    # Names read that nothing assigns: known only once every expression's assignments are in.
    for expression in expressions:
        if check_script(expression.source, expression.mode):
            continue
        called, read, _written = _names(expression.source, expression.mode)
        unknown = sorted(
            read - called - assigned - set(helpers) - _BUILTINS - SEEDED_NAMES - {"dmninputexpr"}
        )
        if unknown:
            report.warn(
                expression.file,
                expression.element,
                f"{expression.what}用到的 {'、'.join(unknown)} 在流程中没有赋值（若由发起案件时的数据提供，可忽略）",
                expression.line,
                expression.label,
            )


def _names(source: str, mode: str) -> tuple[set[str], set[str], set[str]]:
    """(functions called by name, names read, names assigned) of a piece of code."""
    tree = ast.parse(source, mode="eval" if mode == "eval" else "exec")
    called, read, written = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
        elif isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else written).add(node.id)
        elif isinstance(node, ast.arg):
            written.add(node.arg)
        elif isinstance(node, ast.comprehension):
            for target in ast.walk(node.target):
                if isinstance(target, ast.Name):
                    written.add(target.id)
    return called, read, written


def _short(source: str) -> str:
    text = " ".join(source.split())
    return text if len(text) <= 60 else text[:57] + "…"


def names_of_forms(forms: Mapping[str, dict]) -> set[str]:
    """The field names the forms of a bundle fill in (data a step's code may read)."""
    names: set[str] = set()

    def walk(schema):
        if not isinstance(schema, dict):
            return
        for key, prop in (schema.get("properties") or {}).items():
            names.add(key)
            walk(prop)
        walk(schema.get("items"))

    for schema in forms.values():
        walk(schema)
    return names
