"""Helpers the visiting-care diagrams use in scripts. Pure functions, no database."""

from __future__ import annotations

from ...rules.care import VISIT_FREQUENCIES as FREQUENCIES


def stricter_frequency(chosen, required) -> str:
    """Return the more frequent of the chosen and the required visit frequency (a caseworker may raise it, never lower it)."""
    order = list(FREQUENCIES)
    candidates = [f for f in (chosen, required) if f in FREQUENCIES]
    if not candidates:
        raise ValueError(f"未知的探访频次：{chosen!r}")
    return max(candidates, key=order.index)
