"""Stored forms of specs and case states: SpiffWorkflow's serializer, configured and made fast.

A process spec is serialized once per deployed version; a case's state is serialized *without* the spec
(which would otherwise be most of every write) on every step, so the task converter here is written for
speed and held to SpiffWorkflow's own output by `tests/unit/engine/test_state_format.py`.

Stored states carry a format number. Reading a state in an older format upgrades it (`UPGRADES`) instead
of refusing it; `tests/unit/engine/fixtures/` keeps states written in every earlier format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnSubWorkflowConverter, BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_SERIALIZER_VERSION
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .errors import EngineError

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


def make_registry(fast: bool = True):
    """SpiffWorkflow's converter registry with our spec-less workflow converters and amount/date types."""
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


def dumps(obj) -> str:
    """JSON text of stored data (orjson: a case's state is written on every step)."""
    return orjson.dumps(obj, default=_encode_default).decode("utf-8")


def _encode_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot store {type(value).__name__} in case data")


def data_json(data: Mapping[str, Any]) -> str:
    """Case data as JSON text for display (dates as ISO strings, amounts as strings)."""
    return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


# --------------------------------------------------------------------------------------------------
# Case state formats. Format 1 (until 2026-12) carried no serializer version; format 2 records the
# version of SpiffWorkflow's serializer that wrote the tasks, so that a SpiffWorkflow upgrade can run its
# own migrations on states written before it.

STATE_FORMAT = 2
SPEC_FORMAT = 1


def _from_format_1(dct: dict) -> dict:
    # Every format-1 state was written by SpiffWorkflow 3.2.0, whose serializer is version 1.5.
    dct["serializer_version"] = "1.5"
    return dct


UPGRADES: dict[int, Callable[[dict], dict]] = {1: _from_format_1}


def upgrade_state(dct: dict) -> dict:
    """Bring a stored state dict to the current format (ours, then SpiffWorkflow's serializer's)."""
    found = dct.pop("format", 1)
    if not isinstance(found, int) or found > STATE_FORMAT:
        raise EngineError(f"案件状态的存储格式 {found!r} 不是本系统能读取的格式（当前为 {STATE_FORMAT}）")
    for number in range(found, STATE_FORMAT):
        dct = UPGRADES[number](dct)
    version = dct.pop("serializer_version", SPIFF_SERIALIZER_VERSION)
    if version != SPIFF_SERIALIZER_VERSION:
        # SpiffWorkflow's own migrations rewrite a whole serialization, spec included: a SpiffWorkflow
        # upgrade that changes its format needs an upgrade here that re-reads the version's spec with it.
        raise EngineError(
            f"案件状态由 SpiffWorkflow 序列化格式 {version} 写入，当前为 {SPIFF_SERIALIZER_VERSION}，需先升级存储格式"
        )
    return dct


class StateSerializer:
    """Turns specs and workflows into stored text and back."""

    def __init__(self):
        self.registry = make_registry()

    def dump_spec(self, spec, subprocess_specs: Mapping) -> str:
        return dumps(
            {
                "format": SPEC_FORMAT,
                "spec": self.registry.convert(spec),
                "subprocess_specs": {k: self.registry.convert(v) for k, v in subprocess_specs.items()},
            }
        )

    def load_spec(self, text: str) -> tuple[Any, dict[str, Any]]:
        dct = json.loads(text)
        return (
            self.registry.restore(dct["spec"]),
            {k: self.registry.restore(v) for k, v in dct["subprocess_specs"].items()},
        )

    def dump_workflow(self, workflow) -> str:
        dct = self.registry.convert(workflow)
        dct["format"] = STATE_FORMAT
        dct["serializer_version"] = SPIFF_SERIALIZER_VERSION
        return dumps(dct)

    def load_workflow(self, text: str, spec, subprocess_specs):
        dct = upgrade_state(json.loads(text))
        return self.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
