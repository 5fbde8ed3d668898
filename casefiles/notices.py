"""Notices as PDF, made from the snapshot fixed when the notice was issued, stored the first time.

The first rendering's bytes and their SHA-256 are kept with the notice (`workflows.notices.keep_rendering`);
every later download returns those bytes, so a reprint is the same file even after the county changes its
wording or seal. Rendering is deterministic too: the same snapshot gives the same bytes.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from workflows import notices as notice_rules
from workflows.models import Case, User
from workflows.models.notices import Notice

from . import pdf


def render_notice(notice: Notice) -> bytes:
    """Render a notice from its snapshot (no database access beyond the row; the seal read from disk)."""
    snapshot = notice_rules.snapshot_of(notice)
    resources = {}
    seal = notice_rules.seal_path(snapshot.get("seal"))
    if seal is not None:
        resources["seal"] = seal.read_bytes()
    return pdf.render(
        "notice.html",
        {"n": snapshot, "has_seal": seal is not None},
        stylesheet="notice.css",
        resources=resources,
    ).pdf


def notice_pdf(session: Session, actor: User | None, notice_id: int) -> tuple[Notice, bytes]:
    """A notice's PDF for someone who may read it: rendered and stored the first time, then the stored bytes;
    the download is noted in its case's trail."""
    notice = (
        notice_rules.get_notice(session, actor, notice_id)
        if actor is not None
        else session.get(Notice, notice_id)
    )
    ensure_rendered(session, notice)
    if actor is not None:
        notice_rules.record_print(
            session,
            actor,
            session.get(Case, notice.case_id),
            "notice",
            notice_id=notice.id,
            document_number=notice.document_number,
        )
    return notice, notice.pdf


def ensure_rendered(session: Session, notice: Notice) -> Notice:
    """Store the notice's PDF if it has none yet."""
    if notice.pdf_sha256 is None:
        notice_rules.keep_rendering(session, notice, render_notice(notice))
    return notice
