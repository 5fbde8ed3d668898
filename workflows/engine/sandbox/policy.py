"""What diagram code may say, and how it is compiled: RestrictedPython's rules, our own refusals, and a
transform that routes the operations able to do unbounded work inside one C call through `guards`.

Refused (each with a Chinese reason, the same at deploy and at run time):
- imports, names and attributes starting with "_", and names that reach outside (open, eval, getattr, type...);
- `class`, `with`, `global`/`nonlocal`, `yield`, async code;
- `try ... finally`, a bare `except:`, and `except` naming anything but the offered Exception subclasses:
  the watchdog's stop derives from BaseException, so a script that may only catch named Exception
  subclasses cannot swallow it (and `finally` cannot run a second loop after it);
- assigning to an offered built-in or exception name (`ValueError = ...` would defeat the rule above);
- integer literals beyond the integer limit, and sources longer than `Limits.max_source`.

Transformed (on top of RestrictedPython's `_getattr_`, `_getitem_`, `_write_`, `_inplacevar_` ...):
- `a + b`, `a * b`, `a ** b`, `a << b`, `a % b` -> `_binop_("+", a, b)` ...: repetition, concatenation,
  big-integer growth and %-formatting are estimated before they run;
- `a - b`, `a | b`, `a & b`, `a ^ b` -> `_setop_(...)`: on `keys()`/`items()` views they hash any iterable;
- f-strings -> `_fstring_((part, _format_(value, conversion, spec), ...))`: widths, precisions and the
  joined length are checked;
- comparisons whose two sides are both computed (not literals) -> each computed side through `_deep_`:
  comparing nested values walks them in C;
- keys of dict/set displays and comprehensions -> `_key_`: hashing a nested tuple walks it in C;
- `*x` inside list/tuple/set displays -> `_starred_(x)`: `[*l, *l]` would double a list in one C call.
"""

from __future__ import annotations

import ast
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from .errors import ScriptRefused
from .limits import Limits

# Exception classes a script may name (raise, except): all subclasses of Exception.
EXCEPTION_NAMES = frozenset(
    {
        "ArithmeticError",
        "AssertionError",
        "AttributeError",
        "Exception",
        "IndexError",
        "KeyError",
        "LookupError",
        "NameError",
        "OverflowError",
        "RecursionError",
        "RuntimeError",
        "StopIteration",
        "TypeError",
        "UnboundLocalError",
        "ValueError",
        "ZeroDivisionError",
    }
)

# Names a script may not use at all: they reach outside the sandbox, or around its rules.
FORBIDDEN_NAMES = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "globals",
        "locals",
        "vars",
        "dir",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "type",
        "super",
        "object",
        "print",
        "input",
        "breakpoint",
        "help",
        "memoryview",
        "bytearray",
        "exit",
        "quit",
        "BaseException",
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
    }
)

# Attributes refused although they do not start with "_": `mro` hands out BaseException.
FORBIDDEN_ATTRIBUTES = frozenset({"mro", "format", "format_map"})

