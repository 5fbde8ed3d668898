"""The evaluator SpiffWorkflow's script engine runs diagram code through: `PythonScriptEngine(environment=Sandbox())`.

It has the interface of SpiffWorkflow's `TaskDataEnvironment` (`evaluate`, `execute`, `call_service`,
`globals`) without importing SpiffWorkflow, and the same data semantics: expressions see helpers, then the
external context (data objects, DMN's `dmninputexpr`), then the task data; a script's new and changed
variables become task data, callables and helper names never do.

On top of that:
- every evaluation runs under the watchdog (`Limits.seconds`), and within `Sandbox.step()` under a budget
  shared by the whole engine move (`Limits.step_seconds`); the evaluating thread itself is stopped;
- a script's changes reach the task data only when it finishes and they can be stored (`check_storable`
  over the whole data, so in-place changes of existing lists count too): a failed or stopped script leaves
  the task's variables as they were (nested lists it mutated in place excepted: the engine discards the
  instance of a failed step anyway);
- every failure is a `SandboxError` with a Chinese message (`located(element)` adds the element id).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from time import monotonic
from typing import Any

from .errors import SandboxError, ScriptFailed, ScriptRefused, ScriptTimeout, ScriptTooLarge, UnstorableValue
from .guards import SCALARS, Guards
from .helpers import standard_helpers
from .limits import MB, Limits
from .policy import compile_source
from .storable import StorageProblem, check_storable
from .watchdog import MemoryUp, TimeUp, watchdog


class StepBudget:
    """Seconds of diagram code left in the current engine move."""

    __slots__ = ("total", "remaining")

    def __init__(self, seconds: float):
        self.total = seconds
        self.remaining = seconds


_budget: ContextVar[StepBudget | None] = ContextVar("sandbox_step_budget", default=None)


class Step:
    """`with sandbox.step():` one engine move; its evaluations draw on one StepBudget."""

    __slots__ = ("budget", "_token")

    def __init__(self, seconds: float):
        self.budget = StepBudget(seconds)

    def __enter__(self) -> StepBudget:
        self._token = _budget.set(self.budget)
        return self.budget

    def __exit__(self, *exc) -> None:
        _budget.reset(self._token)


class _Helpers(dict):
    """The helpers offered to diagram code, mirrored into the sandbox's builtins (where scripts find them)."""

    def __init__(self, builtins: dict, reserved: frozenset[str]):
        super().__init__()
        self._builtins = builtins
        self._reserved = reserved

    def __setitem__(self, name: str, function: Any) -> None:
        # A helper named like a guarded builtin (`sorted`, `str`) would replace the guard.
        if name.startswith("_") or name in self._reserved:
            raise ValueError(f"a diagram helper may not be named {name!r}: the name is reserved")
        super().__setitem__(name, function)
        self._builtins[name] = function

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._builtins.pop(name, None)

    def update(self, *args, **kwargs) -> None:
        for name, function in dict(*args, **kwargs).items():
            self[name] = function


