"""Backing up and restoring an instance: its database and the files of its instance folder.

A backup is one tar file: the database (SQLite's online backup API, a consistent copy taken while the
system runs; `pg_dump` in its custom format for PostgreSQL), the instance folder's files (uploaded
documents, the session key) and a manifest with what it holds and a SHA-256 of every member. The database
is copied first, then the files: a document is written before the row that names it is committed, so
every document the copied database names is in the backup (a newer file at most is there unnamed).

Restoring checks the manifest, refuses to overwrite a database that already holds cases or users unless
told to, puts the database and files in place, brings the schema up to date, and verifies the result:
every case's hash chain, and every document's file against its recorded SHA-256.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine, make_url

from workflows import audit, schema
from workflows.db import session_factory
from workflows.models import Case, CaseEvent, User
from workflows.models.attachments import Attachment

FORMAT = 1
MANIFEST = "manifest.json"
FILES = "instance/"
# What of the instance folder is not copied as a file: the SQLite database (copied through its backup
# API instead), its journal files, and the worker's lock.
_NOT_FILES = (
    "eldercare.sqlite",
    "eldercare.sqlite-wal",
    "eldercare.sqlite-shm",
    "eldercare.sqlite.worker-lock",
)


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why (in Chinese)."""


def _kind(engine: Engine) -> str:
    return "postgresql" if engine.dialect.name == "postgresql" else "sqlite"


def _libpq_url(engine: Engine) -> str:
    """The database's address as the PostgreSQL tools take it (without SQLAlchemy's driver name)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_tool(name: str) -> str:
    """The newest installed PostgreSQL client tool (`pg_dump`, `pg_restore`), Debian's layout first."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    tool = found[-1] if found else shutil.which(name)
    if not tool:
        raise BackupError(f"找不到 {name}：请安装 PostgreSQL 客户端（Debian: postgresql-client）")
    return tool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _counts(engine: Engine) -> dict[str, int]:
    if not inspect(engine).has_table("cases"):
        return {"cases": 0, "events": 0, "users": 0, "attachments": 0}
    with session_factory(engine)() as session:
        return {
            name: session.scalar(select(func.count()).select_from(model))
            for name, model in (
                ("cases", Case),
                ("events", CaseEvent),
                ("users", User),
                ("attachments", Attachment),
            )
        }


def _copy_database(engine: Engine, into: Path) -> Path:
    if _kind(engine) == "sqlite":
        target = into / "database.sqlite"
        source = sqlite3.connect(engine.url.database)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # all pages in one step: a consistent copy while others write
        finally:
            copy.close()
            source.close()
        return target
    target = into / "database.pgdump"
    done = subprocess.run(
        [
            postgres_tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "-f",
            str(target),
            "-d",
            _libpq_url(engine),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump 失败：{done.stderr.strip()}")
    return target


def backup(engine: Engine, instance: Path, destination: Path, log: Callable[[str], None] = print) -> dict:
    """Write a backup of the database and the instance folder's files to `destination` (a .tar file)."""
    destination = Path(destination)
    if destination.exists():
        raise BackupError(f"{destination} 已存在，请指定新的文件名")
    counts = _counts(engine)
    revision = schema.current_revision(engine)
    with tempfile.TemporaryDirectory(prefix="eldercare-backup-") as tmp:
        log("复制数据库 / copying the database ...")
        database = _copy_database(engine, Path(tmp))
        members = {database.name: database}
        for path in sorted(Path(instance).rglob("*")):
            if path.is_file() and path.relative_to(instance).as_posix() not in _NOT_FILES:
                members[FILES + path.relative_to(instance).as_posix()] = path
        log(f"复制文件 / copying {len(members) - 1} files ...")
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "database": _kind(engine),
            "schema_revision": revision,
            "counts": counts,
            "members": {name: _sha256(path) for name, path in members.items()},
        }
        partial = destination.with_name(destination.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            body = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(body)
            info.mtime = int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(body))
            for name, path in members.items():
                tar.add(path, arcname=name, recursive=False)
        os.replace(partial, destination)  # a backup that is there is whole
    return manifest


def _read(archive: Path, into: Path) -> dict:
    with tarfile.open(archive, "r") as tar:
        tar.extractall(into, filter="data")  # refuses absolute paths, links out, devices
    manifest = json.loads((into / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"不认识的备份格式：{manifest.get('format')}")
    for name, digest in manifest["members"].items():
        member = into / name
        if not member.is_file() or _sha256(member) != digest:
            raise BackupError(f"备份已损坏：{name} 缺失或与清单不符")
    return manifest


def restore(
    archive: Path, engine: Engine, instance: Path, *, force: bool = False, log: Callable[[str], None] = print
) -> dict:
    """Restore a backup into this instance's database and folder; return what the verification found."""
    with tempfile.TemporaryDirectory(prefix="eldercare-restore-") as tmp:
        unpacked = Path(tmp)
        manifest = _read(Path(archive), unpacked)
        if manifest["database"] != _kind(engine):
            raise BackupError(
                f"备份来自 {manifest['database']} 数据库，本实例使用 {_kind(engine)}：不能直接恢复"
            )
        present = _counts(engine)
        if (present["cases"] or present["users"]) and not force:
            raise BackupError(
                f"目标数据库已有数据（案件 {present['cases']}，用户 {present['users']}）；"
                "确认要覆盖请加 --force"
            )
        log("恢复数据库 / restoring the database ...")
        if manifest["database"] == "sqlite":
            _restore_sqlite(unpacked / "database.sqlite", engine)
        else:
            _restore_postgres(unpacked / "database.pgdump", engine)
        log("恢复文件 / restoring the files ...")
        files = unpacked / FILES
        if files.is_dir():
            for path in sorted(files.rglob("*")):
                if path.is_file():
                    target = Path(instance) / path.relative_to(files)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
    if inspect(engine).has_table("alembic_version"):
        schema.upgrade(engine)  # a backup of an older version is brought up to date
    problems = verify(engine, Path(instance) / "attachments")
    return {"counts": _counts(engine), "expected": manifest["counts"], "problems": problems}


def _restore_sqlite(copy: Path, engine: Engine) -> None:
    engine.dispose()
    target = Path(engine.url.database)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(copy)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)  # page by page into the live file, its journal handled by SQLite
    finally:
        destination.close()
        source.close()


def _restore_postgres(dump: Path, engine: Engine) -> None:
    engine.dispose()
    done = subprocess.run(
        [
            postgres_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "-d",
            _libpq_url(engine),
            str(dump),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore 失败：{done.stderr.strip()}")


def verify(engine: Engine, uploads: Path) -> list[str]:
    """Every problem found: a case whose hash chain breaks, a document whose file is missing or changed."""
    problems: list[str] = []
    with session_factory(engine)() as session:
        for case_id in session.scalars(select(Case.id).order_by(Case.id)):
            problems += [f"案件 #{case_id}：{p}" for p in audit.verify_chain(session, case_id)]
        for attachment in session.scalars(select(Attachment).order_by(Attachment.id)):
            path = uploads / str(attachment.case_id) / attachment.stored_name
            if not path.is_file():
                problems.append(f"附件 #{attachment.id}（{attachment.filename}）的文件缺失")
            elif _sha256(path) != attachment.sha256:
                problems.append(f"附件 #{attachment.id}（{attachment.filename}）的文件与记录的校验值不符")
    return problems


def database_url_of(url: str) -> str:
    """The URL as a person may read it (the password hidden)."""
    return make_url(url).render_as_string(hide_password=True)
