"""How much diagram code may do: time, memory, sizes. Defaults, and their environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    # One evaluation (a script, a condition, one DMN cell, a timer expression).
    seconds: float = 2.0
    # All diagram code run during one engine move (complete a task and run to the next wait state), summed:
    # a diagram cannot chain many slow-but-legal evaluations into a long request.
    step_seconds: float = 5.0
    # The case data as JSON after a script.
    data_bytes: int = 50 * MB
    # Growth of the process's memory while one evaluation runs longer than a watchdog tick.
    memory_bytes: int = 256 * MB
    # One string (characters), list, tuple or range (items) built by one operation; also the budget of the
    # walk that measures nested values before an operation that would walk them in C.
    max_length: int = 1_000_000
    # Integers built by arithmetic: Python's own limit for converting integers to text.
    max_int_digits: int = 4300
    # Nesting of a stored value (lists and dicts inside each other).
    max_depth: int = 100
    # Characters of one script or expression.
    max_source: int = 20_000

    @property
    def max_int_bits(self) -> int:
        return int(self.max_int_digits * 3.3219280948873626) + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Read the limits from ELDERCARE_SCRIPT_* variables; unset or invalid ones keep their default."""
        env = os.environ if environ is None else environ
        values = {}
        for name, convert, scale in (
            ("ELDERCARE_SCRIPT_SECONDS", float, ("seconds", 1)),
            ("ELDERCARE_SCRIPT_STEP_SECONDS", float, ("step_seconds", 1)),
            ("ELDERCARE_CASE_DATA_MB", float, ("data_bytes", MB)),
            ("ELDERCARE_SCRIPT_MEMORY_MB", float, ("memory_bytes", MB)),
        ):
            raw = env.get(name)
            if not raw:
                continue
            try:
                number = convert(raw)
            except ValueError:
                continue
            if number > 0:
                field, factor = scale
                values[field] = number * factor if field.endswith("seconds") else int(number * factor)
        return cls(**values)

    def replace(self, **changes) -> Limits:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown limits: {sorted(unknown)}")
        return type(self)(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})
