"""Documents and comments on a case: uploads checked for size and type, stored under the instance folder."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from . import audit, cases, clock, config
from .errors import NotFound, PermissionDenied, ValidationFailed
from .models import Case, EventKind, Role, User
from .models.attachments import Attachment
from .models.base import is_row_id

MAX_BYTES = 10 * 1024 * 1024
MAX_COMMENT = 2000
# Extension -> (content type, how the file must start). The type is decided by the bytes, never by
# what the browser claims, so a renamed executable is refused.
ALLOWED: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".webp": ("image/webp", (b"RIFF",)),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
}
# Who may add documents and comments: everyone who works cases; auditors only read.
_WRITERS = frozenset(Role) - {Role.AUDITOR}


@dataclass
class StoredFile:
    attachment: Attachment
    path: Path


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else config.instance_dir() / "attachments"


def _safe_name(filename: str) -> str:
    name = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    name = re.sub(r"[\x00-\x1f<>:\"|?*]", "_", name)
    return name[:200] or "附件"


# Files written in a transaction that has not committed yet: a refused form rolls its rows back, and
# its files must go too, or the disk fills with documents nothing points at.
_UNCOMMITTED = "eldercare.uncommitted_files"


@event.listens_for(Session, "after_commit")
def _keep_committed_files(session: Session) -> None:
    session.info.pop(_UNCOMMITTED, None)


@event.listens_for(Session, "after_transaction_end")
def _remove_uncommitted_files(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without a commit
        for path in session.info.pop(_UNCOMMITTED, []):
            path.unlink(missing_ok=True)


def _case_for_writing(session: Session, actor: User, case_id: int) -> Case:
    case = cases.get_case(session, actor, case_id)  # area check
    if actor.role not in _WRITERS:
        raise PermissionDenied("您的角色只能查看，不能添加材料或意见")
    return case


def check_upload(filename: str, content: bytes, *, max_bytes: int = MAX_BYTES) -> str:
    """Return the content type of an acceptable upload, or raise ValidationFailed saying why not."""
    suffix = Path(_safe_name(filename)).suffix.lower()
    if suffix not in ALLOWED:
        kinds = "、".join(sorted({s.lstrip(".").upper() for s in ALLOWED}))
        raise ValidationFailed(f"不支持的文件类型（{suffix or '无扩展名'}），只接受 {kinds}")
    if not content:
        raise ValidationFailed("文件是空的")
    if len(content) > max_bytes:
        raise ValidationFailed(
            f"文件过大（{len(content) / 1048576:.1f} MB），不能超过 {max_bytes // 1048576} MB"
        )
    content_type, magics = ALLOWED[suffix]
    if not any(content.startswith(m) for m in magics) or (suffix == ".webp" and content[8:12] != b"WEBP"):
        raise ValidationFailed(f"文件内容与扩展名 {suffix} 不符")
    return content_type


def save_attachment(
    session: Session,
    actor: User,
    case_id: int,
    filename: str,
    content: bytes,
    *,
    task_id: str | None = None,
    field: str | None = None,
    root: Path | None = None,
    max_bytes: int = MAX_BYTES,
) -> Attachment:
    """Check and store one uploaded file for a case, and note it in the case's trail."""
    case = _case_for_writing(session, actor, case_id)
    try:
        content_type = check_upload(filename, content, max_bytes=max_bytes)
    except ValidationFailed as exc:
        if field:
            exc.field_errors = {field: exc.message}
        raise
    stored_name = uuid.uuid4().hex
    folder = _root(root) / str(case.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / stored_name).write_bytes(content)
    session.info.setdefault(_UNCOMMITTED, []).append(folder / stored_name)
    attachment = Attachment(
        case_id=case.id,
        task_id=task_id,
        field=field,
        filename=_safe_name(filename),
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        stored_name=stored_name,
        uploaded_by=actor.id,
        uploaded_at=clock.now(),
    )
    session.add(attachment)
    session.flush()
    audit.record(
        session,
        case,
        EventKind.COMMENTED,
        actor=actor,
        detail={"attachment": attachment.id, "filename": attachment.filename, "size": attachment.size},
    )
    session.flush()
    return attachment


def list_attachments(session: Session, actor: User, case_id: int) -> list[Attachment]:
    """The documents of a case the actor may read, oldest first."""
    cases.get_case(session, actor, case_id)
    return list(
        session.scalars(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id))
    )


def open_attachment(
    session: Session, actor: User, attachment_id: int, *, root: Path | None = None
) -> StoredFile:
    """Return a document and where its bytes are, if the actor may read its case."""
    attachment = session.get(Attachment, attachment_id) if is_row_id(attachment_id) else None
    if attachment is None:
        raise NotFound("附件不存在")
    cases.get_case(session, actor, attachment.case_id)
    path = _root(root) / str(attachment.case_id) / attachment.stored_name
    if not path.is_file():
        raise NotFound("附件文件已丢失，请联系管理员")
    return StoredFile(attachment, path)


def add_comment(session: Session, actor: User, case_id: int, text: str) -> None:
    """Append a comment to a case's trail."""
    case = _case_for_writing(session, actor, case_id)
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("请填写意见内容", field_errors={"comment": "请填写意见内容"})
    if len(text) > MAX_COMMENT:
        raise ValidationFailed(
            f"意见最多 {MAX_COMMENT} 字", field_errors={"comment": f"最多 {MAX_COMMENT} 字"}
        )
    audit.record(session, case, EventKind.COMMENTED, actor=actor, comment=text)
    session.flush()
