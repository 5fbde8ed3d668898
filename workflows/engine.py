"""The one front end to SpiffWorkflow: parse and check process bundles, run instances, store their state.

Nothing else in the project imports SpiffWorkflow. Callers see plain data (`ParsedProcess`, `HumanStep`,
`Pending`) and one live object per case (`Instance`), and never a SpiffWorkflow class.

Design points, measured on SpiffWorkflow 3.2 (see shared notes):
- A process spec is serialized once per deployed version and restored once per process (cached); a
  case's state is serialized *without* the spec, which would otherwise be most of every write.
- Scripts and expressions run under RestrictedPython with a small allow-list of helpers.
- SpiffWorkflow's timers read `datetime.now`; we point that at `workflows.clock` so tests move time
  instead of sleeping.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import jsonschema
import orjson
from lxml import etree
from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnSubWorkflowConverter, BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from . import clock

# --------------------------------------------------------------------------------------------------
# Errors


@dataclass
class Problem:
    """One thing wrong with a deployment, located as precisely as the parser allows."""

    file: str
    element: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.element:
            where += f" [{self.element}]"
        if self.line:
            where += f" 第{self.line}行"
        return f"{where}: {self.message}"


class DeployError(Exception):
    """A bundle cannot be deployed; nothing of it was stored."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("流程部署失败：\n" + "\n".join(f"- {p}" for p in problems))


class ScriptError(Exception):
    """A script or expression in a diagram failed (or was refused by the restricted runtime)."""

    def __init__(self, element: str | None, message: str):
        self.element = element
        self.message = message
        super().__init__(f"[{element}] {message}" if element else message)


class EngineError(Exception):
    """The engine refused an operation (task not ready, not waiting for an event, ...)."""


# --------------------------------------------------------------------------------------------------
# The injectable clock: SpiffWorkflow's timer module reads `datetime.now(timezone.utc)`.


class _ClockedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        current = clock.now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


_spiff_timer.datetime = _ClockedDatetime


# --------------------------------------------------------------------------------------------------
# Restricted scripts


def _inplace(op: str, x, y):
    ops = {
        "+=": lambda a, b: a + b,
        "-=": lambda a, b: a - b,
        "*=": lambda a, b: a * b,
        "/=": lambda a, b: a / b,
        "//=": lambda a, b: a // b,
        "%=": lambda a, b: a % b,
    }
    if op not in ops:
        raise ScriptError(None, f"不支持的运算 {op}")
    return ops[op](x, y)


_SAFE_BUILTINS = dict(safe_builtins)
_SAFE_BUILTINS.update(
    {
        name: getattr(__builtins__, name) if not isinstance(__builtins__, dict) else __builtins__[name]
        for name in ("list", "dict", "set", "sum", "min", "max", "any", "all", "enumerate", "map", "filter")
    }
)

# Helpers a diagram may call; domain code registers more through `register_script_helper`.
_HELPERS: dict[str, Any] = {
    "Decimal": Decimal,
    "date": date,
    "datetime": datetime,
    "timedelta": timedelta,
}


def register_script_helper(name: str, func: Callable) -> None:
    """Expose a tested helper function to diagram scripts under `name`."""
    _HELPERS[name] = func
    _restricted_env.globals[name] = func


def _restricted_globals() -> dict[str, Any]:
    return {
        "__builtins__": _SAFE_BUILTINS,
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplace,
        **_HELPERS,
    }


_code_cache: dict[tuple[str, str], Any] = {}


def check_script(source: str, mode: str = "exec") -> str | None:
    """Return why `source` may not run in a diagram, or None when it is acceptable."""
    try:
        tree = ast.parse(source, mode="eval" if mode == "eval" else "exec")
    except SyntaxError as exc:
        return f"语法错误：{exc.msg}（第{exc.lineno}行）"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = ", ".join(a.name for a in node.names)
            return f"脚本不允许导入模块（import {getattr(node, 'module', None) or names}）"
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return f"脚本不允许访问以下划线开头的属性（{node.attr}）"
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            return f"脚本不允许使用名称 {node.id}"
        if isinstance(node, ast.Name) and node.id in ("open", "exec", "eval", "compile", "globals", "locals"):
            return f"脚本不允许调用 {node.id}"
    result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
    if result.errors:
        return "受限执行环境拒绝此脚本：" + "；".join(result.errors)
    return None


