"""Functions that diagrams may call from scripts and conditions, each a small tested helper.

Every module in this package lists its callable helpers in `__all__`; `install()` exposes them to the
restricted script runtime under those names. A diagram stays one short statement per script task:
`subsidy = adaptation_subsidy(plan_total, cap)`, never twenty lines of Python.
"""

import importlib
import pkgutil

from .. import engine

_installed = False


def install() -> list[str]:
    """Register every helper with the script runtime (idempotent); return their names."""
    global _installed
    names = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in getattr(module, "__all__", []):
            engine.register_script_helper(name, getattr(module, name))
            names.append(name)
    _installed = True
    return sorted(names)
