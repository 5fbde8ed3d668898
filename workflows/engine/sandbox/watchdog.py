"""One thread that stops diagram code in the thread running it, at its deadline or past its memory allowance.

Why an asynchronous exception: the evaluation must stop *itself* (a request given up on while its thread
keeps spinning still holds the worker and the database lock). CPython delivers an exception set with
`PyThreadState_SetAsyncExc` at the next check of the bytecode loop (a loop's backward jump, a call), so it
stops any Python-level loop; work inside one C call is not interrupted, which is why `guards` bounds it.

The exception types derive from BaseException so that `except Exception` in a helper never swallows them,
and the language policy lets scripts name only Exception subclasses (and use no `finally`), so a script
cannot catch the stop or run more code after it.

Protocol, all under one lock: `arm` registers a watch for the calling thread; the watchdog fires at a
registered watch at most once, and unregisters it as it fires; `disarm` unregisters a watch that has not
fired, or clears the stop of one that has (a stop scheduled but not yet delivered). Either way, once the
evaluating thread leaves its guarded region, no stop for that evaluation is pending and none can come:
if the stop is delivered while the thread is on its way into `disarm`, the stop was delivered (nothing
pending) and the watch was already unregistered by the firing. Firing only once is deliberate: a second
stop (to catch one lost in a finaliser) could not be told apart from a stop landing after the thread left,
because "is the evaluation still running?" and "raise" cannot be made atomic from Python.
An evaluation nested in another on the same thread runs under the outer watch (`arm` returns None).

Cost, per evaluation: `arm` registers without the lock (one dict store; the watchdog copies the table
before it looks), `disarm` takes the lock once; neither wakes the watchdog, except the first evaluation
after a quiet second (the watchdog ticks every TICK seconds while evaluations keep coming, and parks
again after a quiet second, checking the table once more after deciding to, so that an evaluation
registered meanwhile is never missed). Evaluations shorter than a tick are never looked at.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import time
from threading import get_ident

logger = logging.getLogger(__name__)

TICK = 0.02  # how often the watchdog looks while evaluations run: the lateness of a stop, at worst
PARK_AFTER = 1.0  # quiet seconds before the watchdog sleeps until the next evaluation


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
    """One armed evaluation."""

    __slots__ = ("thread_id", "started", "deadline", "memory_bytes", "rss_at_start", "fired")

    def __init__(self, thread_id: int, started: float, deadline: float, memory_bytes: int | None):
        self.thread_id = thread_id
        self.started = started
        self.deadline = deadline
        self.memory_bytes = memory_bytes
        self.rss_at_start: int | None = None
        self.fired: type[Stop] | None = None


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
        self.fired_count = 0  # for tests and the benchmark: stops raised so far
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # -- the evaluating thread

    def arm(self, deadline: float, memory_bytes: int | None = None, now: float | None = None) -> Watch | None:
        """Watch the calling thread until `disarm`; None when it is already watched (a nested evaluation)."""
        thread_id = get_ident()
        armed = self._armed
        if thread_id in armed:
            return None
        watch = Watch(thread_id, time.monotonic() if now is None else now, deadline, memory_bytes)
        armed[thread_id] = watch  # one store, atomic under the GIL: the watchdog sees it or not yet
        self._arms += 1
        if self._parked:
            self._unpark()
        return watch

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

    def disarm(self, watch: Watch) -> None:
        """Stop watching; cancel a stop fired at this evaluation and not yet delivered."""
        with self._lock:
            if self._armed.get(watch.thread_id) is watch:
                del self._armed[watch.thread_id]
            elif watch.fired is not None:
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
                    # `arm` registers first and reads `_parked` after: look at the table once more now
                    # that `_parked` is set, so an evaluation registered meanwhile is not left unwatched.
                    if self._armed:
                        self._parked = False
                        continue
                    while self._parked:
                        self._wake.wait()
                    quiet_since = time.monotonic()
                    continue
                timeout = TICK
                for watch in list(self._armed.values()):  # a copy: `arm` adds without the lock
                    timeout = min(timeout, watch.deadline - now)
                self._wake.wait(max(timeout, 0.0005))

    def _look(self, now: float) -> None:
        resident = None
        for watch in list(self._armed.values()):
            if now >= watch.deadline:
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
        del self._armed[watch.thread_id]
        watch.fired = kind
        self.fired_count += 1
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
