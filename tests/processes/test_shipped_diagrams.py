"""Every shipped diagram under bpmn/: it parses as one bundle, renders (full diagram interchange, no
overlapping shapes, nodes inside their lanes), reads as the county's procedure (readable ids, Chinese
names, named conditions, lanes that name roles) and every human step has a valid Chinese form."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
from lxml import etree

from workflows import access, registry, versions
from workflows.config import bpmn_dir

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "bpmndi": DI_NS, "dc": DC_NS, "spiff": SPIFF_NS}

ROOT = bpmn_dir()
DIAGRAMS = sorted(ROOT.rglob("*.bpmn"))
DECISIONS = sorted(ROOT.rglob("*.dmn"))
FORMS = sorted(p for p in ROOT.rglob("*.json") if p.parent.name == "forms")

# What modelers generate when nobody names an element.
GENERATED = re.compile(
    r"^(Activity|Gateway|Flow|Event|StartEvent|EndEvent|Lane|LaneSet|Participant|Process|Collaboration|Task|"
    r"SequenceFlow|BoundaryEvent|SubProcess|CallActivity|DataObject|TextAnnotation|Association|Message|"
    r"Decision|DecisionTable|DecisionRule|InputClause|OutputClause|UnaryTests|LiteralExpression)_"
)
CHINESE = re.compile(r"[\u4e00-\u9fff]")
FLOW_NODES = {
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "manualTask",
    "scriptTask",
    "serviceTask",
    "sendTask",
    "receiveTask",
    "businessRuleTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
}
HUMAN = {"userTask", "manualTask"}


def _local(element) -> str:
    return etree.QName(element).localname


def _xml(path: Path):
    return etree.parse(str(path)).getroot()


def _ids(path: Path) -> list[str]:
    return [pytest.param(p, id=str(p.relative_to(ROOT))) for p in [path]]


def _flow_nodes(root):
    return [e for e in root.iter(f"{{{BPMN_NS}}}*") if _local(e) in FLOW_NODES]


def _bounds(shape):
    b = shape.find("dc:Bounds", NS)
    return float(b.get("x")), float(b.get("y")), float(b.get("width")), float(b.get("height"))


def _shapes(root) -> dict[str, object]:
    return {s.get("bpmnElement"): s for s in root.iter(f"{{{DI_NS}}}BPMNShape")}


def test_the_whole_folder_deploys_as_one_bundle():
    parsed = registry.engine().parse_bundle(versions.read_bundle(ROOT))
    keys = [p.key for p in parsed]
    assert len(keys) == len(set(keys))
    assert {"assessment", "home_care", "home_care_month", "visiting_care", "visiting_care_visit"} <= set(keys)


def test_decision_ids_are_unique_across_the_folder():
    seen: dict[str, Path] = {}
    for path in DECISIONS:
        for decision in _xml(path).iter("{*}decision"):
            assert decision.get("id") not in seen, (
                f"{decision.get('id')} in {path} and {seen.get(decision.get('id'))}"
            )
            seen[decision.get("id")] = path


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_node_lane_and_flow_has_diagram_interchange(path):
    root = _xml(path)
    shapes = _shapes(root)
    edges = {e.get("bpmnElement"): e for e in root.iter(f"{{{DI_NS}}}BPMNEdge")}
    for node in _flow_nodes(root):
        assert node.get("id") in shapes, f"{path.name}: no shape for {node.get('id')}"
    for kind in ("lane", "participant"):
        for element in root.iter(f"{{{BPMN_NS}}}{kind}"):
            shape = shapes.get(element.get("id"))
            assert shape is not None, f"{path.name}: no shape for {kind} {element.get('id')}"
            assert shape.get("isHorizontal") == "true", f"{path.name}: {element.get('id')} is not horizontal"
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        edge = edges.get(flow.get("id"))
        assert edge is not None, f"{path.name}: no edge for {flow.get('id')}"
        assert len(edge.findall("{*}waypoint")) >= 2, f"{path.name}: {flow.get('id')} has no waypoints"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shapes_do_not_overlap_and_sit_in_their_lanes(path):
    root = _xml(path)
    shapes = _shapes(root)
    nodes = [n for n in _flow_nodes(root) if _local(n) != "boundaryEvent"]
    boxes = {n.get("id"): _bounds(shapes[n.get("id")]) for n in nodes}

    def overlap(a, b):
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    def inside(a, b):
        return b[0] <= a[0] and b[1] <= a[1] and a[0] + a[2] <= b[0] + b[2] and a[1] + a[3] <= b[1] + b[3]

    ids = sorted(boxes)
    for i, first in enumerate(ids):
        for second in ids[i + 1 :]:
            a, b = boxes[first], boxes[second]
            if overlap(a, b) and not (inside(a, b) or inside(b, a)):
                pytest.fail(f"{path.name}: {first} overlaps {second}")
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):
        lx, ly, lw, lh = _bounds(shapes[lane.get("id")])
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            x, y, w, h = _bounds(shapes[ref.text])
            cx, cy = x + w / 2, y + h / 2
            assert lx <= cx <= lx + lw and ly <= cy <= ly + lh, (
                f"{path.name}: {ref.text} is drawn outside its lane"
            )


@pytest.mark.parametrize("path", DIAGRAMS + DECISIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_generated_ids(path):
    generated = [e.get("id") for e in _xml(path).iter() if e.get("id") and GENERATED.match(e.get("id"))]
    assert generated == [], f"{path.name}: generated ids {generated}"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_elements_are_named_in_chinese_and_lanes_name_roles(path):
    root = _xml(path)
    for element in [
        *_flow_nodes(root),
        *root.iter(f"{{{BPMN_NS}}}process"),
        *root.iter(f"{{{BPMN_NS}}}lane"),
    ]:
        name = element.get("name") or ""
        assert CHINESE.search(name), f"{path.name}: {element.get('id')} has no Chinese name ({name!r})"
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):
        assert access.role_for_lane(lane.get("name")), f"{path.name}: lane {lane.get('name')!r} names no role"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_gateway_flows_are_named_and_unconditioned_ones_are_defaults(path):
    root = _xml(path)
    flows = {f.get("id"): f for f in root.iter(f"{{{BPMN_NS}}}sequenceFlow")}
    for gateway in root.iter(f"{{{BPMN_NS}}}exclusiveGateway", f"{{{BPMN_NS}}}inclusiveGateway"):
        outgoing = [flows[o.text] for o in gateway.findall("bpmn:outgoing", NS)]
        if len(outgoing) < 2:
            continue
        for flow in outgoing:
            assert flow.get("name"), f"{path.name}: {flow.get('id')} leaves {gateway.get('id')} unnamed"
            if flow.find("bpmn:conditionExpression", NS) is None:
                assert gateway.get("default") == flow.get("id"), (
                    f"{path.name}: {flow.get('id')} has no condition and is not the default of {gateway.get('id')}"
                )


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_human_step_has_a_form_file(path):
    root = _xml(path)
    for task in root.iter(*(f"{{{BPMN_NS}}}{kind}" for kind in HUMAN)):
        prop = task.find(".//spiff:property[@name='formJsonSchemaFilename']", NS)
        assert prop is not None, f"{path.name}: {task.get('id')} has no form"
        candidates = [path.parent / prop.get("value"), path.parent / "forms" / prop.get("value")]
        assert any(c.exists() for c in candidates), f"{path.name}: {prop.get('value')} not found"


def _untitled(schema: dict, where: str) -> list[str]:
    """Places in a form a person sees without a Chinese title (properties, array items, choices)."""
    missing = []
    for key, sub in (schema.get("properties") or {}).items():
        here = f"{where}.{key}" if where else key
        if not CHINESE.search(sub.get("title") or ""):
            missing.append(here)
        missing += _untitled(sub, here)
        items = sub.get("items") or {}
        if items.get("type") == "object":
            missing += _untitled(items, f"{here}[]")
        for choice in items.get("oneOf") or []:
            if not CHINESE.search(choice.get("title") or ""):
                missing.append(f"{here}[]={choice.get('const')}")
        for choice in sub.get("oneOf") or []:
            if not CHINESE.search(choice.get("title") or ""):
                missing.append(f"{here}={choice.get('const')}")
    return missing


@pytest.mark.parametrize("path", FORMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_forms_are_valid_json_schema_with_chinese_titles(path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert schema.get("type") == "object" and CHINESE.search(schema.get("title") or ""), (
        f"{path.name}: form title"
    )
    assert _untitled(schema, "") == [], f"{path.name}: fields without a Chinese title"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_instructions_are_valid_jinja(path):
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment()
    for text in _xml(path).iter(f"{{{SPIFF_NS}}}instructionsForEndUser"):
        try:
            env.from_string(text.text or "")
        except TemplateSyntaxError as exc:
            pytest.fail(f"{path.name}: instructions of {text.getparent().getparent().get('id')}: {exc}")
