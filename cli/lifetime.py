"""Child processes that end with the process that started them.

`eldercare serve` starts the background worker beside gunicorn. If `serve` is killed outright (kill -9,
the OOM killer) the worker must not live on, reparented to PID 1, to be joined by a second one when
`serve` is started again: on Linux the kernel sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG);
elsewhere, and as a second guard, the worker checks its parent on every pause.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies; exit now if it has died already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # The parent may have died before the request above was made: then nobody would send the signal.
    if parent_gone(parent_pid):
        sys.exit(0)


def parent_gone(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


class Supervised:
    """A child process started again whenever it ends (killed, crashed) until `stop` is called."""

    def __init__(self, argv: list[str]):
        self._argv = argv
        self._stopping = threading.Event()
        self._process = subprocess.Popen(argv, env=os.environ.copy())
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            self._process.wait()
            if self._stopping.is_set():
                return
            log.warning("background worker ended (%s); starting it again", self._process.returncode)
            time.sleep(1.0)  # a worker failing at once is not restarted in a tight loop
            if not self._stopping.is_set():
                self._process = subprocess.Popen(self._argv, env=os.environ.copy())

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