GUARDED_BINOPS = {ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%"}
# Set operators: on a dict's keys() or items() they accept any iterable, and hash every element of it.
SET_BINOPS = {ast.Sub: "-", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^"}

_STATEMENT_NAMES = {
    ast.ClassDef: "定义类（class）",
    ast.With: "with 语句",
    ast.AsyncWith: "async with 语句",
    ast.AsyncFor: "async for 语句",
    ast.AsyncFunctionDef: "异步函数（async def）",
    ast.Await: "await",
    ast.Global: "global 语句",
    ast.Nonlocal: "nonlocal 语句",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
    ast.TryStar: "try…except* 语句",
}


def _problems(tree: ast.AST, limits: Limits) -> list[str]:
    """Every reason, in Chinese, why this parsed source may not run (empty when it may)."""
    found: list[str] = []

    def say(node: ast.AST, text: str) -> None:
        line = getattr(node, "lineno", None)
        message = f"{text}（第{line}行）" if line else text
        if message not in found:
            found.append(message)

    for node in ast.walk(tree):
        kind = type(node)
        if kind in (ast.Import, ast.ImportFrom):
            names = ", ".join(a.name for a in node.names)
            say(node, f"脚本不允许导入模块（import {getattr(node, 'module', None) or names}）")
        elif kind in _STATEMENT_NAMES:
            say(node, f"脚本不允许使用{_STATEMENT_NAMES[kind]}")
        elif kind is ast.Try and node.finalbody:
            say(node, "脚本不允许使用 try…finally（超时后不能再运行代码）")
        elif kind is ast.ExceptHandler:
            _check_handler(node, say)
        elif kind is ast.Attribute and (node.attr.startswith("_") or node.attr in FORBIDDEN_ATTRIBUTES):
            if node.attr in ("format", "format_map"):
                say(node, f"脚本不允许使用字符串的 {node.attr} 方法，请改用 f-string")
            elif node.attr.startswith("_"):
                say(node, f"脚本不允许访问以下划线开头的属性 {node.attr}")
            else:
                say(node, f"脚本不允许访问属性 {node.attr}")
        elif kind is ast.Name:
            _check_name(node, say)
        elif kind in (ast.FunctionDef, ast.Lambda):
            if kind is ast.FunctionDef and node.name.startswith("_"):
                say(node, f"脚本不允许使用以下划线开头的名称 {node.name}")
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None and arg.arg.startswith("_"):
                    say(node, f"脚本不允许使用以下划线开头的名称 {arg.arg}")
                elif arg is not None and arg.arg in EXCEPTION_NAMES:
                    say(node, f"脚本不能用内置名称 {arg.arg} 作参数名，请换一个名称")
        elif (
            kind is ast.Constant and type(node.value) is int and node.value.bit_length() > limits.max_int_bits
        ):
            say(node, f"整数常量超过 {limits.max_int_digits} 位的上限")
    return found


def _check_name(node: ast.Name, say) -> None:
    name = node.id
    if name.startswith("_"):
        say(node, f"脚本不允许使用以下划线开头的名称 {name}")
    elif name in FORBIDDEN_NAMES:
        say(node, f"脚本不允许使用 {name}")
    elif isinstance(node.ctx, ast.Store | ast.Del) and name in EXCEPTION_NAMES:
        say(node, f"脚本不能给内置名称 {name} 赋值，请换一个变量名")


def _check_handler(node: ast.ExceptHandler, say) -> None:
    if node.name in EXCEPTION_NAMES:
        say(node, f"脚本不能给内置名称 {node.name} 赋值，请换一个变量名")
    if node.type is None:
        say(node, "脚本不允许使用不带异常类型的 except，请写明异常类型，如 except ValueError")
        return
    named = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
    for item in named:
        if not (isinstance(item, ast.Name) and item.id in EXCEPTION_NAMES):
            shown = ast.unparse(item)
            say(
                node,
                f"except 只能捕获具体的异常类型（{'、'.join(sorted(EXCEPTION_NAMES - {'Exception'}))[:60]}…），"
                f"不能捕获 {shown}",
            )


# --------------------------------------------------------------------------------------------------
# The transform


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_is_literal(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return isinstance(node.operand, ast.Constant)
    return False


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    copy_locations(call, like)
    copy_locations(call.func, like)
    return call


class SandboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer plus the guarded operations listed in the module docstring."""

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        symbol = GUARDED_BINOPS.get(type(node.op))
        if symbol is not None:
            return _call("_binop_", [ast.Constant(symbol), node.left, node.right], node)
        symbol = SET_BINOPS.get(type(node.op))
        if symbol is not None and not (_is_literal(node.left) and _is_literal(node.right)):
            return _call("_setop_", [ast.Constant(symbol), node.left, node.right], node)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> Any:
        node = self.node_contents_visit(node)
        parts: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = value.format_spec if value.format_spec is not None else ast.Constant(None)
                parts.append(_call("_format_", [value.value, ast.Constant(value.conversion), spec], value))
            else:
                parts.append(value)
        return _call("_fstring_", [ast.Tuple(parts, ast.Load())], node)

    def visit_Compare(self, node: ast.Compare) -> Any:
        node = self.node_contents_visit(node)
        operands = [node.left, *node.comparators]
        both_computed = any(
            not _is_literal(a) and not _is_literal(b) for a, b in zip(operands, operands[1:], strict=False)
        )
        if not both_computed:
            return node
        wrapped = [op if _is_literal(op) else _call("_deep_", [op], op) for op in operands]
        node.left, node.comparators = wrapped[0], wrapped[1:]
        return node

    def visit_Dict(self, node: ast.Dict) -> Any:
        node = self.node_contents_visit(node)
        node.keys = [k if k is None or _is_literal(k) else _call("_key_", [k], k) for k in node.keys]
        return node

    def visit_Set(self, node: ast.Set) -> Any:
        node = self.node_contents_visit(node)
        node.elts = [self._element(e, "_key_") for e in node.elts]
        return node

    def visit_List(self, node: ast.List) -> Any:
        node = self.node_contents_visit(node)
        if isinstance(node.ctx, ast.Load):
            node.elts = [self._element(e, None) for e in node.elts]
        return node

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        node = self.node_contents_visit(node)
        if isinstance(node.ctx, ast.Load):
            node.elts = [self._element(e, None) for e in node.elts]
        return node

    def visit_SetComp(self, node: ast.SetComp) -> Any:
        node = super().visit_SetComp(node)
        if not _is_literal(node.elt):
            node.elt = _call("_key_", [node.elt], node.elt)
        return node

    def visit_DictComp(self, node: ast.DictComp) -> Any:
        node = super().visit_DictComp(node)
        if not _is_literal(node.key):
            node.key = _call("_key_", [node.key], node.key)
        return node

    @staticmethod
    def _element(element: ast.expr, key_guard: str | None) -> ast.expr:
        if isinstance(element, ast.Starred):
            element.value = _call("_starred_", [element.value], element.value)
            return element
        if key_guard and not _is_literal(element):
            return _call(key_guard, [element], element)
        return element


# --------------------------------------------------------------------------------------------------
# Checking and compiling


def check_source(source: str, mode: str = "exec", limits: Limits | None = None) -> str | None:
    """Return why `source` may not run as diagram code (Chinese), or None when it may.

    `mode` is "exec" for scripts and "eval" for conditions and expressions.
    """
    try:
        compile_source(source, mode, limits)
    except ScriptRefused as refused:
        return refused.message
    return None


def compile_source(source: str, mode: str, limits: Limits | None = None) -> Any:
    """Compile diagram code with the sandbox's policy; raise ScriptRefused with every reason."""
    limits = limits or Limits()
    if not isinstance(source, str):
        raise ScriptRefused("脚本必须是文本")
    if len(source) > limits.max_source:
        raise ScriptRefused(f"脚本过长：{len(source)} 个字符，上限 {limits.max_source}")
    try:
        tree = ast.parse(source, "<string>", "eval" if mode == "eval" else "exec")
    except SyntaxError as exc:
        raise ScriptRefused(f"语法错误：{exc.msg}（第{exc.lineno}行）") from None
    except (RecursionError, MemoryError, ValueError):
        raise ScriptRefused("脚本嵌套过深或包含不允许的字符，无法解析") from None
    problems = _problems(tree, limits)
    if problems:
        raise ScriptRefused("；".join(problems))
    try:
        compiled = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(
            tree, policy=SandboxPolicy
        )
    except (RecursionError, MemoryError):
        raise ScriptRefused("脚本嵌套过深，无法编译") from None
    if compiled.errors:
        raise ScriptRefused("受限执行环境拒绝此脚本：" + "；".join(compiled.errors))
    return compiled.code
