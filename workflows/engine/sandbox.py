"""The restricted runtime for code in diagrams: scripts, pre/post scripts, conditions, DMN expressions.

Everything a diagram evaluates is compiled by RestrictedPython and runs with a small allow-list of
builtins and the helpers the processes offer (each a tested function). A diagram that imports a module or
reaches for dunder attributes is refused when it is deployed, and again if it ever reaches the runtime.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from .errors import ScriptError

_INPLACE = {
    "+=": lambda a, b: a + b,
    "-=": lambda a, b: a - b,
    "*=": lambda a, b: a * b,
    "/=": lambda a, b: a / b,
    "//=": lambda a, b: a // b,
    "%=": lambda a, b: a % b,
}


def _inplace(op: str, x, y):
    if op not in _INPLACE:
        raise ScriptError(None, f"不支持的运算 {op}")
    return _INPLACE[op](x, y)


_SAFE_BUILTINS = dict(safe_builtins)
_SAFE_BUILTINS.update(
    {
        name: getattr(builtins, name)
        for name in ("list", "dict", "set", "sum", "min", "max", "any", "all", "enumerate", "map", "filter")
    }
)

# Offered to every diagram, whatever its process declares.
BASIC_HELPERS: dict[str, Any] = {
    "Decimal": Decimal,
    "date": date,
    "datetime": datetime,
    "timedelta": timedelta,
}

_FORBIDDEN_CALLS = ("open", "exec", "eval", "compile", "globals", "locals")


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
        if isinstance(node, ast.Name) and node.id in _FORBIDDEN_CALLS:
            return f"脚本不允许调用 {node.id}"
    result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
    if result.errors:
        return "受限执行环境拒绝此脚本：" + "；".join(result.errors)
    return None


# Compiled code per (mode, source): a pure function of the text, shared by every engine.
_code_cache: dict[tuple[str, str], Any] = {}


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


class RestrictedEnvironment(TaskDataEnvironment):
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


# Operations a service task may call: the system's own, done in the step's transaction after the engine
# has moved (a service task only records the call; see Instance.take_outgoing).
CONNECTORS = {"send_sms": "发送短信（经短信发件箱）"}
CONNECTOR_CALLS = "_eldercare_connector_calls"


class _ScriptEngine(PythonScriptEngine):
    def call_service(self, task, operation_name=None, operation_params=None, **kwargs):
        """Record a service task's call of one of our connectors; its result is that it was taken."""
        if operation_name not in CONNECTORS:
            raise ScriptError(
                getattr(task.task_spec, "bpmn_id", None), f"服务任务调用了不支持的操作“{operation_name}”"
            )
        params = {name: item.get("value") for name, item in (operation_params or {}).items()}
        task.workflow.top_workflow.__dict__.setdefault(CONNECTOR_CALLS, []).append((operation_name, params))
        return '{"accepted": true}'


class Sandbox:
    """The restricted runtime with a fixed set of helpers, and the SpiffWorkflow script engine using it."""

    def __init__(self, helpers: Mapping[str, Callable] | None = None):
        self.helpers = {**BASIC_HELPERS, **(helpers or {})}
        self.environment = RestrictedEnvironment(
            {
                "__builtins__": _SAFE_BUILTINS,
                "_getattr_": safer_getattr,
                "_getitem_": default_guarded_getitem,
                "_getiter_": default_guarded_getiter,
                "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
                "_unpack_sequence_": guarded_unpack_sequence,
                "_write_": full_write_guard,
                "_inplacevar_": _inplace,
                **self.helpers,
            }
        )
        self.script_engine = _ScriptEngine(environment=self.environment)
