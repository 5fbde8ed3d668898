"""Background work run by `eldercare worker`: every module here defines `NAME` and `run(session) -> int`.

Each run is one batch in its own transaction; the worker loops over the modules until none has work
left, then sleeps. State lives in the database, so a worker can be stopped and restarted at any time,
and several can run at once on PostgreSQL (due rows are taken with SKIP LOCKED).
"""

import importlib
import pkgutil
from types import ModuleType


def all_jobs() -> list[ModuleType]:
    modules = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return sorted((m for m in modules if hasattr(m, "run")), key=lambda m: getattr(m, "ORDER", 50))
