"""A throw-away PostgreSQL cluster on loopback for tests and benchmarks.

`python -m bench.pgcluster start DIR` installs Debian's postgresql when missing, creates a cluster in
DIR, starts it on a free loopback port and prints its URL; `stop DIR` stops it. Nothing else on the
machine is touched.
"""

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def ensure_installed() -> Path:
    """Return PostgreSQL's bin folder, installing Debian's package first if it is missing."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env, stdin=subprocess.DEVNULL
        )
        bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL could not be installed")
    return bin_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # The server refuses to run as root; Debian's package creates the `postgres` user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start(directory: str) -> str:
    """Create and start a cluster in `directory`; return its connection URL."""
    bin_dir = ensure_installed()
    root = Path(directory).resolve()
    if root.exists():
        stop(directory)
        shutil.rmtree(root)
    (root / "sock").mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(root / "sock", "postgres", "postgres")
    data = root / "data"
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd="/",
    )
    port = _free_port()
    options = f"-p {port} -k {root / 'sock'} -c listen_addresses=127.0.0.1 -c max_connections=200"
    (root / "options").write_text(options)
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd="/",
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    (root / "url").write_text(url)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return url
        time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not start; see " + str(root / "server.log"))


def start_cluster(directory: str) -> None:
    """Start again a cluster made by `start` and stopped by `stop` (same port, same data)."""
    root = Path(directory).resolve()
    subprocess.run(
        _as_postgres(
            [
                str(ensure_installed() / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "server.log"),
                "-o",
                (root / "options").read_text(),
                "-w",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd="/",
    )


def stop_cluster(directory: str) -> None:
    """Stop the cluster, keeping its data (an outage; `start_cluster` ends it)."""
    stop(directory)


def stop(directory: str) -> None:
    data = Path(directory).resolve() / "data"
    bin_dir = _bin_dir()
    if bin_dir and (data / "postmaster.pid").exists():
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd="/",
            check=False,
        )


def discard(directory) -> None:
    """Stop a throw-away cluster and delete its folder (data, socket and log)."""
    stop(directory)
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m bench.pgcluster start|stop DIR", file=sys.stderr)
        return 2
    if argv[0] == "start":
        print(start(argv[1]))
    else:
        stop(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
