"""The errors diagram code can end in: one base type, a Chinese message, and the element when known."""

from __future__ import annotations


class SandboxError(Exception):
    """Diagram code (a script, condition, DMN or timer expression) failed or was stopped.

    `message` is Chinese and safe to show a process owner; `element` is the BPMN/DMN element id when the
    caller knows it (the evaluator does not: SpiffWorkflow hands it expressions, not tasks), so the engine
    fills it in with `located()` from the task it was running.
    """

    kind = "failed"

    def __init__(self, message: str, element: str | None = None):
        self.message = message
        self.element = element
        super().__init__(f"[{element}] {message}" if element else message)

    def located(self, element: str | None) -> SandboxError:
        """Return the same error naming `element` (unchanged when it already names one)."""
        if self.element or not element:
            return self
        located = type(self)(self.message, element)
        located.__cause__ = self.__cause__
        return located


class ScriptRefused(SandboxError):
    """The source is not allowed (syntax, imports, names, statements): refused before running."""

    kind = "refused"


class ScriptFailed(SandboxError):
    """The code ran and raised an error (a missing name, a division by zero, a helper's refusal)."""

    kind = "failed"


class ScriptTimeout(SandboxError):
    """The code ran past its time limit and was stopped in the thread running it."""

    kind = "timeout"


class ScriptTooLarge(SandboxError):
    """The code tried to build a value, or use memory, beyond the limits."""

    kind = "too_large"


class UnstorableValue(SandboxError):
    """A value the code left in the case data cannot be stored as JSON (or makes the data too large)."""

    kind = "unstorable"

    def __init__(self, message: str, element: str | None = None, problems: list | None = None):
        super().__init__(message, element)
        self.problems = list(problems or [])

    def located(self, element: str | None) -> SandboxError:
        if self.element or not element:
            return self
        return UnstorableValue(self.message, element, self.problems)
