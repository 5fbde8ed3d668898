"""A live process instance of one case, and the plain data callers see of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from .errors import EngineError, ScriptError
from .sandbox import SandboxError, ScriptTimeout, ScriptTooLarge
from .scripting import CONNECTOR_CALLS
from .state import StateSerializer


@dataclass
class LoadedSpec:
    """A deployed version's restored spec, with the engine parts that run and store its instances."""

    spec: Any
    subprocess_specs: dict[str, Any]
    script_engine: Any
    serializer: StateSerializer


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
class FiredTimer:
    """A timer event that fired during a move (as the clock passed it, or already due when reached)."""

    element: str
    due_at: datetime | None


@dataclass
class Pending:
    """Something the instance waits for: a timer (with its due time) or a named message/signal."""

    kind: str  # "timer", "message" or "signal"
    name: str
    due_at: datetime | None = None


def _spiff_call(element: str | None, fn, *args, **kwargs):
    """Run an engine call, turning SpiffWorkflow's and the sandbox's errors into ours with the element named."""
    try:
        return fn(*args, **kwargs)
    except ScriptError:
        raise
    except SandboxError as exc:
        raise ScriptError(element, exc.message, over_limit=_over_limit(exc)) from exc
    except SpiffWorkflowException as exc:
        cause = exc.__cause__ or exc.__context__
        task_spec = getattr(getattr(exc, "task", None), "task_spec", None)
        where = getattr(task_spec, "bpmn_id", None) or element
        if isinstance(cause, ScriptError):
            raise ScriptError(where, cause.message, over_limit=cause.over_limit) from exc
        if isinstance(cause, SandboxError):
            raise ScriptError(where, cause.message, over_limit=_over_limit(cause)) from exc
        if isinstance(
            cause, NameError | TypeError | KeyError | AttributeError | ZeroDivisionError | ValueError
        ):
            raise ScriptError(where, f"{type(cause).__name__}: {cause}") from exc
        raise ScriptError(where, getattr(exc, "error_msg", None) or str(exc)) from exc


def _over_limit(error: SandboxError) -> bool:
    return isinstance(error, ScriptTimeout | ScriptTooLarge)


class Instance:
    """A live process instance of one case."""

    def __init__(self, workflow: BpmnWorkflow, serializer: StateSerializer):
        self._wf = workflow
        self._serializer = serializer
        # What the instance looks like now, computed once after each move (the hot path asks repeatedly).
        self._steps: list[HumanStep] | None = None  # READY human tasks
        self._completed: bool | None = None
        self._fired: list[FiredTimer] = []  # timers fired since `take_fired_timers` was last asked

    # -- creating and restoring

    @classmethod
    def start(cls, loaded: LoadedSpec, data: Mapping[str, Any] | None = None) -> Instance:
        """Create an instance and run it to its first wait state."""
        wf = BpmnWorkflow(loaded.spec, loaded.subprocess_specs, script_engine=loaded.script_engine)
        if data:
            wf.task_tree.data.update(data)
            for task in wf.get_tasks(state=TaskState.READY):
                task.data.update(data)
        instance = cls(wf, loaded.serializer)
        instance.run()
        return instance

    @classmethod
    def restore(cls, loaded: LoadedSpec, state: str) -> Instance:
        """Rebuild an instance from its stored state (a state in an older format is upgraded)."""
        wf = loaded.serializer.load_workflow(state, loaded.spec, loaded.subprocess_specs)
        wf.script_engine = loaded.script_engine
        return cls(wf, loaded.serializer)

    def dump(self) -> str:
        return self._serializer.dump_workflow(self._wf)

    # -- running

    def run(self) -> None:
        """Run engine steps (scripts, gateways, decisions, due timers) to the next wait state."""
        with self._move():
            self._run()

    def _run(self) -> None:
        self._forget()
        _spiff_call(None, self._wf.do_engine_steps, did_complete_task=self._note_timer)
        self._check_depth()
        self._check_storable()

    def _move(self):
        """One move of the instance: all the diagram code it runs shares one time budget."""
        return self._wf.script_engine.sandbox.step()

    def _check_storable(self) -> None:
        # Scripts are checked as they run; DMN results and message payloads reach the data without a
        # script: whatever the move left must be storable case data, or the move fails, naming it.
        problems = self._wf.script_engine.sandbox.check_storable(self.data)
        if problems:
            raise ScriptError(None, "流程数据中有无法保存的值：" + "；".join(str(p) for p in problems[:5]))

    def _note_timer(self, task) -> None:
        # A timer event runs like any engine task once it is due: on the worker's round, or at once when
        # the case reaches one already due (a start after the date, a step done late).
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, TimerEventDefinition):
            due = _due(definition.details(task).value)
            self._fired.append(FiredTimer(task.task_spec.bpmn_id or task.task_spec.name, due))

    def take_fired_timers(self) -> list[FiredTimer]:
        """The timers fired since the last call, in the order they fired."""
        fired, self._fired = self._fired, []
        return fired

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
        with self._move():
            _spiff_call(element, task.run)
            self._run()

    def fire_due_timers(self) -> bool:
        """Fire timers that are due by the clock; return whether anything moved."""
        before = self._fingerprint()
        self._forget()
        with self._move():
            _spiff_call(None, self._wf.refresh_timers)
            self._run()
        return self._fingerprint() != before

    def deliver(self, name: str, payload: Mapping[str, Any] | None = None, *, signal: bool = False) -> bool:
        """Deliver a named message (or signal) with a payload; return False if nothing here waits for it."""
        if name not in {p.name for p in self.pending() if p.kind in ("message", "signal")}:
            return False
        definition = SignalEventDefinition(name) if signal else MessageEventDefinition(name)
        event = BpmnEvent(definition, payload=dict(payload or {}))
        self._forget()
        with self._move():
            _spiff_call(None, self._wf.catch, event)
            self._run()
        return True

    def reschedule_timer(self, element_id: str, when: str, data: Mapping[str, Any] | None = None) -> bool:
        """Move a waiting date timer (a boundary or intermediate event) to `when` (ISO 8601), and put `data`
        into the open steps (so what they show agrees); return whether such a timer was waiting.

        The engine evaluates a timer's date once, when the wait begins: a deadline counted anew (the
        working-day calendar changed) reaches the timer only this way."""
        waiting = [
            t
            for t in self._wf.get_tasks(state=TaskState.WAITING)
            if getattr(t.task_spec, "bpmn_id", None) == element_id
            and "TimeDate" in type(getattr(t.task_spec, "event_definition", None)).__name__
        ]
        for task in waiting:
            task._set_internal_data(event_value=when)
            task.internal_data.pop("event_fired", None)
        if waiting and data:
            for task in [*waiting, *self._wf.get_tasks(state=TaskState.READY)]:
                task.data.update(data)
        self._forget()
        return bool(waiting)

    def take_outgoing(self) -> list[Outgoing]:
        """Messages thrown since the last call (throw events, message end events), oldest first, then the
        connectors service tasks called (as `connector:<operation>`)."""
        thrown = [
            Outgoing(event.event_definition.name, event.payload)
            for event in self._wf.get_events()
            if isinstance(event.event_definition, MessageEventDefinition | SignalEventDefinition)
            or "Message" in type(event.event_definition).__name__
        ]
        calls = self._wf.__dict__.pop(CONNECTOR_CALLS, [])
        return thrown + [Outgoing(f"connector:{operation}", params) for operation, params in calls]

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