class Sandbox:
    """Runs diagram code under `limits`, offering the standard helpers and `helpers` (name -> function)."""

    def __init__(self, limits: Limits | None = None, helpers: Mapping[str, Any] | None = None):
        self.limits = limits or Limits.from_env()
        self.guards = Guards(self.limits)
        # Helpers and guards are served from the builtins, so a scope is the task data and one more key:
        # cheap to build, and cheap to compare with the task data after a script. Task data still shadows
        # a helper of the same name, as SpiffWorkflow's environment lets it; a guard it never shadows
        # (variables named like guards are left out of the scope: scripts cannot name them anyway).
        self._builtins = {**self.guards.builtins, **self.guards.hooks}
        self.helpers = _Helpers(self._builtins, frozenset(self._builtins))
        self.helpers.update(standard_helpers())
        self.helpers.update(helpers or {})
        self._guard_names = frozenset(self.guards.hooks) | {"__builtins__"}
        self._code: dict[tuple[str, str], Any] = {}
        # TaskDataEnvironment's attribute: a helper added here (as `engine.register_script_helper` does
        # today) is offered like one added with `register`.
        self.globals = self.helpers

    def register(self, name: str, function: Callable) -> None:
        """Offer a tested helper to diagram code under `name`."""
        self.helpers[name] = function

    # -- SpiffWorkflow's environment interface

    def evaluate(
        self, expression: str, context: Mapping[str, Any], external_context: Mapping | None = None
    ) -> Any:
        """Evaluate a condition or expression against task data; return its value."""
        code = self._compiled(expression.strip() if isinstance(expression, str) else expression, "eval")
        if external_context:
            scope = dict(external_context)
            scope.update(context)
        else:
            scope = dict(context)
        if not self._guard_names.isdisjoint(scope):
            for name in self._guard_names.intersection(scope):
                del scope[name]
        scope["__builtins__"] = self._builtins
        return self._run(lambda: eval(code, scope))  # noqa: S307 - restricted, guarded code only

    def execute(self, script: str, context: dict, external_context: Mapping | None = None) -> bool:
        """Run a script against task data; its storable changes are written back when it finishes."""
        code = self._compiled(script, "exec")
        external = external_context or {}
        if not self.helpers.keys().isdisjoint(context) or (
            external and not external.keys().isdisjoint(context)
        ):
            clash = sorted(k for k in context if k in self.helpers or k in external)
            raise ScriptFailed(
                f"案件数据中的变量 {'、'.join(map(str, clash))} 与流程可调用的函数同名，请给这些字段换一个名称"
            )
        if external:
            scope = dict(external)
            scope.update(context)
        else:
            scope = dict(context)
        hidden = self._guard_names.intersection(scope) if not self._guard_names.isdisjoint(scope) else ()
        for name in hidden:
            del scope[name]
        scope["__builtins__"] = self._builtins
        self._run(lambda: exec(code, scope))  # noqa: S102 - restricted, guarded code only
        self._write_back(scope, context, external, hidden)
        return True

    def call_service(self, context, **kwargs):
        raise ScriptRefused("流程引擎不支持此服务任务（serviceTask）：没有为它配置可用的服务")

    # -- around an engine move

    def step(self, seconds: float | None = None) -> Step:
        """Share one time budget among all diagram code run inside the `with` block (one engine move)."""
        return Step(self.limits.step_seconds if seconds is None else seconds)

    def run_limited(self, function: Callable[[], Any]) -> Any:
        """Run other diagram-supplied work (an instructions template render) under the same time and memory
        limits. Only the watchdog applies: the work inside C of code not compiled here is not bounded."""
        return self._run(function)

    def check_storable(self, data: Mapping[str, Any]) -> list[StorageProblem]:
        """Why `data` cannot be stored as case data under this sandbox's limits (empty when it can)."""
        return check_storable(data, self.limits)

    # -- inside

    def _compiled(self, source: str, mode: str) -> Any:
        key = (mode, source)
        code = self._code.get(key)
        if code is None:
            try:
                code = compile_source(source, mode, self.limits)
            except ScriptRefused as refused:
                code = refused
            if len(self._code) >= 4096:
                self._code.clear()
            self._code[key] = code
        if type(code) is ScriptRefused:
            raise ScriptRefused(code.message)
        return code

    def _run(self, call: Callable[[], Any]) -> Any:
        if watchdog.watching_current_thread():
            # Nested in an evaluation of this thread: it runs under the outer watch, whose stop must reach
            # the outer evaluation unconverted.
            return call()
        limits = self.limits
        budget = _budget.get()
        started = monotonic()
        seconds = limits.seconds
        by_step = False
        if budget is not None:
            if budget.remaining <= 0:
                raise ScriptTimeout(self._step_message(budget))
            if budget.remaining < seconds:
                seconds, by_step = budget.remaining, True
        watch = watchdog.watch(started + seconds, limits.memory_bytes, started)
        try:
            try:
                try:
                    watch.register()
                    watchdog.started()
                    return call()
                finally:
                    # First, and in one C call: from here on no new stop can be fired at this evaluation;
                    # one already fired lands here or below (and is handled below), or is withdrawn.
                    watch.unregister()
                    watchdog.settle(watch)
            finally:
                if budget is not None:
                    budget.remaining -= monotonic() - started
        except TimeUp:
            if by_step:
                raise ScriptTimeout(self._step_message(budget)) from None
            raise ScriptTimeout(
                f"运行超过 {limits.seconds:g} 秒的时间上限，已被终止（可能是死循环或计算量过大）"
            ) from None
        except MemoryUp:
            raise ScriptTooLarge(
                f"运行中占用的内存增长超过 {limits.memory_bytes / MB:g} MB 的上限，已被终止"
            ) from None
        except SandboxError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of diagram code becomes one Chinese error
            self._defuse(exc)
            raise ScriptFailed(_explain(exc)) from exc

    def _defuse(self, exc: BaseException) -> None:
        """Replace arguments whose text would be huge (`raise ValueError(nested)`): whoever later prints the
        error, its cause or its context (a log, a traceback) would build that text in one C call."""
        seen = 0
        while exc is not None and seen < 10:
            if exc.args and self.guards.measure(exc.args, text=True) > self.limits.max_length:
                exc.args = (f"（{type(exc).__name__} 的参数过大，已省略）",)
            exc = exc.__cause__ or exc.__context__
            seen += 1

    def _step_message(self, budget: StepBudget) -> str:
        return f"本步骤的流程图代码累计运行超过 {budget.total:g} 秒的时间上限，已被终止"

    def _write_back(self, scope: dict, context: dict, external: Mapping, hidden) -> None:
        helpers = self.helpers
        changed = {}
        for key, value in scope.items():
            if context.get(key, _MISSING) is value:
                continue
            if key == "__builtins__" or key in helpers or key in external or callable(value):
                continue  # as SpiffWorkflow: helper names and functions never become task data
            changed[key] = value
        deleted = [key for key in context.keys() - scope.keys() if key not in hidden]
        if deleted:
            gone = set(deleted)
            after = {key: value for key, value in context.items() if key not in gone}
        else:
            after = dict(context)
        after.update(changed)
        problems = check_storable(after, self.limits)
        if problems:
            raise UnstorableValue("；".join(str(p) for p in problems[:5]), problems=problems)
        for key in deleted:
            del context[key]
        context.update(changed)


