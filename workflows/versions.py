"""Deploying process bundles as versions, and reading a version's spec, steps and forms."""

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from . import access, clock, office_log, registry
from .driver_sql import DriverStatement
from .engine import DeployError, Instance, LoadedSpec, ParsedProcess, Problem
from .errors import NotFound, PermissionDenied, ValidationFailed
from .models import ProcessVersion, Role, User
from .models.supervision import LogKind

DEPLOYABLE_SUFFIXES = (".bpmn", ".dmn", ".json")


@dataclass
class Deployed:
    key: str
    version: int
    version_id: int
    created: bool  # False when identical content was already deployed
    warnings: list[Problem] = field(default_factory=list)  # what the checks found that does not block


EDITOR_ROLES = frozenset({Role.PROCESS_OWNER, Role.ADMIN})


def require_editor(actor: User) -> None:
    if not actor.is_active or actor.role not in EDITOR_ROLES:
        raise PermissionDenied("只有流程管理员或系统管理员可以编辑、部署流程和迁移案件")


def deploy(
    session: Session,
    actor: User | None,
    files: dict[str, str | bytes],
    *,
    comment: str | None = None,
    channel: str = "web",
) -> list[Deployed]:
    """Check a bundle and store a new version of each process whose content changed; all or nothing.

    A person deploying says why (`comment`, kept with the version); the system deploying the shipped
    processes at set-up (actor None) need not."""
    if actor is not None:
        require_editor(actor)
    comment = (comment or "").strip()
    if actor is not None and not comment:
        raise ValidationFailed(
            "请填写部署说明（本版改了什么、为什么）", field_errors={"comment": "请填写部署说明"}
        )
    # Raises DeployError, listing every problem, before anything is written.
    parsed = registry.engine().parse_bundle(files, extra_forms=_declared_forms())
    problems = [problem for process in parsed for problem in _declaration_problems(process)]
    if any(p.severity == "error" for p in problems):
        raise DeployError([*problems, *(w for process in parsed for w in process.warnings)])
    for process in parsed:
        process.warnings += [p for p in problems if p.file in process.sources]
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
            comment=comment or None,
        )
        session.add(version)
        session.flush()
        results.append(Deployed(process.key, version.version, version.id, True, process.warnings))
        if actor is not None:
            office_log.record(
                session,
                LogKind.DEPLOYED,
                user=actor,
                channel=channel,
                target=f"{process.key} 第 {version.version} 版",
                message=comment,
                detail={"process": process.key, "version": version.version, "hash": process.content_hash},
            )
    return results


def check_bundle(files: dict[str, str | bytes]) -> list[Problem]:
    """Every problem of a bundle, without deploying it: the engine's checks, what each process's code
    relies on finding in its diagram, and lanes that name no role. Errors block deploying."""
    parsed, problems = registry.engine().inspect_bundle(files, extra_forms=_declared_forms())
    for process in parsed:
        problems += _declaration_problems(process)
    return problems


def _declaration_problems(process: ParsedProcess) -> list[Problem]:
    return expectations_missing(process) + _lanes_without_roles(process)


_EXPECTED_KIND = {"task": ("userTask", "manualTask")}


def expectations_missing(process: ParsedProcess) -> list[Problem]:
    """What the process's declaration says its code relies on that this version of the diagram lacks."""
    facts, missing = process.facts, []
    main_file = next((name for name in process.sources if name.endswith(".bpmn")), "(bundle)")
    for expected in registry.current().expectations(process.key):
        if expected.kind == "task":
            found = (
                expected.name in facts.elements and facts.elements[expected.name][0] in _EXPECTED_KIND["task"]
            )
            what = f"环节 {expected.name}"
        elif expected.kind == "message":
            found, what = expected.name in facts.throws, f"抛出的消息 {expected.name}"
        elif expected.kind == "waits":
            found, what = expected.name in facts.catches, f"等待的消息 {expected.name}"
        else:
            continue  # forms: deploying itself looks for them (`extra_forms`)
        if not found:
            message = f"流程代码依赖的{what}（{expected.why}）在这个版本中已删除或改名"
            missing.append(
                Problem(
                    main_file, expected.name, message, severity="error" if expected.required else "warning"
                )
            )
    return missing


