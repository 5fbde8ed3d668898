"""Child processes that end with the process that started them.

`eldercare serve` starts the background worker beside gunicorn. If `serve` is killed outright (kill -9,
the OOM killer) the worker must not live on, reparented to PID 1, to be joined by a second one when
`serve` is started again: on Linux the kernel sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG);
elsewhere, and as a second guard, the worker checks its parent on every pause.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

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
