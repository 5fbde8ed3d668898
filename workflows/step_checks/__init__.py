"""Domain checks that run before a step is completed, beyond what its JSON Schema form can say.

A form can say "an integer from 0 to 4"; it cannot say "a date inside the service month" or "a provider
that has not already declined this case". Such checks are registered here per (process, step):

    @checks("home_care_month", "record_services")
    def services_within_month(session, actor, task, case, data): ...   # raise ValidationFailed

`tasks.complete` runs them after the form validates, so the web pages, the API and every other caller
get the same Chinese field errors, and nothing is written when one fails.
"""

import importlib
import pkgutil
from collections.abc import Callable

Check = Callable[..., None]
_checks: dict[tuple[str, str], list[Check]] = {}
_loaded = False


def checks(process_key: str, task_spec: str) -> Callable[[Check], Check]:
    def register(func: Check) -> Check:
        _checks.setdefault((process_key, task_spec), []).append(func)
        return func

    return register


def run(session, actor, task, case, data: dict, process_id: str) -> None:
    """Run the checks registered for this step (raising ValidationFailed on the first that fails).

    `process_id` is the process that holds the step: a call activity's steps run inside another case.
    """
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    for check in _checks.get((process_id, task.task_spec), ()):
        check(session, actor, task, case, data)
