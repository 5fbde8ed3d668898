"""What the system does when a diagram throws a message nothing in its own case catches.

A diagram says *what* should happen next (`start_home_adaptation`, `send_sms`, `offer_bed`) with a
message throw event; a handler here says *how*, with database access the diagram's restricted
scripts never have. Handlers live in the modules of this package:

    @handles("start_home_adaptation")
    def start_adaptation(session, case, payload, actor): ...

They run inside the same transaction as the step that threw the message, so both commit or neither.
"""

import importlib
import logging
import pkgutil
from collections.abc import Callable

log = logging.getLogger(__name__)

Handler = Callable[..., object]
_handlers: dict[str, Handler] = {}
_loaded = False


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        if name in _handlers and _handlers[name] is not func:
            raise RuntimeError(f"two handlers for message {name!r}")
        _handlers[name] = func
        return func

    return register


def handler_for(name: str) -> Handler | None:
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return _handlers.get(name)
