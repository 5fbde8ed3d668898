"""The process registry: what each process plugs into, declared once, read by the generic core.

A process is a BPMN diagram (bpmn/<folder>/) plus, where it needs more than the diagram says, Python code
in its own package under `workflows/processes/`. The package declares everything it hooks to in one
`Process` object: who may start it and with which form, the checks of its steps, what the system does
with the messages its diagram throws, the helpers its scripts may call, the choices of its forms that
only the system knows, its periodic jobs, its demo cases and what an elder leaving the register does to
its cases. `workflows.processes` lists the processes explicitly and installs the registry.

The core (cases, tasks, inbox, access, audit, versions, ...) never imports a process: it asks here.
Because each process says what its code relies on, a new version of a diagram that drops a task id, a
message or a helper the code needs can be refused before it is deployed (`Registry.expectations`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .engine import Engine
from .models import Role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .models import Case, Elder, User

# A step check: (session, actor, task, case, data) -> None, raising ValidationFailed.
Check = Callable[..., None]
# A message handler: (session, case, payload, actor) -> anything; runs in the step's transaction.
Handler = Callable[..., object]
# A refusal: payload -> (message, {field: message}); the submission that threw it is refused.
Refusal = Callable[[Mapping], tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Starter:
    """How people start the process for an elder: the use case, and the application form it takes."""

    title: str  # the form's heading on the start page
    roles: frozenset[Role]
    start: Callable[[Session, User, Elder, dict], Case]
    form: str | None = None  # a form file of the process folder, deployed with each version
    fill: Callable[[Session, User, dict], dict] | None = None  # choices only the system knows
    instructions: str | None = None
    check: Callable[[dict], dict[str, str]] | None = None  # the use case's own field checks


@dataclass(frozen=True)
class Choices:
    """The valid values of one form field for one case, as (value, label), and the field's title as a list.
    `widget` "radio" shows them all at once (long labels read better so than in a drop-down)."""

    options: Callable[[Session, Case], list[tuple[object, str]]]
    title: str | None = None
    widget: str | None = None


@dataclass(frozen=True)
class Job:
    """Background work of a process: `run(session) -> how much it did`, one batch per call."""

    name: str
    run: Callable[[Session], int]
    order: int = 50


@dataclass(frozen=True)
class Process:
    """Everything a process plugs into. Only `key` and `name` are required: a process that is only a
    diagram (a county's own, or a model from another tool) runs with the generic behaviour."""

    key: str  # the BPMN process id
    name: str
    folder: str | None = None  # its folder under bpmn/ (diagram, DMN tables, forms)
    starter: Starter | None = None
    system_started: bool = False  # opened by a job from an enrolment, never by hand
    step_checks: Mapping[str, tuple[Check, ...]] = field(default_factory=dict)  # task id -> checks
    messages: Mapping[str, Handler] = field(default_factory=dict)  # thrown message -> handler
    refusals: Mapping[str, Refusal] = field(default_factory=dict)  # thrown message -> refusal
    waits_for: tuple[str, ...] = ()  # messages its code delivers to its cases
    helpers: Mapping[str, Callable] = field(default_factory=dict)  # offered to its scripts
    provides: tuple[str, ...] = ()  # data its code gives a case when starting it (its diagram may read them)
    # task id -> field (a dotted path into nested groups, e.g. "self_care.eating") -> its choices
    choices: Mapping[str, Mapping[str, Choices]] = field(default_factory=dict)
    jobs: tuple[Job, ...] = ()
    demo: Callable[..., dict[str, int]] | None = None  # (session, users, elders) -> counts
    leaving: Mapping[str, str] = field(default_factory=dict)  # elder status -> message its cases wait for
    # Titles (a partial JSON Schema) for case data no form of the process writes: (session, data) -> schema.
    data_labels: Callable[[Session, Mapping], dict] | None = None
    listed_as: str = "cases"  # the elder page lists its cases under "cases" or "visits"
    # Notices of its own (kind -> builder of what they say: (session, case, payload, step) -> facts).
    notices: Mapping[str, Callable] = field(default_factory=dict)
    # Deadlines of its own counted in working days (beyond its tasks' due dates), counted again when the
    # working-day calendar changes: (session, calendars.CalendarChange) -> what moved (calendars.Moved).
    calendar_change: Callable[[Session, Any], list] | None = None
    # Why a case of this process cannot start for an elder now (one is already under way), or None. The
    # core asks it whenever it starts such a case, holding a database lock on (process, elder) until the
    # transaction ends, so two simultaneous starts never both pass it: (session, elder_id) -> str | None.
    already_running: Callable[[Session, int], str | None] | None = None


@dataclass(frozen=True)
class Expectation:
    """Something a process's code relies on in its diagram (for checking a new version before deploying)."""

    kind: str  # "task", "message" (thrown, handled here), "waits" (delivered by the code), "form"
    name: str
    why: str  # what relies on it, in Chinese
    required: bool = True  # a missing optional hook only loses a convenience (a warning)


class Registry:
    """The processes, and the engine wired with the helpers they offer."""

    def __init__(
        self,
        processes: Iterable[Process],
        *,
        connectors: Mapping[str, Handler] | None = None,
        messages: Mapping[str, Handler] | None = None,
    ):
        self._processes: dict[str, Process] = {}
        self._handlers: dict[str, Handler] = {}
        self._refusals: dict[str, Refusal] = {}
        # What the system does when a service task calls one of its operations (`engine.sandbox.CONNECTORS`).
        for operation, handler in (connectors or {}).items():
            self._handlers[f"connector:{operation}"] = handler
        # Messages any process's diagram may throw that the system itself handles (e.g. `issue_notice`).
        self._handlers.update(messages or {})
        self._notice_builders: dict[str, Callable] = {}
        helpers: dict[str, Callable] = {}
        provided: set[str] = set()
        for process in processes:
            provided.update(process.provides)
            if process.key in self._processes:
                raise ValueError(f"process {process.key!r} declared twice")
            self._processes[process.key] = process
            for name, handler in process.messages.items():
                _add_once(self._handlers, name, handler, "message handler")
            for name, refusal in process.refusals.items():
                _add_once(self._refusals, name, refusal, "refusal")
            for name, helper in process.helpers.items():
                _add_once(helpers, name, helper, "script helper")
            for kind, builder in process.notices.items():
                _add_once(self._notice_builders, kind, builder, "notice")
        # One engine for all: a call activity runs the called process's scripts in its caller's instance.
        self.engine = Engine(helpers, provided_data=provided)

    # -- reading the declarations

    def get(self, key: str) -> Process | None:
        return self._processes.get(key)

    def __iter__(self):
        return iter(self._processes.values())

    def handler_for(self, message: str) -> Handler | None:
        return self._handlers.get(message)

    def notice_builder(self, kind: str) -> Callable | None:
        return self._notice_builders.get(kind)

    def refusal_for(self, message: str) -> Refusal | None:
        return self._refusals.get(message)

    def checks_for(self, process_key: str, task_spec: str) -> tuple[Check, ...]:
        process = self._processes.get(process_key)
        return tuple(process.step_checks.get(task_spec, ())) if process else ()

    def choices_for(self, process_key: str, task_spec: str) -> Mapping[str, Choices]:
        process = self._processes.get(process_key)
        return process.choices.get(task_spec, {}) if process else {}

    def starter_for(self, key: str) -> Starter | None:
        process = self._processes.get(key)
        return process.starter if process else None

    def already_running(self, key: str) -> Callable[[Session, int], str | None] | None:
        process = self._processes.get(key)
        return process.already_running if process else None

    def system_started(self, key: str) -> bool:
        process = self._processes.get(key)
        return bool(process and process.system_started)

    def data_labels(self, session: Session, data: Mapping) -> list[dict]:
        """Every process's labels for case data (a case holds the data of the processes it calls too)."""
        return [label for p in self if p.data_labels and (label := p.data_labels(session, data))]

    def jobs(self) -> list[Job]:
        return sorted((job for p in self for job in p.jobs), key=lambda job: job.order)

    def leaving_messages(self, status: str) -> list[str]:
        """The messages an elder's running cases wait for when the elder leaves the register so."""
        names: list[str] = []
        for process in self:
            name = process.leaving.get(status)
            if name and name not in names:
                names.append(name)
        return names

    def expectations(self, key: str) -> list[Expectation]:
        """What the code of a process relies on finding in its diagram."""
        process = self._processes.get(key)
        if process is None:
            return []
        found = [Expectation("task", task, "步骤校验") for task in process.step_checks]
        found += [Expectation("task", task, "表单选项", required=False) for task in process.choices]
        found += [Expectation("message", name, "系统处理该消息") for name in process.messages]
        found += [Expectation("message", name, "系统据此退回提交") for name in process.refusals]
        found += [Expectation("waits", name, "系统会发送该消息") for name in process.waits_for]
        found += [Expectation("waits", name, "老人档案变更时发送") for name in process.leaving.values()]
        if process.starter and process.starter.form:
            found.append(Expectation("form", process.starter.form, "申请表"))
        return found


def _add_once(into: dict[str, Any], name: str, value, what: str) -> None:
    if name in into and into[name] is not value:
        raise ValueError(f"two processes declare the {what} {name!r}")
    into[name] = value


# --------------------------------------------------------------------------------------------------
# The registry in use: installed once at start-up by `workflows.processes.install()`.

_current: Registry | None = None


def install(registry: Registry) -> Registry:
    global _current
    _current = registry
    return registry


def current() -> Registry:
    """The installed registry (the app, the command line and the tests install it at start-up)."""
    if _current is None:
        raise RuntimeError("no process registry installed: call workflows.processes.install() at start-up")
    return _current


def engine() -> Engine:
    return current().engine
