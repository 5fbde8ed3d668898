"""The background worker of `eldercare serve` ends with it, however it ends, and a SQLite database has at
most one worker at a time (issue 16 #6). Real processes on a fresh instance; the test waits for processes
to appear or end (bounded), never for time to pass."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE_BPMN = ROOT / "tests" / "unit" / "engine" / "bpmn"


@pytest.fixture
def instance(tmp_path):
    env = dict(os.environ, ELDERCARE_INSTANCE=str(tmp_path / "instance"), ELDERCARE_BPMN_DIR=str(ENGINE_BPMN))
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "cli", "init-db"], env=env, cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield tmp_path / "instance", env, start
    for process in started:  # only what this test started, with whatever it left in its process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _until(condition, what: str, within: float = 30.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {within} s: {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_killing_serve_outright_ends_its_worker(instance):
    _, _, start = instance
    serve = start("serve", "--port", str(_free_port()), "--workers", "1")
    worker = _until(
        lambda: next((p for p in _children(serve.pid) if " worker " in _cmdline(p) + " "), None),
        "serve started its worker",
    )
    os.kill(serve.pid, signal.SIGKILL)
    serve.wait(10)
    _until(lambda: not _alive(worker), "the worker ended with serve")


def test_one_worker_per_sqlite_database_the_next_takes_over(instance):
    folder, _, start = instance
    lock = folder / "eldercare.sqlite.worker-lock"
    first = start("worker", "--interval", "0.2")
    _until(
        lambda: lock.exists() and lock.read_text().strip() == str(first.pid),
        "the first worker holds the database",
    )
    second = start("worker", "--interval", "0.2")
    once = subprocess.run(
        [sys.executable, "-m", "cli", "worker", "--once"],
        env=instance[1],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert once.returncode != 0 and "另一个后台任务进程" in once.stderr
    assert lock.read_text().strip() == str(first.pid) and second.poll() is None  # waiting, not working
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    _until(lambda: lock.read_text().strip() == str(second.pid), "the second worker took over")
    second.send_signal(signal.SIGTERM)
    assert second.wait(15) == 0
