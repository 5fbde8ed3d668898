"""The one front end to SpiffWorkflow: parse and check process bundles, run instances, store their state.

Nothing else in the project imports SpiffWorkflow. Callers build one `Engine` (the process registry does,
with the helpers the processes offer to scripts) and then see plain data (`ParsedProcess`, `HumanStep`,
`Pending`) and one live object per case (`Instance`), never a SpiffWorkflow class.

- `sandbox`: the restricted runtime every script, condition and DMN expression runs in;
- `state`: specs and case states as stored text, versioned with upgrades;
- `bundles`: parsing and checking BPMN, DMN and forms before anything is stored;
- `instance`: a live instance and what it waits for.

Measured on SpiffWorkflow 3.2 (see shared notes): a spec is serialized once per deployed version and
restored once per process (callers cache it); a case's state is serialized without the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from .. import clock
from .bundles import (
    ParsedProcess,
    StepInfo,
    as_text,
    content_hash,
    inspect_bundle,
    main_processes,
    parse_bundle,
)
from .errors import DeployError, EngineError, Problem, ScriptError
from .instance import MAX_TASK_DEPTH, FiredTimer, HumanStep, Instance, LoadedSpec, Outgoing, Pending
from .moves import MovePlan, move, plan_move
from .sandbox import Limits
from .scripting import check_script, make_script_engine
from .state import StateSerializer, data_json


class _ClockedDatetime(datetime):
    """SpiffWorkflow's timers read `datetime.now(timezone.utc)`; this answers from `workflows.clock`."""

    @classmethod
    def now(cls, tz=None):
        current = clock.now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


class Engine:
    """SpiffWorkflow wired once: the restricted script runtime with the offered helpers, the parser and
    the serializer. Built by the process registry; nothing here is configured by importing a module."""

    def __init__(
        self,
        helpers: Mapping[str, Callable] | None = None,
        provided_data: Iterable[str] = (),
        limits: Limits | None = None,
    ):
        self.script_engine = make_script_engine(helpers, limits)
        self.sandbox = self.script_engine.sandbox
        # Data the system gives cases when it starts them: a diagram reading them is not suspected.
        self.provided_data = frozenset(provided_data)
        self.serializer = StateSerializer()
        # Timers ask SpiffWorkflow's timer module for the time: point it at our injectable clock.
        _spiff_timer.datetime = _ClockedDatetime

    @property
    def helpers(self) -> dict[str, Any]:
        """The names scripts may call, with the functions behind them."""
        return dict(self.sandbox.helpers)

    def parse_bundle(
        self, files: Mapping[str, str | bytes], extra_forms: Mapping[str, list[str]] | None = None
    ) -> list[ParsedProcess]:
        """Parse and check a bundle; raise DeployError listing every problem. `extra_forms` names, per
        process, form files its code uses that no step names: they must be there and are stored with it."""
        return parse_bundle(
            files, self.serializer, extra_forms or {}, helpers=self.sandbox.helpers, known=self.provided_data
        )

    def inspect_bundle(
        self, files: Mapping[str, str | bytes], extra_forms: Mapping[str, list[str]] | None = None
    ) -> tuple[list[ParsedProcess], list[Problem]]:
        """Every problem of a bundle, without refusing it (for validating as one edits); its processes
        when it has no errors."""
        return inspect_bundle(
            files, self.serializer, extra_forms or {}, helpers=self.sandbox.helpers, known=self.provided_data
        )

    def load_spec(self, spec_json: str) -> LoadedSpec:
        """Restore a stored spec (callers cache it: a deployed spec never changes)."""
        spec, subprocess_specs = self.serializer.load_spec(spec_json)
        return LoadedSpec(spec, subprocess_specs, self.script_engine, self.serializer)

    def evaluate_decision(
        self, files: Mapping[str, str | bytes], decision_id: str, context: Mapping[str, Any]
    ) -> dict:
        """Evaluate one DMN decision table against a context (for rules tested outside a process)."""
        parser = SpiffBpmnParser()
        for name, content in files.items():
            parser.add_dmn_xml(etree.fromstring(as_text(content).encode("utf-8")), filename=name)
        dmn_engine = parser.get_engine(decision_id, None)
        script_engine = self.script_engine

        class _Task:  # the DMN engine only reads `data` and `workflow.script_engine` from a task
            def __init__(self, data):
                self.data = dict(data)
                self.workflow = type("W", (), {"script_engine": script_engine})()

        return dmn_engine.result(_Task(context))


__all__ = [
    "MAX_TASK_DEPTH",
    "DeployError",
    "Engine",
    "EngineError",
    "FiredTimer",
    "HumanStep",
    "Instance",
    "LoadedSpec",
    "MovePlan",
    "Outgoing",
    "ParsedProcess",
    "Pending",
    "Problem",
    "ScriptError",
    "StepInfo",
    "WorkflowException",
    "main_processes",
    "check_script",
    "content_hash",
    "move",
    "plan_move",
    "data_json",
]