def _compile(source: str, mode: str):
    key = (mode, source)
    code = _code_cache.get(key)
    if code is None:
        problem = check_script(source, mode)
        if problem:
            raise ScriptError(None, problem)
        compiled = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
        code = compiled.code
        _code_cache[key] = code
    return code


class _RestrictedEnvironment(TaskDataEnvironment):
    """Task-data environment whose every script and expression is compiled by RestrictedPython."""

    def evaluate(self, expression, context, external_context=None):
        scope = dict(self.globals)
        scope.update(external_context or {})
        scope.update(context)
        return eval(_compile(expression.strip(), "eval"), scope)  # noqa: S307 - restricted code only

    def execute(self, script, context, external_context=None):
        self.check_for_overwrite(context, external_context or {})
        code = _compile(script, "exec")
        context.update(self.globals)
        context.update(external_context or {})
        try:
            exec(code, context)  # noqa: S102 - restricted code only
        finally:
            self._remove_globals_and_functions_from_context(context, external_context)
        return True


_restricted_env = _RestrictedEnvironment(_restricted_globals())
_script_engine = PythonScriptEngine(environment=_restricted_env)


# --------------------------------------------------------------------------------------------------
# Serialization: specs once per version; case state without the spec.


_FINISHED = TaskState.COMPLETED | TaskState.CANCELLED | TaskState.ERROR


def _tasks_to_dict(registry, workflow) -> dict:
    """A workflow's tasks in SpiffWorkflow's TaskConverter format, restored by its own `from_dict`
    (`test_state_format` holds us to it), written for speed: a case's state is serialized on every step.

    Finished tasks no longer change, so their form is kept and reused: re-serializing a case's whole
    history on every step is what makes naive persistence grow with the case. Ids are turned into text
    once per instance.
    """
    top = workflow.top_workflow.__dict__
    finished = top.setdefault("_eldercare_task_dicts", {})
    ids = top.setdefault("_eldercare_ids", {})

    def sid(uid):
        text = ids.get(uid)
        if text is None:
            text = ids[uid] = str(uid)
        return text

    tasks = workflow.tasks
    result = {}
    for uid, task in tasks.items():
        state = task.state
        if state & _FINISHED:
            key = (state, task.last_state_change, len(task._children))
            hit = finished.get(uid)
            if hit is not None and hit[0] == key:
                result[sid(uid)] = hit[1]
                continue
        if type(task) is not Task:
            dct = registry.convert(task)
        else:
            parent = tasks.get(task._parent)
            own = task.data
            if parent is None:
                data, delta = own, {}
            elif not own:  # tasks not reached yet: restored alike, without listing every parent key
                data, delta = {}, {}
            else:
                above = parent.data
                data = {}
                delta = {
                    "updates": {k: own[k] for k in own if k not in above or own[k] != above[k]},
                    "deletions": [k for k in above if k not in own],
                }
            dct = {
                "id": sid(uid),
                "parent": sid(task._parent) if parent is not None else None,
                "children": [sid(child) for child in task._children],
                "last_state_change": task.last_state_change,
                "state": state,
                "task_spec": task.task_spec.name,
                "triggered": task.triggered,
                "internal_data": registry.convert(task.internal_data) if task.internal_data else {},
                "data": data,
                "delta": delta,
                "typename": "Task",
            }
        if state & _FINISHED:
            finished[uid] = (key, dct)
        result[sid(uid)] = dct
    return result


