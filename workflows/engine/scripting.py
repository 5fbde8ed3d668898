"""SpiffWorkflow's script engine, running every script, condition, DMN expression and timer expression of
a diagram in the sandbox (`engine.sandbox`: restricted code, time and memory limits, storable results), and
calling the system's own operations for service tasks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

from .errors import ScriptError
from .sandbox import Limits, Sandbox, check_source

# Operations a service task may call: the system's own, done in the step's transaction after the engine
# has moved (a service task only records the call; see Instance.take_outgoing).
CONNECTORS = {"send_sms": "发送短信（经短信发件箱）"}
CONNECTOR_CALLS = "_eldercare_connector_calls"


def check_script(source: str, mode: str = "exec") -> str | None:
    """Why `source` may not run in a diagram (in Chinese), or None when it is acceptable."""
    return check_source(source, mode)


class ScriptEngine(PythonScriptEngine):
    """The script engine of every instance: the sandbox as its environment, our connectors as services."""

    def __init__(self, sandbox: Sandbox):
        super().__init__(environment=sandbox)
        self.sandbox = sandbox

    def call_service(self, task, operation_name=None, operation_params=None, **kwargs):
        """Record a service task's call of one of our connectors; its result is that it was taken."""
        if operation_name not in CONNECTORS:
            raise ScriptError(
                getattr(task.task_spec, "bpmn_id", None), f"服务任务调用了不支持的操作“{operation_name}”"
            )
        params = {name: item.get("value") for name, item in (operation_params or {}).items()}
        task.workflow.top_workflow.__dict__.setdefault(CONNECTOR_CALLS, []).append((operation_name, params))
        return '{"accepted": true}'


def make_script_engine(helpers: Mapping[str, Callable] | None, limits: Limits | None = None) -> ScriptEngine:
    """The sandbox offering `helpers` (besides Decimal, date, datetime and timedelta), wired for SpiffWorkflow."""
    return ScriptEngine(Sandbox(limits=limits, helpers=helpers))
