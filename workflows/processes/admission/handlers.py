"""What the admission diagram's messages do: record what happened to the applicant's place and offer,
queue the SMS, and pass a bed on to the next applicant. Each runs in the transaction of the step that
threw it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ... import cases, outbox
from ...models import Case, Elder, User
from ...models.admission import TIER_LABELS, BedVacancy, Facility, QueueEventKind
from ...rules import housing
from ...rules.phone import is_mobile
from . import waitlist

# --------------------------------------------------------------------------------------------------
# The waitlist


def join_waitlist(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    entry = waitlist.join(
        session,
        case,
        tier=payload["tier"],
        tier_reason=payload.get("tier_reason", ""),
        facility_id=payload["facility_id"],
        actor=actor,
    )
    position = waitlist.position_of(session, entry)
    _sms(
        session,
        case,
        actor,
        "waitlist_joined",
        entry.facility_id,
        tier=TIER_LABELS[entry.tier],
        position=position,
    )


def notify_applicant(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    offer = waitlist.offer_for_case(session, case, payload.get("offer_id"))
    vacancy = session.get(BedVacancy, offer.vacancy_id)
    message = _sms(
        session,
        case,
        actor,
        payload.get("template") or "bed_offer",
        vacancy.facility_id,
        bed=vacancy.bed_label,
        respond_by=waitlist.date_text(offer.respond_by),
    )
    offer.message_id = message.id
    entry = waitlist.entry_for_case(session, case)
    sent_to = message.recipient or "（无手机号码）"
    waitlist.log_event(
        session,
        vacancy.facility_id,
        QueueEventKind.NOTIFIED,
        actor,
        entry=entry,
        vacancy=vacancy,
        offer=offer,
        reason=f"短信通知已排队（{sent_to}）" + (f"；{message.last_error}" if message.last_error else ""),
    )
    session.flush()


def record_arrival(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    waitlist.record_arrival(session, case, payload.get("offer_id"), actor)


def offer_lapsed(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    waitlist.record_refusal(
        session,
        case,
        payload.get("offer_id"),
        payload.get("outcome") or "declined",
        payload.get("note") or "",
        actor,
        remove=False,
    )


def removed(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    offer = waitlist.record_refusal(
        session,
        case,
        payload.get("offer_id"),
        payload.get("outcome") or "declined",
        payload.get("note") or "",
        actor,
        remove=True,
    )
    entry = waitlist.entry_for_case(session, case)
    ban = (
        f"，{waitlist.local_text(entry.banned_until, '%Y-%m-%d')}前不能重新申请" if entry.banned_until else ""
    )
    count = waitlist.refusals_in_window(session, entry)
    _sms(
        session,
        case,
        actor,
        "waitlist_removed",
        session.get(BedVacancy, offer.vacancy_id).facility_id,
        count=count,
        ban=ban,
    )


def unsuitable(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    waitlist.record_unsuitable(session, case, payload.get("offer_id"), payload.get("reason") or "", actor)


def admitted(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    waitlist.record_admission(
        session, case, payload.get("offer_id"), payload.get("admitted_on"), payload.get("bed"), actor
    )


def leave(session: Session, case: Case, payload: dict, actor: User | None) -> None:
    entry = waitlist.entry_for_case(session, case)
    waitlist.close_entry(
        session, entry, waitlist.EntryStatus.WITHDRAWN, payload.get("reason") or "申请人撤回申请", actor
    )


# --------------------------------------------------------------------------------------------------


def _sms(session: Session, case: Case, actor: User | None, template: str, facility_id: int, **params):
    """Queue the SMS `template` (configuration) to the applicant of an admission case."""
    settings = housing.settings()["sms"]
    elder = session.get(Elder, case.elder_id) if case.elder_id else None
    facility = session.get(Facility, facility_id)
    data = cases.case_data(waitlist.case_row(session, case))
    phone = next(
        (
            p
            for p in (data.get("contact_phone"), elder and elder.phone, elder and elder.guardian_phone)
            if p and is_mobile(p)
        ),
        None,
    )
    values = {
        "signature": settings["signature"],
        "name": elder.name if elder else "",
        "facility": facility.name,
        "place": facility.address or facility.name,
        "phone": facility.phone or "",
        **params,
    }
    body = settings["templates"][template].format(**values)
    return outbox.queue_sms(
        session,
        actor,
        to=phone,
        body=body,
        purpose=template,
        case_id=case.id,
        elder_id=case.elder_id,
        recipient_name=values["name"],
    )
