"""One thread that stops diagram code in the thread running it, at its deadline or past its memory allowance.

Why an asynchronous exception: the evaluation must stop *itself* (a request given up on while its thread
keeps spinning still holds the worker and the database lock). CPython delivers an exception set with
`PyThreadState_SetAsyncExc` at the next check of the bytecode loop (a loop's backward jump, a call), so it
stops any Python-level loop; work inside one C call is not interrupted, which is why `guards` bounds it.

The exception types derive from BaseException so that `except Exception` in a helper never swallows them,
and the language policy lets scripts name only Exception subclasses (and use no `finally`), so a script
cannot catch the stop or run more code after it.

Protocol. `watch` makes a Watch for the calling thread; `watch.register()` and `watch.unregister()` are
single C calls (a dict store and a dict pop, bound with functools.partial), so no stop can be delivered
between entering them and their effect: once `unregister()` has returned, the watch is gone, and the
watchdog, which fires only at a registered watch and only under its lock, can fire at most once more (a
firing it had already decided on). `settle`, under the lock, withdraws such a stop if it is still pending.
So the stops an evaluation can receive all land between `register()` and the end of `settle`, inside the
evaluator's handler of them, and none can reach the code that runs after.

Stops are fired again while the evaluation runs on: every REFIRE seconds after the first. An exception
raised in a thread is lost when it lands in code whose exceptions CPython only reports ("Exception
ignored in ..."): a garbage collector callback (some libraries install one), an object's `__del__`, a
weakref callback, a generator finalised in a loop. A single stop lost there would leave the runaway code
running for ever (and, doubling a string, taking the machine's memory with it).
An evaluation nested in another on the same thread runs under the outer watch (the evaluator asks
`watching_current_thread` and registers no second watch).

Cost, per evaluation: `register` without the lock (one dict store; the watchdog copies the table before
it looks), `settle` takes the lock once; neither wakes the watchdog, except the first evaluation
after a quiet second (the watchdog ticks every TICK seconds while evaluations keep coming, and parks
again after a quiet second, checking the table once more after deciding to, so that an evaluation
registered meanwhile is never missed). Evaluations shorter than a tick are never looked at.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import threading
import time
from threading import get_ident

logger = logging.getLogger(__name__)

TICK = 0.02  # how often the watchdog looks while evaluations run: the lateness of a stop, at worst
PARK_AFTER = 1.0  # quiet seconds before the watchdog sleeps until the next evaluation
REFIRE = TICK  # seconds between stops at an evaluation that goes on after its stop (the stop was lost)


class Stop(BaseException):  # noqa: N818 - a signal to unwind, not an error a caller handles
    """Base of the exceptions the watchdog raises in an evaluating thread."""


class TimeUp(Stop):
    """The evaluation reached its deadline."""


class MemoryUp(Stop):
    """The process grew past the evaluation's memory allowance while it ran."""


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> int:
    # None clears a pending exception (NULL); the call returns how many threads it found.
    return _set_async_exc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type else None)


class Watch:
    """One evaluation under watch."""

    __slots__ = (
        "thread_id",
        "started",
        "deadline",
        "memory_bytes",
        "rss_at_start",
        "fired",
        "due",
        "register",
        "unregister",
    )

    def __init__(
        self, armed: dict, thread_id: int, started: float, deadline: float, memory_bytes: int | None
    ):
        self.thread_id = thread_id
        self.started = started
        self.deadline = deadline
        self.memory_bytes = memory_bytes
        self.rss_at_start: int | None = None
        self.fired: type[Stop] | None = None
        self.due = deadline  # when the watchdog next has something to do for this watch
        # C calls only: see the module's protocol.
        self.register = functools.partial(armed.__setitem__, thread_id, self)
        self.unregister = functools.partial(armed.pop, thread_id, None)


class _Memory:
    """The process's resident memory, read from /proc (None where there is no /proc)."""

    def __init__(self):
        self._fd: int | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._missing = False

    def resident(self) -> int | None:
        if self._missing:
            return None
        try:
            if self._fd is None:
                self._fd = os.open("/proc/self/statm", os.O_RDONLY)
            return int(os.pread(self._fd, 128, 0).split()[1]) * self._page
        except OSError:
            self._missing = True
            return None

    def reset(self) -> None:
        # After a fork the inherited descriptor still describes the parent.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None


