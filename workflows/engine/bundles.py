"""Parsing and checking bundles of BPMN, DMN and form files before anything of them is stored."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import jsonschema
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from . import checks
from .errors import DeployError, Problem
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
    warnings: list[Problem] = field(default_factory=list)
    facts: checks.ProcessFacts = field(default_factory=checks.ProcessFacts)

    def task_info_json(self) -> str:
        return dumps({k: v.__dict__ for k, v in self.steps.items()})


def parse_bundle(
    files: Mapping[str, str | bytes],
    serializer: StateSerializer,
    extra_forms: Mapping[str, list[str]],
    helpers: Iterable[str] = (),
    known: Iterable[str] = (),
) -> list[ParsedProcess]:
    """Parse and check BPMN, DMN and form files together; raise DeployError listing every problem of
    every file. Warnings (which do not block) come back on each parsed process."""
    parsed, problems = inspect_bundle(files, serializer, extra_forms, helpers, known)
    if any(p.severity == "error" for p in problems):
        raise DeployError(problems)
    return parsed


def inspect_bundle(
    files: Mapping[str, str | bytes],
    serializer: StateSerializer,
    extra_forms: Mapping[str, list[str]],
    helpers: Iterable[str] = (),
    known: Iterable[str] = (),
) -> tuple[list[ParsedProcess], list[Problem]]:
    """Every problem of a bundle (errors and warnings), and its processes when it has no errors."""
    report = checks.Report()
    bpmn_files = {n: c for n, c in files.items() if n.lower().endswith(".bpmn")}
    dmn_files = {n: c for n, c in files.items() if n.lower().endswith(".dmn")}
    form_files = {n: c for n, c in files.items() if n.lower().endswith(".json")}
    other = sorted(set(files) - set(bpmn_files) - set(dmn_files) - set(form_files))
    for name in other:
        report.error(name, None, "不支持的文件类型（只接受 .bpmn、.dmn 和 .json 表单）")
    if not bpmn_files:
        report.error("(bundle)", None, "没有 BPMN 文件")

    texts: dict[str, str] = {}
    forms: dict[str, tuple[str, dict]] = {}  # path in the bundle -> (name as given, schema)
    for name, content in form_files.items():
        try:
            text = as_text(content)
            schema = json.loads(text)
            jsonschema.validators.validator_for(schema).check_schema(schema)
            forms[name.replace("\\", "/")] = (name, schema)
            texts[name] = text
        except UnicodeDecodeError:
            report.error(name, None, "表单文件不是 UTF-8 编码的文本")
        except json.JSONDecodeError as exc:
            report.error(name, None, f"表单不是有效的 JSON：{exc.msg}", exc.lineno)
        except jsonschema.SchemaError as exc:
            report.error(name, None, f"表单不是有效的 JSON Schema：{exc.message}")

    expressions: list[checks.Expression] = []
    assigned = checks.names_of_forms({k: v[1] for k, v in forms.items()}) | set(known)
    roots = {}
    facts: dict[str, checks.ProcessFacts] = {}
    for name, content in {**dmn_files, **bpmn_files}.items():
        root = checks.read_xml(name, content, report)
        if root is None:
            continue
        roots[name] = root
        texts[name] = as_text(content)
        if name in bpmn_files:
            checks.check_bpmn(name, root, report, expressions, assigned)
            facts.update(checks.describe(root))
        else:
            checks.check_dmn(name, root, report, expressions, assigned)
    checks.check_expressions(expressions, helpers, assigned, report)

    parser = SpiffBpmnParser(validator=VALIDATOR)
    decision_files: dict[str, str] = {}
    for name in dmn_files:
        if name not in roots:
            continue
        xml = roots[name]
        for ns in checks.DMN_NAMESPACES:
            for decision in xml.iter(f"{{{ns}}}decision"):
                decision_files[decision.get("id")] = name
            for table in xml.iter(f"{{{ns}}}decisionTable"):
                decision_files[table.get("id")] = name
        try:
            parser.add_dmn_xml(xml, filename=name)
        except Exception as exc:  # noqa: BLE001 - every parser failure becomes a located problem
            report.problems.append(_problem_from(exc, name))
    for name in bpmn_files:
        if name not in roots:
            continue
        try:
            parser.add_bpmn_xml(roots[name], filename=name)
        except Exception as exc:  # noqa: BLE001 - every parser failure becomes a located problem
            report.problems.append(_problem_from(exc, name))
    if report.errors:
        return [], report.problems
    problems = report.problems  # warnings only, from here on errors are added

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
        sources = {spec.file: texts[spec.file] for spec in all_specs.values() if spec.file in bpmn_files}
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
        held = checks.ProcessFacts()
        for name in all_specs:
            held.merge(facts.get(name) or checks.ProcessFacts())
        parsed.append(
            ParsedProcess(
                key=process_id,
                name=spec.description or process_id,
                sources=sources,
                content_hash=content_hash,
                spec_json=spec_json,
                steps=steps,
                facts=held,
            )
        )
    if any(p.severity == "error" for p in problems):
        return [], problems
    for process in parsed:
        process.warnings = [p for p in problems if p.file in process.sources or p.file == "(bundle)"]
    return parsed, problems


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
    return Problem(_basename(str(file)), element, _in_chinese(str(message).strip()), line if line else None)


# SpiffWorkflow's parser messages, said in Chinese (the rest keep their text, prefixed, with object
# reprs replaced by the element they name).
_PARSER_MESSAGES = (
    (
        re.compile(r'No DMN Diagram available with id "?([^"]*)"?'),
        "业务规则任务引用的决策表“{0}”不在部署包中",
    ),
    (
        re.compile(r"The process '([^']*)' was not found|Unknown process.*?'([^']*)'"),
        "调用活动引用的流程“{0}”不在部署包中",
    ),
    (re.compile(r"Could not find a spec named '?([^']*)'?"), "找不到流程“{0}”"),
    (re.compile(r"Process .*? has no start event|No start event found"), "流程没有开始事件"),
    (
        re.compile(r"Multiple outgoing flows.*default|No default"),
        "网关有多个出口却没有默认出口，未设条件的出口须设为默认",
    ),
    (
        re.compile(r"Element '(?:\{[^}]*\})?(\w+)': This element is not expected"),
        "元素 {0} 的位置或写法不符合 BPMN 2.0 规范（例如 extensionElements 须放在最前）",
    ),
    (
        re.compile(r"Element '(?:\{[^}]*\})?(\w+)', attribute '([^']*)': (.*)"),
        "元素 {0} 的属性 {1} 不符合规范：{2}",
    ),
)
_NAMESPACE = re.compile(r"\{[^}]*\}")
_REPR = re.compile(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-f]+>")


def _in_chinese(message: str) -> str:
    message = _REPR.sub(lambda m: m.group(1), message)
    for pattern, chinese in _PARSER_MESSAGES:
        found = pattern.search(message)
        if found:
            return chinese.format(*(g for g in found.groups() if g is not None), "")
    message = _NAMESPACE.sub("", message)
    return f"流程文件解析失败：{message}"


def _check_specs(all_specs, forms, decision_files, problems) -> tuple[dict[str, StepInfo], set[str]]:
    """Find each step's form and each decision's file (what the version depends on); collect human steps.
    (The code in the diagrams was checked on the XML: `checks`.)"""
    steps: dict[str, StepInfo] = {}
    deps: set[str] = set()
    for process_id, spec in all_specs.items():
        file = spec.file or "(bundle)"
        for task_spec in spec.task_specs.values():
            bpmn_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
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


def main_processes(files: Mapping[str, str | bytes]) -> list[str]:
    """The executable processes of a bundle that no other of its diagrams calls, in the order of their
    files (shallowest path first): what an import is named after. Files that are not XML are passed over
    (the checks report them)."""
    declared: list[str] = []
    called: set[str] = set()
    for name in sorted(files, key=lambda n: (n.count("/"), n)):
        if not name.lower().endswith(".bpmn"):
            continue
        root = checks.read_xml(name, files[name], checks.Report())
        if root is None:
            continue
        for process in root.iter(f"{{{checks.BPMN}}}process"):
            if process.get("isExecutable", "true").lower() == "true" and process.get("id"):
                declared.append(process.get("id"))
        called.update(c.get("calledElement") for c in root.iter(f"{{{checks.BPMN}}}callActivity"))
    return [key for key in declared if key not in called]
