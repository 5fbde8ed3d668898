"""Parsing and checking bundles of BPMN, DMN and form files before anything of them is stored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import jsonschema
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from .errors import DeployError, Problem
from .sandbox import check_script
from .state import StateSerializer, dumps


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
        return dumps({k: v.__dict__ for k, v in self.steps.items()})


_BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)
# BPMN elements SpiffWorkflow cannot execute: refuse them rather than let a case stall on them later.
_UNSUPPORTED = {"complexGateway": "复杂网关（complexGateway）", "transaction": "事务子流程（transaction）"}


def parse_bundle(
    files: Mapping[str, str | bytes], serializer: StateSerializer, extra_forms: Mapping[str, list[str]]
) -> list[ParsedProcess]:
    """Parse and check BPMN, DMN and form files together; raise DeployError listing every problem."""
    texts = {name: as_text(content) for name, content in files.items()}
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
        for ref in extra_forms.get(process_id, ()):
            found = _find_form(forms, spec.file or "", ref)
            if isinstance(found, str):
                problems.append(Problem(spec.file or "(bundle)", process_id, found))
            else:
                deps.add(found[0])
        for dep in deps:
            sources[dep] = texts[dep]
        sources = dict(sorted(sources.items()))
        content_hash = hashlib.sha256(dumps(sources).encode("utf-8")).hexdigest()
        spec_json = serializer.dump_spec(spec, subprocess_specs)
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


def as_text(content: str | bytes) -> str:
    return content.decode("utf-8-sig") if isinstance(content, bytes) else content


def content_hash(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()
