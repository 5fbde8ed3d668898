"""What the engine reports when a bundle, a script or an operation is refused."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Problem:
    """One thing wrong with a deployment, located as precisely as the parser allows."""

    file: str
    element: str | None
    message: str
    line: int | None = None
    name: str | None = None  # the element's name, when it has one
    severity: str = "error"  # "error" blocks deploying; "warning" is shown and does not

    def __str__(self) -> str:
        where = self.file
        if self.element:
            where += f" [{self.element}{('「' + self.name + '」') if self.name else ''}]"
        if self.line:
            where += f" 第{self.line}行"
        return f"{where}: {'' if self.severity == 'error' else '（提示）'}{self.message}"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "element": self.element,
            "name": self.name,
            "line": self.line,
            "severity": self.severity,
            "message": self.message,
        }


class DeployError(Exception):
    """A bundle cannot be deployed; nothing of it was stored."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = sum(p.severity == "error" for p in problems)
        super().__init__(f"流程部署失败（{errors} 个错误）：\n" + "\n".join(f"- {p}" for p in problems))


class ScriptError(Exception):
    """A script or expression in a diagram failed (or was refused by the restricted runtime).

    `over_limit` when it ran past the runtime limits (time, memory, size): the diagram itself is at fault,
    and trying again would only do the same."""

    def __init__(self, element: str | None, message: str, *, over_limit: bool = False):
        self.element = element
        self.message = message
        self.over_limit = over_limit
        super().__init__(f"[{element}] {message}" if element else message)


class EngineError(Exception):
    """The engine refused an operation (task not ready, not waiting for an event, ...)."""
