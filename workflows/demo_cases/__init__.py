"""Demo cases in several states, one module per area of work.

Each module defines `create(session, users: dict[str, User], elders: list[Elder]) -> dict[str, int]`
and drives real cases through the real use cases (start, complete, deliver), so the demo shows what
the system really does. `workflows.demo.load_demo` calls them after the registry is loaded.
"""

import importlib
import pkgutil
from types import ModuleType


def all_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