def _workflow_fields(registry, workflow) -> dict:
    """SpiffWorkflow's WorkflowConverter.to_dict, with the tasks written by `_tasks_to_dict`."""
    return {
        "data": registry.convert(registry.clean(workflow.data)),
        "correlations": workflow.correlations,
        "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "tasks": _tasks_to_dict(registry, workflow),
        "root": str(workflow.task_tree.id),
    }


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Leave the spec out of a case's state; it is stored once with the process version."""

    def to_dict(self, workflow):
        dct = _workflow_fields(self.registry, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class _SubWorkflowConverter(BpmnSubWorkflowConverter):
    def to_dict(self, workflow):
        dct = _workflow_fields(self.registry, workflow)
        dct["parent_task_id"] = str(workflow.parent_task_id)
        dct["spec"] = workflow.spec.name
        return dct


class _StockSpeclessConverter(_SpeclessWorkflowConverter):
    """The same state written by SpiffWorkflow's own converters, slower: tests compare the two."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


def _make_registry(fast: bool = True):
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _SpeclessWorkflowConverter if fast else _StockSpeclessConverter
    if fast:
        config[BpmnSubWorkflow] = _SubWorkflowConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]), "Decimal")
    registry.register(
        date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]), "date"
    )
    return registry


_registry = _make_registry()
_STATE_FORMAT = 1


def _dumps(obj) -> str:
    # orjson: a case's state is written on every step, and the stdlib encoder was a tenth of a step.
    return orjson.dumps(obj, default=_encode_default).decode("utf-8")


def _encode_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot store {type(value).__name__} in case data")


# --------------------------------------------------------------------------------------------------
# Parsing and checking bundles


@dataclass
class StepInfo:
    """What the web layer needs to know about a human step, read without the engine."""

    spec_id: str
    name: str
    kind: str  # "user" or "manual"
    lane: str | None
    form_file: str | None
    form: dict | None
    ui_form: dict | None
    instructions: str | None
    process_id: str
    properties: dict = field(default_factory=dict)


@dataclass
class ParsedProcess:
    """A parsed, checked process with everything needed to store it as a version."""

    key: str
    name: str
    sources: dict[str, str]  # the files this process depends on
    content_hash: str
    spec_json: str
    steps: dict[str, StepInfo]

    def task_info_json(self) -> str:
        return _dumps({k: v.__dict__ for k, v in self.steps.items()})


_BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)
# BPMN elements SpiffWorkflow cannot execute: refuse them rather than let a case stall on them later.
_UNSUPPORTED = {"complexGateway": "复杂网关（complexGateway）", "transaction": "事务子流程（transaction）"}


def _as_text(content: str | bytes) -> str:
    return content.decode("utf-8-sig") if isinstance(content, bytes) else content


def parse_bundle(files: Mapping[str, str | bytes]) -> list[ParsedProcess]:
    """Parse and check BPMN, DMN and form files together; raise DeployError listing every problem."""
    texts = {name: _as_text(content) for name, content in files.items()}
    problems: list[Problem] = []
    bpmn_files = {n: t for n, t in texts.items() if n.lower().endswith(".bpmn")}
    dmn_files = {n: t for n, t in texts.items() if n.lower().endswith(".dmn")}
    form_files = {n: t for n, t in texts.items() if n.lower().endswith(".json")}
    other = sorted(set(texts) - set(bpmn_files) - set(dmn_files) - set(form_files))
    for name in other:
        problems.append(Problem(name, None, "不支持的文件类型（只接受 .bpmn、.dmn 和 .json 表单）"))
    if not bpmn_files:
        problems.append(Problem("(bundle)", None, "没有 BPMN 文件"))

    forms: dict[str, tuple[str, dict]] = {}  # path in the bundle -> (name as given, schema)
    for name, text in form_files.items():
        try:
            schema = json.loads(text)
            jsonschema.validators.validator_for(schema).check_schema(schema)
            forms[name.replace("\\", "/")] = (name, schema)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, None, f"表单不是有效的 JSON：{exc.msg}（第{exc.lineno}行）"))
        except jsonschema.SchemaError as exc:
            problems.append(Problem(name, None, f"表单不是有效的 JSON Schema：{exc.message}"))

    parser = SpiffBpmnParser(validator=VALIDATOR)
    decision_files: dict[str, str] = {}
    for name, text in dmn_files.items():
        try:
            xml = etree.fromstring(text.encode("utf-8"))
            for ns in _DMN_NAMESPACES:
                for decision in xml.iter(f"{{{ns}}}decision"):
                    decision_files[decision.get("id")] = name
                for table in xml.iter(f"{{{ns}}}decisionTable"):
                    decision_files[table.get("id")] = name
            parser.add_dmn_xml(xml, filename=name)
        except etree.XMLSyntaxError as exc:
            problems.append(Problem(name, None, f"DMN 文件不是有效的 XML：{exc.msg}", exc.lineno))
        except (ValidationException, SpiffWorkflowException, Exception) as exc:  # noqa: BLE001
            problems.append(_problem_from(exc, name))

    for name, text in bpmn_files.items():
        try:
            xml = etree.fromstring(text.encode("utf-8"))
        except etree.XMLSyntaxError as exc:
            problems.append(Problem(name, None, f"BPMN 文件不是有效的 XML：{exc.msg}", exc.lineno))
            continue
        for tag, label in _UNSUPPORTED.items():
            for node in xml.iter(f"{{{_BPMN_NS}}}{tag}"):
                problems.append(Problem(name, node.get("id"), f"不支持的元素：{label}", node.sourceline))
        try:
            parser.add_bpmn_xml(xml, filename=name)
        except Exception as exc:  # noqa: BLE001 - every parser failure becomes a located problem
            problems.append(_problem_from(exc, name))
    if problems:
        raise DeployError(problems)

    parsed: list[ParsedProcess] = []
    for process_id in sorted(parser.get_process_ids()):
        try:
            spec = parser.get_spec(process_id)
            subprocess_specs = parser.get_subprocess_specs(process_id)
        except Exception as exc:  # noqa: BLE001
            problems.append(_problem_from(exc, _file_of_process(parser, process_id)))
            continue
        all_specs = {process_id: spec, **subprocess_specs}
        steps, deps = _check_specs(all_specs, forms, decision_files, problems)
        sources = {spec.file: bpmn_files[spec.file] for spec in all_specs.values() if spec.file in bpmn_files}
        for dep in deps:
            sources[dep] = texts[dep]
        sources = dict(sorted(sources.items()))
        content_hash = hashlib.sha256(_dumps(sources).encode("utf-8")).hexdigest()
        spec_json = _dumps(
            {
                "format": _STATE_FORMAT,
                "spec": _registry.convert(spec),
                "subprocess_specs": {k: _registry.convert(v) for k, v in subprocess_specs.items()},
            }
        )
        parsed.append(
            ParsedProcess(
                key=process_id,
                name=spec.description or process_id,
                sources=sources,
                content_hash=content_hash,
                spec_json=spec_json,
                steps=steps,
            )
        )
    if problems:
        raise DeployError(problems)
    return parsed


def _find_form(forms: dict, bpmn_file: str, ref: str):
    """Find a form the way a modeler lays them out: beside the diagram, in its forms/ folder, or by a
    name unique in the bundle. Returns (name, schema), or a Chinese message saying what is wrong."""
    folder = bpmn_file.replace("\\", "/").rpartition("/")[0]
    ref = ref.replace("\\", "/")
    for candidate in (f"{folder}/{ref}", f"{folder}/forms/{ref}") if folder else (ref, f"forms/{ref}"):
        if candidate in forms:
            return forms[candidate]
    same_name = [k for k in forms if _basename(k) == _basename(ref)]
    if len(same_name) == 1:
        return forms[same_name[0]]
    if same_name:
        return f"表单文件 {ref} 有多个同名文件（{'、'.join(sorted(same_name))}），请放在流程图同目录或其 forms/ 目录"
    return f"找不到表单文件 {ref}"


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _file_of_process(parser, process_id: str) -> str:
    try:
        return parser.get_process_parser(process_id).filename or "(bundle)"
    except Exception:  # noqa: BLE001
        return "(bundle)"


def _problem_from(exc: Exception, filename: str) -> Problem:
    file = getattr(exc, "file_name", None) or filename
    element = getattr(exc, "id", None) or getattr(exc, "task_id", None) or None
    line = getattr(exc, "line_number", None) or None
    message = getattr(exc, "error_msg", None) or getattr(exc, "message", None) or str(exc)
    return Problem(_basename(str(file)), element, str(message).strip(), line if line else None)


_SCRIPT_ATTRS = ("script", "prescript", "postscript")


def _check_specs(all_specs, forms, decision_files, problems) -> tuple[dict[str, StepInfo], set[str]]:
    """Check what the parser does not: scripts, conditions, forms, decisions. Collect human steps."""
    steps: dict[str, StepInfo] = {}
    deps: set[str] = set()
    for process_id, spec in all_specs.items():
        file = spec.file or "(bundle)"
        for task_spec in spec.task_specs.values():
            bpmn_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
            for attr in _SCRIPT_ATTRS:
                source = getattr(task_spec, attr, None)
                if source:
                    problem = check_script(source, "exec")
                    if problem:
                        problems.append(Problem(file, bpmn_id, problem))
            for operator, _target in getattr(task_spec, "cond_task_specs", []) or []:
                condition = operator.args[0] if operator is not None and operator.args else None
                if isinstance(condition, str):
                    problem = check_script(condition, "eval")
                    if problem:
                        problems.append(Problem(file, bpmn_id, f"条件表达式 {condition!r}：{problem}"))
            decision_ref = getattr(task_spec, "dmnEngine", None)
            if decision_ref is not None:
                decision_id = getattr(getattr(decision_ref, "decision_table", None), "id", None)
                if decision_id in decision_files:
                    deps.add(decision_files[decision_id])
            if getattr(task_spec, "manual", False):
                extensions = getattr(task_spec, "extensions", {}) or {}
                props = extensions.get("properties", {}) or {}
                form_file = props.get("formJsonSchemaFilename")
                ui_file = props.get("formUiSchemaFilename")
                form = ui_form = None
                if form_file:
                    found = _find_form(forms, file, form_file)
                    if isinstance(found, str):
                        problems.append(Problem(file, bpmn_id, found))
                    else:
                        source_name, form = found
                        deps.add(source_name)
                if ui_file:
                    found = _find_form(forms, file, ui_file)
                    if not isinstance(found, str):
                        source_name, ui_form = found
                        deps.add(source_name)
                kind = "user" if type(task_spec).__name__.startswith("User") else "manual"
                steps[bpmn_id] = StepInfo(
                    spec_id=bpmn_id,
                    name=task_spec.bpmn_name or bpmn_id,
                    kind=kind,
                    lane=task_spec.lane,
                    form_file=form_file,
                    form=form,
                    ui_form=ui_form,
                    instructions=extensions.get("instructionsForEndUser"),
                    process_id=process_id,
                    properties=dict(props),
                )
    return steps, deps


# --------------------------------------------------------------------------------------------------
# Restored specs, cached per deployed version


@dataclass
class LoadedSpec:
    spec: Any
    subprocess_specs: dict[str, Any]


def load_spec(spec_json: str) -> LoadedSpec:
    """Restore a stored spec (callers cache it: a deployed spec never changes)."""
    dct = json.loads(spec_json)
    return LoadedSpec(
        spec=_registry.restore(dct["spec"]),
        subprocess_specs={k: _registry.restore(v) for k, v in dct["subprocess_specs"].items()},
    )


# --------------------------------------------------------------------------------------------------
# Running instances

# Below SpiffWorkflow's iterator limit of 1,000 with room for the tasks one step adds.
MAX_TASK_DEPTH = 960


@dataclass
class HumanStep:
    """A READY user or manual task, as plain data."""

    id: str
    spec_id: str
    name: str
    lane: str | None
    process_id: str
    data: dict = field(repr=False, default_factory=dict)


@dataclass
class Outgoing:
    """A message a diagram threw that nothing inside the instance catches: the system acts on it."""

    name: str
    payload: Any


@dataclass
class Pending:
    """Something the instance waits for: a timer (with its due time) or a named message/signal."""

    kind: str  # "timer", "message" or "signal"
    name: str
    due_at: datetime | None = None


def _spiff_call(element: str | None, fn, *args, **kwargs):
    """Run an engine call, turning SpiffWorkflow's errors into ours with the element named."""
    try:
        return fn(*args, **kwargs)
    except ScriptError:
        raise
    except SpiffWorkflowException as exc:
        cause = exc.__cause__ or exc.__context__
        task_spec = getattr(getattr(exc, "task", None), "task_spec", None)
        where = getattr(task_spec, "bpmn_id", None) or element
        if isinstance(cause, ScriptError):
            raise ScriptError(where, cause.message) from exc
        if isinstance(
            cause, NameError | TypeError | KeyError | AttributeError | ZeroDivisionError | ValueError
        ):
            raise ScriptError(where, f"{type(cause).__name__}: {cause}") from exc
        raise ScriptError(where, getattr(exc, "error_msg", None) or str(exc)) from exc


class Instance:
    """A live process instance of one case."""

    def __init__(self, workflow: BpmnWorkflow):
        self._wf = workflow
        # What the instance looks like now, computed once after each move (the hot path asks repeatedly).
        self._steps: list[HumanStep] | None = None  # READY human tasks
        self._completed: bool | None = None

    # -- creating and restoring

    @classmethod
    def start(cls, loaded: LoadedSpec, data: Mapping[str, Any] | None = None) -> Instance:
        """Create an instance and run it to its first wait state."""
        wf = BpmnWorkflow(loaded.spec, loaded.subprocess_specs, script_engine=_script_engine)
        if data:
            wf.task_tree.data.update(data)
            for task in wf.get_tasks(state=TaskState.READY):
                task.data.update(data)
        instance = cls(wf)
        instance.run()
        return instance

    @classmethod
    def restore(cls, loaded: LoadedSpec, state: str) -> Instance:
        dct = json.loads(state)
        if dct.pop("format", _STATE_FORMAT) != _STATE_FORMAT:
            raise EngineError("unknown case state format")
        wf = _registry.restore(dct, spec=loaded.spec, subprocess_specs=loaded.subprocess_specs)
        wf.script_engine = _script_engine
        return cls(wf)

    def dump(self) -> str:
        dct = _registry.convert(self._wf)
        dct["format"] = _STATE_FORMAT
        return _dumps(dct)

    # -- running

    def run(self) -> None:
        """Run engine steps (scripts, gateways, decisions, due timers) to the next wait state."""
        self._forget()
        _spiff_call(None, self._wf.do_engine_steps)
        self._check_depth()

    def _forget(self) -> None:
        self._steps = None
        self._completed = None

    def _check_depth(self) -> None:
        # SpiffWorkflow 3.2 walks the task tree to a depth of 1,000 only: past it (a loop of ~247 rounds)
        # READY tasks become invisible and the case silently stops. Fail loudly before that.
        last = self._wf.last_task
        if last is not None and last.depth >= MAX_TASK_DEPTH:
            raise ScriptError(
                getattr(last.task_spec, "bpmn_id", None),
                f"流程实例的步骤数已达上限（任务树深度 {last.depth}）：循环次数过多。"
                "周期性工作应建模为每期一个案件，而不是在一个实例中无限循环",
            )

    def human_steps(self) -> list[HumanStep]:
        if self._steps is None:
            self._steps = self._find_steps()
        return self._steps

    def _find_steps(self) -> list[HumanStep]:
        tasks = self._wf.get_tasks(state=TaskState.READY, manual=True)
        return [
            HumanStep(
                id=str(t.id),
                spec_id=t.task_spec.bpmn_id or t.task_spec.name,
                name=t.task_spec.bpmn_name or t.task_spec.name,
                lane=t.task_spec.lane,
                process_id=t.workflow.spec.name,
                data=t.data,
            )
            for t in tasks
        ]

    def complete(self, task_id: str, data: Mapping[str, Any]) -> None:
        """Complete a READY human task with submitted data and run to the next wait state."""
        task = self._wf.get_task_from_id(UUID(task_id))
        if task is None or not task.task_spec.manual:
            raise EngineError("没有这个待办任务")
        if task.state != TaskState.READY:
            raise EngineError("任务当前不可办理")
        element = task.task_spec.bpmn_id
        self._forget()
        task.data.update(data)
        _spiff_call(element, task.run)
        self.run()

    def fire_due_timers(self) -> bool:
        """Fire timers that are due by the clock; return whether anything moved."""
        before = self._fingerprint()
        self._forget()
        _spiff_call(None, self._wf.refresh_timers)
        self.run()
        return self._fingerprint() != before

    def deliver(self, name: str, payload: Mapping[str, Any] | None = None, *, signal: bool = False) -> bool:
        """Deliver a named message (or signal) with a payload; return False if nothing here waits for it."""
        if name not in {p.name for p in self.pending() if p.kind in ("message", "signal")}:
            return False
        definition = SignalEventDefinition(name) if signal else MessageEventDefinition(name)
        event = BpmnEvent(definition, payload=dict(payload or {}))
        self._forget()
        _spiff_call(None, self._wf.catch, event)
        self.run()
        return True

    def take_outgoing(self) -> list[Outgoing]:
        """Messages thrown since the last call (throw events, message end events), oldest first."""
        return [
            Outgoing(event.event_definition.name, event.payload)
            for event in self._wf.get_events()
            if isinstance(event.event_definition, MessageEventDefinition | SignalEventDefinition)
            or "Message" in type(event.event_definition).__name__
        ]

    def _fingerprint(self):
        return tuple((t.id, t.state) for t in self._wf.get_tasks())

    # -- reading

    def pending(self) -> list[Pending]:
        """What the instance waits for; an event-based gateway contributes each of its events."""
        result = []
        for task in self._wf.event_manager.tasks.values():
            definition = task.task_spec.event_definition
            for item in getattr(definition, "event_definitions", None) or [definition]:
                kind = type(item).__name__
                if "Time" in kind:  # TimeDate-, DurationTimer- and CycleTimerEventDefinition
                    result.append(Pending("timer", item.name, _due(item.details(task).value)))
                elif "Message" in kind:
                    result.append(Pending("message", item.name))
                elif "Signal" in kind:
                    result.append(Pending("signal", item.name))
        return result

    @staticmethod
    def next_timer_at(pending: list[Pending]) -> datetime | None:
        dues = [p.due_at for p in pending if p.kind == "timer" and p.due_at is not None]
        return min(dues) if dues else None

    @property
    def completed(self) -> bool:
        if self._completed is None:
            self._completed = self._wf.is_completed()
        return self._completed

    @property
    def data(self) -> dict:
        """The case data: the top workflow's data when finished; else the latest completed task's,
        overlaid with what the open human steps hold (after a boundary event, those are the newest)."""
        if self.completed:
            return dict(self._wf.data)
        last = self._wf.last_task
        data = dict(last.data) if last is not None else dict(self._wf.task_tree.data)
        for step in self.human_steps():
            data.update(step.data)
        return data

    def completed_step_ids(self) -> list[str]:
        """Element ids of finished activities, for marking the diagram."""
        return sorted(
            {
                t.task_spec.bpmn_id
                for t in self._wf.get_tasks(state=TaskState.COMPLETED)
                if getattr(t.task_spec, "bpmn_id", None)
            }
        )

    def waiting_step_ids(self) -> list[str]:
        """Element ids of the top process that are under way without a person: waiting events, running
        sub-processes and call activities (for marking the diagram's current steps)."""
        under_way = TaskState.WAITING | TaskState.STARTED
        return sorted(
            {
                t.task_spec.bpmn_id
                for t in self._wf.get_tasks(state=under_way)
                if getattr(t.task_spec, "bpmn_id", None)
                and t.workflow is self._wf
                and "Boundary" not in type(t.task_spec).__name__  # decorations of the activity they sit on
            }
        )

    def task_data(self, task_id: str) -> dict:
        task = self._wf.get_task_from_id(UUID(task_id))
        return dict(task.data) if task is not None else {}


def _due(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, dict):  # a cycle timer: {"cycles": n, "next": iso, ...}
        value = value.get("next")
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def data_json(data: Mapping[str, Any]) -> str:
    """Case data as JSON text for display (dates as ISO strings, amounts as strings)."""
    return orjson.dumps(data, default=_display_default, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def _display_default(value):
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def evaluate_decision(files: Mapping[str, str | bytes], decision_id: str, context: Mapping[str, Any]) -> dict:
    """Evaluate one DMN decision table against a context (for rules tested outside a process)."""
    parser = SpiffBpmnParser()
    for name, content in files.items():
        parser.add_dmn_xml(etree.fromstring(_as_text(content).encode("utf-8")), filename=name)
    dmn_engine = parser.get_engine(decision_id, None)

    class _FakeTask:  # the DMN engine only reads `data` and `workflow.script_engine` from a task
        def __init__(self, data):
            self.data = dict(data)
            self.workflow = type("W", (), {"script_engine": _script_engine})()

    task = _FakeTask(context)
    return dmn_engine.result(task)


def validate_form(schema: Mapping[str, Any] | None, data: Mapping[str, Any]) -> dict[str, str]:
    """Check submitted data against a step's JSON Schema; return {field: Chinese message}."""
    errors: dict[str, str] = {}
    _find_unstorable_numbers(data, "", errors)
    if not schema:
        return errors
    validator = _validator_for(schema)
    for error in sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            key = ".".join(filter(None, [path, missing[0] if missing else ""]))
            errors.setdefault(key or "_", "此项为必填项")
        else:
            errors.setdefault(path or "_", _chinese_message(error, schema))
    return errors


# The numbers a case can hold: finite, and integers no larger than JSON readers keep exactly (a browser's
# included). Anything else would be refused by the state encoder, or silently stored as null (NaN).
_SAFE_INTEGER = 2**53 - 1


def _find_unstorable_numbers(value, path: str, errors: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _find_unstorable_numbers(item, f"{path}.{key}" if path else str(key), errors)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _find_unstorable_numbers(item, f"{path}.{index}" if path else str(index), errors)
    elif _is_number(value) and (not math.isfinite(value) or abs(value) > _SAFE_INTEGER):
        errors.setdefault(path or "_", "数值超出允许范围")


def _is_number(value) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


_validators: dict[str, Any] = {}
_validators_by_id: dict[int, tuple[Mapping, Any]] = {}


def _validator_for(schema):
    # Forms come from the cached process runtimes, so the same dict returns on every step: look it up
    # by identity first (holding the dict, so its id cannot be reused), by content otherwise.
    known = _validators_by_id.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    key = _dumps(schema)
    validator = _validators.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        _validators[key] = validator
    if len(_validators_by_id) < 10_000:
        _validators_by_id[id(schema)] = (schema, validator)
    return validator


def _chinese_message(error, schema) -> str:
    v = error.validator
    if v == "type":
        names = {
            "string": "文本",
            "integer": "整数",
            "number": "数字",
            "boolean": "是/否",
            "array": "列表",
            "object": "对象",
        }
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        return "应为" + "或".join(names.get(x, x) for x in expected)
    if v in ("enum", "oneOf", "anyOf"):
        return "不是允许的选项"
    if v == "const":
        return "取值不正确"
    if v == "minimum":
        return f"不能小于 {error.validator_value}"
    if v == "maximum":
        return f"不能大于 {error.validator_value}"
    if v == "exclusiveMinimum":
        return f"必须大于 {error.validator_value}"
    if v == "exclusiveMaximum":
        return f"必须小于 {error.validator_value}"
    if v == "minLength":
        return "不能为空" if error.validator_value == 1 else f"至少 {error.validator_value} 个字符"
    if v == "maxLength":
        return f"最多 {error.validator_value} 个字符"
    if v == "pattern":
        return "格式不正确"
    if v == "format":
        return {"date": "日期格式应为 YYYY-MM-DD", "date-time": "时间格式不正确"}.get(
            error.validator_value, "格式不正确"
        )
    if v == "minItems":
        return f"至少填写 {error.validator_value} 项"
    if v == "maxItems":
        return f"最多填写 {error.validator_value} 项"
    if v == "additionalProperties":
        return "包含不允许的字段"
    return "填写内容不符合要求"


def content_hash(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


__all__ = [
    "DeployError",
    "EngineError",
    "HumanStep",
    "Instance",
    "LoadedSpec",
    "Outgoing",
    "ParsedProcess",
    "Pending",
    "Problem",
    "ScriptError",
    "StepInfo",
    "WorkflowException",
    "check_script",
    "evaluate_decision",
    "load_spec",
    "parse_bundle",
    "register_script_helper",
    "validate_form",
]
