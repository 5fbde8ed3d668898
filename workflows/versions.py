"""Deploying process bundles as versions, and reading a version's spec, steps and forms."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock, registry
from .engine import Instance, LoadedSpec, Problem
from .errors import NotFound, PermissionDenied
from .models import ProcessVersion, Role, User

DEPLOYABLE_SUFFIXES = (".bpmn", ".dmn", ".json")


@dataclass
class Deployed:
    key: str
    version: int
    version_id: int
    created: bool  # False when identical content was already deployed
    warnings: list[Problem] = field(default_factory=list)  # what the checks found that does not block


def deploy(session: Session, actor: User | None, files: dict[str, str | bytes]) -> list[Deployed]:
    """Check a bundle and store a new version of each process whose content changed; all or nothing."""
    if actor is not None and actor.role not in (Role.PROCESS_OWNER, Role.ADMIN):
        raise PermissionDenied("只有流程管理员可以部署流程")
    # Raises DeployError, listing every problem, before anything is written.
    parsed = registry.engine().parse_bundle(files, extra_forms=_declared_forms())
    results = []
    for process in parsed:
        existing = session.scalar(
            select(ProcessVersion).where(
                ProcessVersion.process_key == process.key, ProcessVersion.content_hash == process.content_hash
            )
        )
        if existing is not None:
            results.append(Deployed(process.key, existing.version, existing.id, False, process.warnings))
            continue
        latest = session.scalar(
            select(func.max(ProcessVersion.version)).where(ProcessVersion.process_key == process.key)
        )
        version = ProcessVersion(
            process_key=process.key,
            version=(latest or 0) + 1,
            name=process.name,
            content_hash=process.content_hash,
            sources=json.dumps(process.sources, ensure_ascii=False),
            spec=process.spec_json,
            task_info=process.task_info_json(),
            deployed_at=clock.now(),
            deployed_by=actor.id if actor is not None else None,
        )
        session.add(version)
        session.flush()
        results.append(Deployed(process.key, version.version, version.id, True, process.warnings))
    return results


def read_bundle(path: Path) -> dict[str, bytes]:
    """Read every BPMN, DMN and form file under a folder (or one file), keyed by relative path. The bytes
    as they are: deploying checks their encoding and says what is wrong with it."""
    path = Path(path)
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.suffix.lower() in DEPLOYABLE_SUFFIXES
    }


def latest(session: Session, key: str) -> ProcessVersion:
    version = session.scalar(
        select(ProcessVersion)
        .where(ProcessVersion.process_key == key)
        .order_by(ProcessVersion.version.desc())
        .limit(1)
    )
    if version is None:
        raise NotFound(f"流程 {key} 尚未部署")
    return version


def get_version(session: Session, key: str, number: int) -> ProcessVersion:
    version = session.scalar(
        select(ProcessVersion).where(ProcessVersion.process_key == key, ProcessVersion.version == number)
    )
    if version is None:
        raise NotFound(f"流程 {key} 没有第 {number} 版")
    return version


def list_latest(session: Session) -> list[ProcessVersion]:
    newest = (
        select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v"))
        .group_by(ProcessVersion.process_key)
        .subquery()
    )
    return list(
        session.scalars(
            select(ProcessVersion)
            .join(
                newest,
                (ProcessVersion.process_key == newest.c.process_key) & (ProcessVersion.version == newest.c.v),
            )
            .order_by(ProcessVersion.process_key)
        )
    )


def _declared_forms() -> dict[str, list[str]]:
    """Forms a process's code uses that no step names (application forms): deployed with the version."""
    return {p.key: [p.starter.form] for p in registry.current() if p.starter and p.starter.form}


@dataclass
class Runtime:
    """What running a version needs: its restored spec and its human steps. Immutable once deployed."""

    spec: LoadedSpec
    steps: dict[str, dict]
    version_id: int

    def start(self, data: dict | None = None) -> Instance:
        """A new instance of this version, run to its first wait state (nothing is stored)."""
        return Instance.start(self.spec, data)

    def restore(self, state: str) -> Instance:
        return Instance.restore(self.spec, state)

    def form(self, session: Session, name: str) -> dict | None:
        """A form file deployed with the version, by its path in the process folder (None if absent)."""
        if self._forms is None:
            sources = session.scalar(
                select(ProcessVersion.sources).where(ProcessVersion.id == self.version_id)
            )
            self._forms = {
                path: text for path, text in json.loads(sources or "{}").items() if path.endswith(".json")
            }
        for path, text in self._forms.items():
            if path == name or path.endswith("/" + name):
                return json.loads(text)
        return None

    _forms: dict[str, str] | None = None


# Content-addressed (process key + content hash), so a cached entry can never be stale.
_runtimes: dict[tuple[str, str], Runtime] = {}


def runtime(session: Session, process_key: str, content_hash: str, version_id: int) -> Runtime:
    """The restored spec and steps of a version, read from the database once per process."""
    key = (process_key, content_hash)
    found = _runtimes.get(key)
    if found is None:
        row = session.execute(
            select(ProcessVersion.spec, ProcessVersion.task_info).where(ProcessVersion.id == version_id)
        ).one()
        found = _runtimes[key] = Runtime(
            registry.engine().load_spec(row.spec), json.loads(row.task_info), version_id
        )
    return found


def runtime_of(session: Session, version: ProcessVersion) -> Runtime:
    return runtime(session, version.process_key, version.content_hash, version.id)