class Watchdog:
    def __init__(self, park_after: float = PARK_AFTER):
        self.park_after = park_after
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._armed: dict[int, Watch] = {}
        self._arms = 0
        self._parked = True
        self._thread: threading.Thread | None = None
        self._memory = _Memory()
        self.fired_count = 0  # for tests and the benchmark: evaluations stopped so far
        self.refired_count = 0  # stops raised again at an evaluation that went on (the first was lost)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # -- the evaluating thread

    def watch(self, deadline: float, memory_bytes: int | None = None, now: float | None = None) -> Watch:
        """A watch for the calling thread, not yet registered: call `register()` inside the `try` whose
        `finally` calls `unregister()` then `settle(watch)`, and handles the stops."""
        started = time.monotonic() if now is None else now
        return Watch(self._armed, get_ident(), started, deadline, memory_bytes)

    def started(self) -> None:
        """Call after `register()`: wakes a parked watchdog."""
        self._arms += 1
        if self._parked:
            self._unpark()

    def _unpark(self) -> None:
        with self._lock:
            if not self._parked:
                return
            self._parked = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sandbox-watchdog", daemon=True)
                self._thread.start()
            else:
                self._wake.notify()

    def settle(self, watch: Watch) -> None:
        """After `watch.unregister()`: withdraw a stop fired at the watch and not yet delivered."""
        with self._lock:
            if watch.fired is not None:
                _raise_in(watch.thread_id, None)

    def watching_current_thread(self) -> bool:
        return get_ident() in self._armed

    @property
    def parked(self) -> bool:
        """Whether the watchdog sleeps until the next evaluation (no thread ticking)."""
        return self._parked

    def armed_count(self) -> int:
        with self._lock:
            return len(self._armed)

    # -- the watchdog thread

    def _run(self) -> None:
        with self._lock:
            seen = -1
            quiet_since = time.monotonic()
            while True:
                now = time.monotonic()
                if self._armed:
                    try:
                        self._look(now)
                    except Exception:  # noqa: BLE001 - the watchdog must outlive any one evaluation
                        logger.exception("sandbox watchdog: looking at the evaluations failed")
                if self._arms != seen:
                    seen = self._arms
                    quiet_since = now
                if not self._armed and now - quiet_since >= self.park_after:
                    self._parked = True
                    # `register` comes first and `started` reads `_parked` after: look at the table once more now
                    # that `_parked` is set, so an evaluation registered meanwhile is not left unwatched.
                    if self._armed:
                        self._parked = False
                        continue
                    while self._parked:
                        self._wake.wait()
                    quiet_since = time.monotonic()
                    continue
                timeout = TICK
                for watch in list(self._armed.values()):  # a copy: `register` adds without the lock
                    timeout = min(timeout, watch.due - now)
                self._wake.wait(max(timeout, 0.0005))

    def _look(self, now: float) -> None:
        resident = None
        for watch in list(self._armed.values()):
            if watch.fired is not None:
                if now >= watch.due:
                    self._fire(watch, watch.fired)  # the last stop was lost: the evaluation runs on
            elif now >= watch.deadline:
                self._fire(watch, TimeUp)
            elif watch.memory_bytes and now - watch.started >= TICK:
                if resident is None:
                    resident = self._memory.resident()
                    if resident is None:
                        continue
                if watch.rss_at_start is None:
                    watch.rss_at_start = resident
                elif resident - watch.rss_at_start > watch.memory_bytes:
                    self._fire(watch, MemoryUp)

    def _fire(self, watch: Watch, kind: type[Stop]) -> None:
        if self._armed.get(watch.thread_id) is not watch:
            return
        if watch.fired is None:
            self.fired_count += 1
        else:
            self.refired_count += 1
        watch.fired = kind
        watch.due = time.monotonic() + REFIRE
        _raise_in(watch.thread_id, kind)

    def _after_fork(self) -> None:
        # Only the forking thread survives in the child: start afresh (a new lock, no thread, no watches).
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._armed = {}
        self._parked = True
        self._thread = None
        self._memory.reset()


watchdog = Watchdog()