_MISSING = object()


def _explain(exc: BaseException) -> str:
    """A Chinese sentence for an error raised by diagram code (the detail kept short)."""
    line = _script_line(exc)
    where = f"（第{line}行）" if line and line > 1 else ""
    detail = _short_text(exc)
    if isinstance(exc, NameError):
        name = getattr(exc, "name", None) or detail
        return f"名称 {name} 未定义：既不是案件数据中的变量，也不是可用的函数{where}"
    if isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else None
        shown = repr(key) if type(key) in SCALARS and len(repr(key)) <= 60 else "（复杂的键）"
        return f"数据中没有键 {shown}{where}"
    if isinstance(exc, IndexError):
        return f"下标超出范围{where}"
    if isinstance(exc, ZeroDivisionError | decimal.DivisionByZero):
        return f"除数为零{where}"
    if isinstance(exc, RecursionError):
        return f"递归层数过多（函数反复调用自身）{where}"
    if isinstance(exc, MemoryError):
        return f"内存不足，已终止{where}"
    if isinstance(exc, OverflowError | decimal.Overflow):
        return f"数值溢出：结果过大{where}"
    if isinstance(exc, decimal.InvalidOperation):
        return f"无效的数值运算（如数值不是有效的金额或精度超出）{where}"
    if isinstance(exc, ValueError) and "Exceeds the limit" in detail:
        return f"整数位数超过 4300 位的上限{where}"
    if isinstance(exc, TypeError):
        return f"类型错误：{detail}{where}"
    if isinstance(exc, AttributeError):
        return f"属性错误：{detail}{where}"
    if isinstance(exc, NotImplementedError):
        return f"不允许的操作：{detail}{where}"
    if isinstance(exc, AssertionError):
        return f"断言不成立：{detail}{where}" if detail else f"断言不成立{where}"
    if isinstance(exc, ValueError):
        return f"取值错误：{detail}{where}"
    return f"{detail or type(exc).__name__}{where}"


def _short_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error
        text = type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def _script_line(exc: BaseException) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<string>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
