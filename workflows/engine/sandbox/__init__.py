"""Diagram code under limits: the restricted evaluator for scripts, conditions, DMN and timer expressions.

    sandbox = Sandbox()                                  # limits from ELDERCARE_SCRIPT_* (see Limits)
    engine = PythonScriptEngine(environment=sandbox)     # SpiffWorkflow's, in workflows.engine
    with sandbox.step():                                 # one engine move shares a time budget
        workflow.do_engine_steps()
    problems = check_storable(task_data)                 # before storing anything else a move produced

Every failure is a `SandboxError` (Chinese `message`, `element` once `located()`): `ScriptRefused` (not
allowed, also what `check_source` reports at deploy), `ScriptFailed` (raised an error), `ScriptTimeout`,
`ScriptTooLarge` (a value or memory beyond the limits), `UnstorableValue` (cannot be case data).
"""

from .environment import Sandbox, Step, StepBudget
from .errors import (
    SandboxError,
    ScriptFailed,
    ScriptRefused,
    ScriptTimeout,
    ScriptTooLarge,
    UnstorableValue,
)
from .limits import Limits
from .policy import check_source
from .storable import StorageProblem, check_storable
from .watchdog import watchdog

__all__ = [
    "Limits",
    "Sandbox",
    "SandboxError",
    "ScriptFailed",
    "ScriptRefused",
    "ScriptTimeout",
    "ScriptTooLarge",
    "Step",
    "StepBudget",
    "StorageProblem",
    "UnstorableValue",
    "check_source",
    "check_storable",
    "watchdog",
]