def _lanes_without_roles(process: ParsedProcess) -> list[Problem]:
    main_file = next((name for name in process.sources if name.endswith(".bpmn")), "(bundle)")
    return [
        Problem(
            main_file,
            None,
            f"泳道“{lane}”不是系统中的角色：其中的任务任何本单位人员都能办理（写作“乡镇经办人 (caseworker)”）",
            severity="warning",
        )
        for lane in process.facts.lanes
        if lane and access.role_for_lane(lane) is None
    ]


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
    # Every start asks (the monthly job thousands of times): the id on the driver, the row from the
    # session, which holds the versions it was given for as long as it lives.
    if any(isinstance(pending, ProcessVersion) for pending in session.new):
        session.flush()  # a version deployed in this transaction counts, as it would by autoflush
    found = _LATEST_ID.first(session.connection(), {"key": key})
    if found is None:
        raise NotFound(f"流程 {key} 尚未部署")
    version = session.get(ProcessVersion, found[0])
    session.info.setdefault(_HELD_VERSIONS, {})[version.id] = version  # the identity map holds weakly
    return version


_HELD_VERSIONS = "eldercare.held_versions"
_LATEST_ID = DriverStatement(
    select(ProcessVersion.__table__.c.id)
    .where(ProcessVersion.__table__.c.process_key == bindparam("key"))
    .order_by(ProcessVersion.__table__.c.version.desc())
    .limit(1)
)


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


# --------------------------------------------------------------------------------------------------
# Bundles as zip files, and what the processes page lists

MAX_ZIP_ENTRIES = 200
MAX_ZIP_BYTES = 20 * 1024 * 1024


def read_zip(data: bytes) -> dict[str, bytes]:
    """The BPMN, DMN and form files of an uploaded zip, by path (other files are ignored); refused with a
    Chinese reason when it is no zip, too big, or names paths outside itself."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValidationFailed(
            "上传的文件不是有效的 zip 压缩包", field_errors={"files": "不是 zip 文件"}
        ) from exc
    entries = [i for i in archive.infolist() if not i.is_dir()]
    if len(entries) > MAX_ZIP_ENTRIES or sum(i.file_size for i in entries) > MAX_ZIP_BYTES:
        raise ValidationFailed(
            "压缩包过大（最多 200 个文件、解压后 20 MB）", field_errors={"files": "压缩包过大"}
        )
    files = {}
    for info in entries:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or ".." in name.split("/"):
            raise ValidationFailed(f"压缩包中的路径“{name}”不安全", field_errors={"files": "路径不安全"})
        if name.lower().endswith(DEPLOYABLE_SUFFIXES) and not name.split("/")[-1].startswith("."):
            files[name] = archive.read(info)
    if not files:
        raise ValidationFailed(
            "压缩包中没有 .bpmn、.dmn 或 .json 文件", field_errors={"files": "没有流程文件"}
        )
    return files


def sources_of(session: Session, version: ProcessVersion) -> dict[str, str]:
    return json.loads(
        session.scalar(select(ProcessVersion.sources).where(ProcessVersion.id == version.id)) or "{}"
    )


def export_zip(session: Session, version: ProcessVersion) -> bytes:
    """A version's files as a zip (the same paths; importable again as a bundle)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in sorted(sources_of(session, version).items()):
            info = zipfile.ZipInfo(
                path, date_time=version.deployed_at.astimezone(clock.LOCAL).timetuple()[:6]
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def versions_of(session: Session, key: str) -> list[ProcessVersion]:
    found = list(
        session.scalars(
            select(ProcessVersion)
            .where(ProcessVersion.process_key == key)
            .order_by(ProcessVersion.version.desc())
        )
    )
    if not found:
        raise NotFound(f"流程 {key} 尚未部署")
    return found
