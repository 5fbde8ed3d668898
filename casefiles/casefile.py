"""The case file (案卷): cover, contents, every step with its form data, the capability assessment, the
documents (photos as thumbnails), the notices and the audit trail with its hash-chain check, as one PDF.

Read access is the case's (`workflows.archives.casefile_case`); ID and phone numbers are masked unless the
reader's role needs them (`workflows.archives.shows_full_numbers`), with the same masking the case page uses.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows import archives, attachments, audit, cases, clock, dossiers, elders, notices, registry
from workflows.errors import NotFound
from workflows.models import Area, Assessment, Case, CaseEvent, Elder, EventKind, ProcessVersion, User
from workflows.models.attachments import Attachment
from workflows.models.notices import Notice, NoticeCase
from workflows.rules import assessment as gbt
from workflows.rules.idnumber import mask_id_number
from workflows.rules.phone import mask_phone

from . import layout, pdf

STATUS_LABELS = {"running": "办理中", "completed": "已办结", "cancelled": "已终止", "error": "出错"}
ROLE_LABELS = {
    "village_assistant": "养老协理员",
    "caseworker": "乡镇经办人",
    "assessor": "评估员",
    "approver": "县民政局审批人",
    "provider": "服务机构",
    "facility_admin": "养老机构管理员",
    "auditor": "监督审计",
    "process_owner": "流程管理员",
    "admin": "系统管理员",
}
# Lines of contents one A4 page holds (about 44 measured); a guess render_gathered checks.
TOC_LINES_PER_PAGE = 40
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
THUMB_SIZE = (520, 390)


@dataclass
class Step:
    number: int
    name: str
    kind: str
    actor: str
    at: datetime
    decision: str | None
    comment: str | None
    items: list[layout.Item]


@dataclass
class Document:
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    thumbnail: str | None = None  # res: name
    missing: bool = False


@dataclass
class CaseFile:
    case: Case
    process_name: str
    version: int
    county_name: str
    township_name: str
    elder: dict | None
    outcome: str
    steps: list[Step]
    assessments: list[dict]
    documents: list[Document]
    notices: list[Notice]
    trail: list[dict]
    chain_problems: list[str]
    chain_head: str
    printed_at: datetime
    printed_by: str
    masked: bool
    resources: dict[str, bytes] = field(default_factory=dict)

    @property
    def photos(self) -> list[Document]:
        return [d for d in self.documents if d.thumbnail]


def _names(session: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def _area_name(session: Session, code: str | None) -> str:
    area = session.get(Area, code) if code else None
    return area.name if area is not None else (code or "")


def gather(
    session: Session, actor: User | None, case_id: int, *, upload_root: Path | None = None
) -> CaseFile:
    """Everything a case file shows, if the actor may read the case."""
    case = archives.casefile_case(session, actor, case_id)
    full = archives.shows_full_numbers(actor)
    version = session.get(ProcessVersion, case.process_version_id)
    steps_info = cases.runtime_of(session, case).steps
    events = list(
        session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq))
    )
    documents = list(
        session.scalars(select(Attachment).where(Attachment.case_id == case.id).order_by(Attachment.id))
    )
    names = _names(
        session, [e.actor_id for e in events] + [d.uploaded_by for d in documents] + [case.started_by]
    )
    file_names = {d.id: d.filename for d in documents}

    def readable(value):
        return value if full else dossiers.mask_personal_numbers(value)

    steps, decisions, trail = [], [], []
    for event in events:
        detail = json.loads(event.detail or "{}")
        if event.kind in (EventKind.TASK_COMPLETED, EventKind.SENT_BACK) and event.task_spec:
            form = (steps_info.get(event.task_spec) or {}).get("form") or {}
            data = readable(detail.get("data") or {})
            decision = None
            if "decision" in data:
                decision = layout.text_of(data["decision"], (form.get("properties") or {}).get("decision"))
                decisions.append((event.task_name or event.task_spec, decision))
            shown = {k: v for k, v in data.items() if k not in ("decision", "comment")}
            steps.append(
                Step(
                    number=len(steps) + 1,
                    name=event.task_name or event.task_spec,
                    kind=audit.EVENT_LABELS.get(event.kind, event.kind.value),
                    actor=names.get(event.actor_id) or "系统",
                    at=event.at,
                    decision=decision,
                    comment=event.comment,
                    items=layout.lay_out(form, shown, file_names),
                )
            )
        trail.append(
            {
                "seq": event.seq,
                "at": event.at,
                "actor": names.get(event.actor_id) or "系统",
                "kind": audit.EVENT_LABELS.get(event.kind, event.kind.value),
                "step": event.task_name or "",
                "note": _trail_note(event, detail),
                "hash": event.hash[:16],
            }
        )
    application = _application(session, actor, case, readable, file_names, names)
    if application is not None:
        steps.insert(0, application)
        for number, step in enumerate(steps, start=1):
            step.number = number
    problems = audit.verify_chain(session, case.id)
    elder = session.get(Elder, case.elder_id) if case.elder_id else None
    outcome = STATUS_LABELS.get(case.status.value, case.status.value)
    if decisions:
        outcome += f"（{decisions[-1][0]}：{decisions[-1][1]}）"
    resources: dict[str, bytes] = {}
    return CaseFile(
        case=case,
        process_name=version.name,
        version=version.version,
        county_name=_area_name(session, (case.area_code or "")[:6]),
        township_name=_area_name(session, (case.area_code or "")[:9]),
        elder=_elder(session, elder, full) if elder else None,
        outcome=outcome,
        steps=steps,
        assessments=_assessments(session, case, names),
        documents=_documents(session, actor, documents, names, resources, upload_root),
        notices=list(
            session.scalars(
                select(Notice)
                .join(NoticeCase, NoticeCase.notice_id == Notice.id)
                .where(NoticeCase.case_id == case.id)
                .order_by(Notice.issued_at, Notice.id)
            )
        ),
        trail=trail,
        chain_problems=problems,
        chain_head=case.last_event_hash,
        printed_at=clock.now(),
        printed_by=(
            f"{actor.display_name}（{ROLE_LABELS.get(actor.role.value, actor.role.value)}）"
            if actor
            else "系统归档"
        ),
        masked=not full,
        resources=resources,
    )


def _application(session, actor, case: Case, readable, file_names, names) -> Step | None:
    """The application a case was started with (its starter's form; no task step records it)."""
    starter = registry.current().starter_for(case.process_key)
    if starter is None or not starter.form:
        return None
    # The form as deployed with the case's version (choices only a reader's scope fills are not needed:
    # the layout labels values by the form's titles).
    form = cases.runtime_of(session, case).form(session, starter.form)
    props = (form or {}).get("properties") or {}
    data = cases.case_data(case)
    submitted = readable({k: data[k] for k in props if k in data})
    if not submitted:
        return None
    return Step(
        number=0,
        name=starter.title,
        kind="提交申请",
        actor=names.get(case.started_by) or "系统",
        at=case.started_at,
        decision=None,
        comment=None,
        items=layout.lay_out(form, submitted, file_names),
    )


def _trail_note(event: CaseEvent, detail: dict) -> str:
    if event.comment:
        return event.comment[:120]
    if detail.get("filename"):
        return f"上传材料：{detail['filename']}"
    if detail.get("message"):
        return f"消息 {detail['message']}"
    if detail.get("document"):
        return {"casefile": "案卷", "notice": "通知书"}.get(detail["document"], detail["document"]) + (
            f" {detail.get('document_number', '')}" if detail.get("document_number") else ""
        )
    if detail.get("version"):
        return f"第{detail['version']}版"
    return ""


def _elder(session: Session, elder: Elder, full: bool) -> dict:
    summary = dossiers.summarize_elder(session, elder)
    return {
        "name": elder.name,
        "sex": {"male": "男", "female": "女"}.get(summary.sex, summary.sex),
        "age": summary.age,
        "id_number": elder.id_number if full else mask_id_number(elder.id_number),
        "phone": (elder.phone if full else mask_phone(elder.phone)) if elder.phone else "—",
        "address": summary.area_path + (summary.address or ""),
        "flags": "、".join(elders.FIELD_LABELS.get(f, f) for f in summary.flags) or "—",
    }


def _assessments(session: Session, case: Case, names: dict[int, str]) -> list[dict]:
    found = list(
        session.scalars(
            select(Assessment).where(Assessment.case_id == case.id).order_by(Assessment.assessed_on)
        )
    )
    quoted = False
    if not found and case.elder_id:  # the case relied on a valid assessment made before it
        latest = session.scalar(
            select(Assessment)
            .where(
                Assessment.elder_id == case.elder_id, Assessment.created_at <= (case.ended_at or clock.now())
            )
            .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
            .limit(1)
        )
        found, quoted = ([latest], True) if latest is not None else ([], False)
    missing_names = _names(session, [a.assessor_id for a in found if a.assessor_id not in names])
    out = []
    for a in found:
        scores = a.item_scores()
        groups = []
        for group in gbt.GROUPS:
            items = [i for i in gbt.ITEMS if i.group == group]
            groups.append(
                {
                    "name": group.name,
                    "items": [(i.name, scores.get(i.key, "—"), i.max_score) for i in items],
                    "subtotal": sum(
                        scores.get(i.key, 0) for i in items if isinstance(scores.get(i.key), int)
                    ),
                    "max": sum(i.max_score for i in items),
                }
            )
        out.append(
            {
                "assessed_on": f"{a.assessed_on.year}年{a.assessed_on.month}月{a.assessed_on.day}日",
                "reason": gbt.AssessmentReason(a.reason).label,
                "total": a.total,
                "max_total": gbt.MAX_TOTAL,
                "level": gbt.DisabilityLevel(a.level).label,
                "adjustments": json.loads(a.adjustments or "[]"),
                "valid_until": f"{a.valid_until.year}年{a.valid_until.month}月{a.valid_until.day}日",
                "assessor": names.get(a.assessor_id) or missing_names.get(a.assessor_id) or "—",
                "groups": groups,
                "quoted": quoted,
                "case_id": a.case_id,
            }
        )
    return out


def _documents(session, actor, documents, names, resources, upload_root) -> list[Document]:
    out = []
    for a in documents:
        doc = Document(
            a.id, a.filename, a.content_type, a.size, a.sha256, names.get(a.uploaded_by) or "—", a.uploaded_at
        )
        if a.content_type in IMAGE_TYPES:
            try:
                stored = attachments.open_attachment(session, actor, a.id, root=upload_root)
                resources[f"thumb-{a.id}.jpg"] = thumbnail(stored.path.read_bytes())
                doc.thumbnail = f"res:thumb-{a.id}.jpg"
            except NotFound:
                doc.missing = True
            except OSError:  # a file Pillow cannot read is listed, not shown
                doc.missing = True
        out.append(doc)
    return out


def thumbnail(content: bytes) -> bytes:
    """A small JPEG of a photo for the case file (the original stays with the case)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(content)) as image:
        image.draft("RGB", THUMB_SIZE)  # JPEG: decode at a reduced scale, much faster for camera photos
        image = ImageOps.exif_transpose(image).convert("RGB")
        image.thumbnail(THUMB_SIZE)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80, optimize=True)
        return out.getvalue()


def render_casefile(
    session: Session, actor: User | None, case_id: int, *, upload_root: Path | None = None
) -> bytes:
    """The case file as PDF bytes (not audited: see `print_casefile`)."""
    return render_casefile_pages(session, actor, case_id, upload_root=upload_root).pdf


def render_casefile_pages(
    session: Session, actor: User | None, case_id: int, *, upload_root: Path | None = None
) -> pdf.Rendered:
    """The case file as PDF with its page count."""
    return render_gathered(gather(session, actor, case_id, upload_root=upload_root))


def render_gathered(data: CaseFile) -> pdf.Rendered:
    """Lay out gathered case-file data (needs no database: bulk archiving renders outside transactions).

    The body is laid out first and the cover and contents after it, with the body's page numbers: CSS
    `target-counter` would do the same in one document, but WeasyPrint then lays every page out twice (it
    doubled the time of a case file). The contents' lines do not depend on the numbers, so the front's page
    count is known before the numbers are.
    """

    def lay_out(part: str, pages: dict, total: int, first_page: int):
        context = {"f": data, "part": part, "pages": pages, "total_pages": total, "first_page": first_page}
        return pdf.layout("casefile.html", context, stylesheet="casefile.css", resources=data.resources)

    front_pages = 1 + math.ceil((len(data.steps) + 6) / TOC_LINES_PER_PAGE)  # the cover, then the contents
    for _ in range(3):
        body = lay_out("body", {}, 0, front_pages + 1)
        pages: dict[str, int] = {}
        for number, page in enumerate(body.pages, start=front_pages + 1):
            for anchor in page.anchors:
                pages.setdefault(anchor, number)
        total = front_pages + len(body.pages)
        front = lay_out("front", pages, total, 1)
        if len(front.pages) == front_pages:
            return pdf.Rendered(pdf.write([front, body]), total)
        front_pages = len(front.pages)  # the contents ran longer or shorter than reckoned: number again
    return pdf.Rendered(pdf.write([front, body]), len(front.pages) + len(body.pages))


def print_casefile(
    session: Session,
    actor: User | None,
    case_id: int,
    *,
    upload_root: Path | None = None,
    purpose: str = "print",
) -> bytes:
    """Render a case file for someone and note the printing in the case's trail."""
    rendered = render_casefile_pages(session, actor, case_id, upload_root=upload_root)
    case = session.get(Case, case_id)
    notices.record_print(
        session,
        actor,
        case,
        "casefile",
        purpose=purpose,
        pages=rendered.pages,
        masked=not archives.shows_full_numbers(actor),
    )
    return rendered.pdf
