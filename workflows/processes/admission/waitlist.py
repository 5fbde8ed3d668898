"""The public nursing-home waitlist (公办养老机构轮候): applications, vacant beds, offers down the queue.

The order of a facility's queue is computed, never stored: tier (特殊保障, 优先保障, 普通轮候), then application
time, then entry id; ties of tier and time are therefore broken by who was registered first, always the same
way. A vacant bed is offered to the first entry in that order that can take it; everyone passed over is
logged with the reason (`waitlist_events`), and so is every offer and how it ended, so that the queue can be
audited and `explain_position` can tell an applicant why they are where they are.

Who moves what: a facility registers a vacancy (`register_vacancy`), which offers the bed and delivers the
`bed_vacated` message to the admission case of the applicant concerned; that case notifies the applicant by
SMS, waits 5 working days for them to come for the admission assessment, and reports back through the
message handlers in `workflows.effects.housing`, which pass the bed on (`offer_next`) when needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ... import access, cases, clock, deadlines, elders, tasks
from ...calendars import Moved
from ...clock import LOCAL, today
from ...elders import mask_name
from ...errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from ...models import Case, CaseStatus, Elder, EventKind, HukouType, HumanTask, Role, TaskStatus, User
from ...models.admission import (
    ACTIVE_STATUSES,
    ENTRY_STATUS_LABELS,
    REFUSALS,
    TIER_LABELS,
    TIER_RANK,
    BedVacancy,
    EntryStatus,
    Facility,
    OfferStatus,
    QueueEventKind,
    Tier,
    VacancyStatus,
    WaitlistEntry,
    WaitlistEvent,
    WaitlistOffer,
)
from ...models.base import is_row_id
from ...models.outbox import OutboxMessage, OutboxStatus
from ...rules import housing
from ...rules.phone import is_mobile

PROCESS_KEY = "admission"
# The diagram's timer on the arrival deadline (moved when the working-day calendar changes).
ARRIVAL_DEADLINE = "arrival_deadline"

APPLY_ROLES = {Role.CASEWORKER}  # the application step is in the caseworker lane
FACILITY_ROLES = {Role.FACILITY_ADMIN, Role.ADMIN}
MANAGE_ROLES = {Role.ADMIN, Role.APPROVER}
WITHDRAW_ROLES = {Role.CASEWORKER, Role.VILLAGE_ASSISTANT, Role.FACILITY_ADMIN, Role.ADMIN}
READ_ROLES = {
    Role.VILLAGE_ASSISTANT,
    Role.CASEWORKER,
    Role.ASSESSOR,
    Role.APPROVER,
    Role.FACILITY_ADMIN,
    Role.AUDITOR,
    Role.PROCESS_OWNER,
    Role.ADMIN,
}


def setting(key: str):
    return housing.setting("admission", key)


def local_text(moment: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(LOCAL).strftime(fmt)


def date_text(moment: datetime) -> str:
    local = moment.astimezone(LOCAL)
    return f"{local.year}年{local.month}月{local.day}日（星期{'一二三四五六日'[local.weekday()]}）"


# --------------------------------------------------------------------------------------------------
# Facilities


def create_facility(
    session: Session,
    actor: User,
    *,
    name: str,
    area_code: str,
    address: str = "",
    phone: str = "",
    beds: int = 0,
) -> Facility:
    """Register a public nursing home that admits from a waitlist."""
    if actor.role not in MANAGE_ROLES:
        raise PermissionDenied("只有县民政局审批人或管理员可以登记公办养老机构")
    access.require_area(actor, area_code)
    if not (name or "").strip():
        raise ValidationFailed("请填写机构名称", field_errors={"name": "此项为必填项"})
    facility = Facility(
        name=name.strip(),
        area_code=area_code,
        address=address,
        phone=phone,
        beds=beds,
        created_at=clock.now(),
    )
    session.add(facility)
    session.flush()
    return facility


def list_facilities(session: Session, actor: User) -> list[Facility]:
    """Active facilities the actor can see (those in the actor's area, or the area the actor lies in)."""
    return [
        f
        for f in session.scalars(select(Facility).where(Facility.is_active.is_(True)).order_by(Facility.id))
        if sees_facility(actor, f)
    ]


def sees_facility(actor: User, facility: Facility) -> bool:
    """Whether the actor may see a home's queue: by area; a home's own staff only their home's."""
    if not actor.is_active:
        return False
    if actor.role == Role.FACILITY_ADMIN and actor.organisation_id is not None:
        return facility.organisation_id == actor.organisation_id
    return facility.area_code.startswith(actor.area_code) or actor.area_code.startswith(facility.area_code)


def _facility(session: Session, facility_id: int) -> Facility:
    facility = session.get(Facility, facility_id) if is_row_id(facility_id) else None
    if facility is None:
        raise NotFound("公办养老机构不存在")
    return facility


# --------------------------------------------------------------------------------------------------
# Applying


def already_applied(session: Session, elder_id: int) -> str | None:
    """One application under way per elder (the core asks this, under a lock, before starting one)."""
    running = session.scalar(
        select(Case.id).where(
            Case.process_key == PROCESS_KEY, Case.elder_id == elder_id, Case.status == CaseStatus.RUNNING
        )
    )
    return None if running is None else f"该老人已有正在办理的入住申请（案件 {running}）"


def apply(
    session: Session,
    actor: User,
    elder_id: int,
    facility_id: int,
    answers: dict,
    *,
    applied_at: datetime | None = None,
) -> Case:
    """Take an application for an elder: checked against the conditions, the ban and duplicates first.

    Starts the admission case with the elder's register data and submits its application step. A refused
    application raises ValidationFailed with the field concerned (e.g. `elder_age` for someone under 60), and
    nothing of it is written.
    """
    if actor.role not in APPLY_ROLES:
        raise PermissionDenied("只有乡镇（街道）经办人可以受理入住申请")
    elder = elders.applicant(session, actor, elder_id)
    facility = _facility(session, facility_id)
    if not facility.is_active:
        raise ValidationFailed("该机构已停止接收申请", field_errors={"facility_id": "该机构已停止接收申请"})
    now = clock.now()
    if applied_at is not None and applied_at > now:
        raise ValidationFailed("申请时间不能晚于现在", field_errors={"applied_at": "申请时间不能晚于现在"})
    check_can_join(session, elder.id, exclude_case_id=None)
    # Said as a field error here; a start racing this one is refused by the core (under its lock).
    running = already_applied(session, elder.id)
    if running is not None:
        raise ValidationFailed(running, field_errors={"elder_id": "已有正在办理的入住申请"})

    day = today()
    level = elder.current_disability_level(day)
    phone = next((p for p in (elder.phone, elder.guardian_phone) if p and is_mobile(p)), None)
    register = {
        "elder_name": elder.name,
        "facility_id": facility.id,
        "facility_name": facility.name,
        "elder_age": elder.age_on(day),
        "hukou_type": HukouType(elder.hukou_type).value,
        "tekun": elder.tekun,
        "dibao": elder.dibao,
        "near_dibao": elder.near_dibao,
        "disability_level": level.value if level is not None else "none",
        "entitled_veteran_family": elder.entitled_veteran_family,
        "family_planning_special": elder.family_planning_special,
    }
    if phone:
        register["contact_phone"] = phone
    form = {**{k: v for k, v in register.items() if k not in ("elder_name", "facility_name")}, **answers}
    # Facts from the register are not the applicant's to state.
    form.update({k: register[k] for k in ("facility_id", "elder_age")})
    with session.begin_nested():  # a refused application leaves no case behind
        case = cases.start_case(
            session,
            actor,
            PROCESS_KEY,
            area_code=elder.residence_area_code,
            elder_id=elder.id,
            data={**register, "applied_at": (applied_at or now).isoformat()},
            title=f"{elder.name} 申请入住{facility.name}",
        )
        cases.entrust(session, case, facility.organisation_id)  # the home's staff read it, no other home's
        task = session.scalar(
            select(HumanTask).where(
                HumanTask.case_id == case.id,
                HumanTask.task_spec == "application",
                HumanTask.status == TaskStatus.READY,
            )
        )
        if task is None:
            raise Conflict("入住申请流程没有“受理入住申请”环节，请联系流程管理员")
        tasks.complete(session, actor, task.id, form)
    return case


def check_can_join(session: Session, elder_id: int, *, exclude_case_id: int | None) -> None:
    """Refuse an elder who is already queued somewhere, or banned after too many refusals."""
    session.flush()
    query = select(WaitlistEntry).where(WaitlistEntry.elder_id == elder_id)
    if exclude_case_id is not None:
        query = query.where(WaitlistEntry.case_id != exclude_case_id)
    now = clock.now()
    for entry in session.scalars(query.order_by(WaitlistEntry.id)):
        if entry.status in ACTIVE_STATUSES:
            facility = session.get(Facility, entry.facility_id)
            message = f"该老人已在{facility.name}轮候名单中（{_explain(session, entry)}），不能重复申请"
            raise ValidationFailed(message, field_errors={"facility_id": message})
        if entry.status == EntryStatus.REMOVED and entry.banned_until and entry.banned_until > now:
            message = (
                f"该老人因多次放弃入住或逾期未接受入住评估，已于 {local_text(entry.ended_at, '%Y-%m-%d')} 被移出轮候名单，"
                f"{local_text(entry.banned_until, '%Y-%m-%d')} 前不能重新申请"
            )
            raise ValidationFailed(message, field_errors={"elder_id": message})


def join(
    session: Session, case: Case, *, tier: str, tier_reason: str, facility_id: int, actor: User | None
) -> WaitlistEntry:
    """Put an admission case's applicant on the facility's queue (idempotent per case)."""
    existing = session.scalar(select(WaitlistEntry).where(WaitlistEntry.case_id == case.id))
    if existing is not None:
        return existing
    facility = _facility(session, int(facility_id))
    check_can_join(session, case.elder_id, exclude_case_id=case.id)
    tier_value = Tier(tier)
    entry = WaitlistEntry(
        facility_id=facility.id,
        elder_id=case.elder_id,
        case_id=case.id,
        area_code=case.area_code,
        tier=tier_value,
        tier_rank=TIER_RANK[tier_value],
        tier_reason=tier_reason or "",
        applied_at=application_time(session, case),
        joined_at=clock.now(),
        status=EntryStatus.WAITING,
    )
    session.add(entry)
    session.flush()
    position = position_of(session, entry)
    log_event(
        session,
        entry.facility_id,
        QueueEventKind.JOINED,
        actor,
        entry=entry,
        position=position,
        reason=f"{TIER_LABELS[tier_value]}：{entry.tier_reason}；申请时间 {local_text(entry.applied_at)}",
    )
    return entry


def case_row(session: Session, case) -> Case:
    """The ORM row of a case (message handlers get a lightweight reference on the hot path)."""
    return case if isinstance(case, Case) else session.get(Case, case.id)


def application_time(session: Session, case: Case) -> datetime:
    """When the application was made: as registered by `apply`, else when its application step was done."""
    case = case_row(session, case)
    data = cases.case_data(case)
    if data.get("applied_at"):
        moment = datetime.fromisoformat(data["applied_at"])
        return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)
    done = session.scalar(
        select(HumanTask.completed_at).where(
            HumanTask.case_id == case.id, HumanTask.task_spec == "application"
        )
    )
    return done or case.started_at


def withdraw(session: Session, actor: User, entry_id: int, reason: str) -> WaitlistEntry:
    """Withdraw an application from the queue at the applicant's request (or on death, moving away)."""
    if actor.role not in WITHDRAW_ROLES:
        raise PermissionDenied("您的角色不能撤回入住申请")
    entry = _entry(session, actor, entry_id)
    if not (reason or "").strip():
        raise ValidationFailed("请填写撤回原因", field_errors={"reason": "此项为必填项"})
    if entry.status == EntryStatus.OFFERED:
        raise Conflict("申请人正在接受空床通知，请由养老机构在“登记申请人到场或放弃”中登记放弃")
    if entry.status != EntryStatus.WAITING:
        raise Conflict(f"该申请已不在轮候中（{ENTRY_STATUS_LABELS[entry.status]}）")
    delivered = cases.deliver_message(
        session,
        "admission_withdrawn",
        {"reason": reason.strip(), "by": actor.display_name},
        case_id=entry.case_id,
    )
    session.flush()
    if not delivered:  # the case is not waiting for it (ended by other means): close the entry directly
        close_entry(session, entry, EntryStatus.WITHDRAWN, reason.strip(), actor)
    return entry


# --------------------------------------------------------------------------------------------------
# Vacancies and offers


def register_vacancy(
    session: Session,
    actor: User,
    facility_id: int,
    bed_label: str,
    *,
    vacated_on: datetime | None = None,
    note: str = "",
) -> BedVacancy:
    """Record a bed that became free and offer it to the first applicant in the queue who can take it."""
    if actor.role not in FACILITY_ROLES:
        raise PermissionDenied("只有养老机构管理员可以登记空余床位")
    facility = _facility(session, facility_id)
    access.require_area(actor, facility.area_code)
    if not sees_facility(actor, facility):
        raise PermissionDenied("只能登记本机构的空余床位")
    if not (bed_label or "").strip():
        raise ValidationFailed("请填写床位号", field_errors={"bed_label": "此项为必填项"})
    now = clock.now()
    if vacated_on is not None and vacated_on > now:
        raise ValidationFailed("空床时间不能晚于现在", field_errors={"vacated_on": "空床时间不能晚于现在"})
    vacancy = BedVacancy(
        facility_id=facility.id,
        bed_label=bed_label.strip(),
        vacated_on=vacated_on or now,
        registered_at=now,
        registered_by=actor.id,
        status=VacancyStatus.OPEN,
        note=note,
    )
    session.add(vacancy)
    session.flush()
    log_event(
        session,
        facility.id,
        QueueEventKind.VACANCY_REGISTERED,
        actor,
        vacancy=vacancy,
        reason=f"床位 {vacancy.bed_label} 空出（{local_text(vacancy.vacated_on)}）",
    )
    offer_next(session, vacancy, actor)
    return vacancy


def cancel_vacancy(session: Session, actor: User, vacancy_id: int, reason: str) -> BedVacancy:
    """Take a vacancy back (bed used otherwise) while nobody holds an offer for it."""
    if actor.role not in FACILITY_ROLES:
        raise PermissionDenied("只有养老机构管理员可以撤销空床")
    vacancy = session.get(BedVacancy, vacancy_id) if is_row_id(vacancy_id) else None
    if vacancy is None:
        raise NotFound("空床记录不存在")
    facility = _facility(session, vacancy.facility_id)
    access.require_area(actor, facility.area_code)
    if not sees_facility(actor, facility):
        raise PermissionDenied("只能撤销本机构的空床")
    if vacancy.status != VacancyStatus.OPEN:
        raise Conflict("只有尚未通知申请人的空床可以撤销")
    vacancy.status = VacancyStatus.CANCELLED
    vacancy.note = (vacancy.note + "\n" if vacancy.note else "") + f"撤销：{reason}"
    session.flush()
    return vacancy


def offer_next(session: Session, vacancy: BedVacancy, actor: User | None) -> WaitlistOffer | None:
    """Offer the vacancy to the first entry in order that can take it; log everyone passed over and why."""
    session.flush()
    _lock_queue(session, vacancy.facility_id)
    if vacancy.status not in (VacancyStatus.OPEN, VacancyStatus.OFFERED):
        return None
    earlier = {
        o.entry_id: o
        for o in session.scalars(
            select(WaitlistOffer).where(WaitlistOffer.vacancy_id == vacancy.id).order_by(WaitlistOffer.id)
        )
    }
    for position, entry in enumerate(queue(session, vacancy.facility_id), start=1):
        skip = _skip_reason(session, entry, earlier.get(entry.id))
        if skip:
            log_event(
                session,
                vacancy.facility_id,
                QueueEventKind.SKIPPED,
                actor,
                entry=entry,
                vacancy=vacancy,
                position=position,
                reason=skip,
            )
            continue
        offer = _make_offer(session, vacancy, entry, position, len(earlier) + 1, actor)
        if offer is not None:
            return offer
        earlier[entry.id] = None  # delivery failed: the entry was closed; go on down the queue
    vacancy.status = VacancyStatus.OPEN
    log_event(
        session,
        vacancy.facility_id,
        QueueEventKind.VACANCY_OPEN,
        actor,
        vacancy=vacancy,
        reason="轮候名单中暂无可通知的申请人，空床保留，有新的申请人登记轮候后自动通知",
    )
    session.flush()
    return None


def _skip_reason(session: Session, entry: WaitlistEntry, earlier_offer: WaitlistOffer | None) -> str | None:
    if earlier_offer is not None:
        label = {OfferStatus.DECLINED: "已放弃本床位", OfferStatus.NO_SHOW: "本床位通知后逾期未到场"}.get(
            earlier_offer.status, "本床位已通知过该申请人"
        )
        return f"{label}（{local_text(earlier_offer.offered_at)} 通知）"
    if entry.status == EntryStatus.OFFERED:
        pending = session.scalar(
            select(WaitlistOffer).where(
                WaitlistOffer.entry_id == entry.id,
                WaitlistOffer.status.in_([OfferStatus.PENDING, OfferStatus.ARRIVED]),
            )
        )
        if pending is not None:
            bed = session.get(BedVacancy, pending.vacancy_id)
            return (
                f"正在等待床位 {bed.bed_label} 的入住评估（{date_text(pending.respond_by)} 前），本床位顺延"
            )
        return "正在等待其他床位的入住评估，本床位顺延"
    return None


def _make_offer(session, vacancy, entry, position, seq, actor) -> WaitlistOffer | None:
    now = clock.now()
    respond_by = deadlines.due_at(now, workdays_n=int(setting("arrival_workdays")))
    offer = WaitlistOffer(
        vacancy_id=vacancy.id,
        entry_id=entry.id,
        case_id=entry.case_id,
        seq=seq,
        offered_at=now,
        respond_by=respond_by,
        status=OfferStatus.PENDING,
    )
    session.add(offer)
    entry.status = EntryStatus.OFFERED
    vacancy.status = VacancyStatus.OFFERED
    session.flush()
    refusals = refusals_in_window(session, entry)
    log_event(
        session,
        vacancy.facility_id,
        QueueEventKind.OFFERED,
        actor,
        entry=entry,
        vacancy=vacancy,
        offer=offer,
        position=position,
        reason=f"床位 {vacancy.bed_label} 按轮候顺序通知第{position}位（{TIER_LABELS[entry.tier]}，"
        f"申请时间 {local_text(entry.applied_at)}），须于 {date_text(respond_by)} 前到场接受入住评估",
    )
    facility = session.get(Facility, vacancy.facility_id)
    payload = {
        "offer_id": offer.id,
        "vacancy_id": vacancy.id,
        "facility": facility.name,
        "bed": vacancy.bed_label,
        "offered_at": now.isoformat(),
        "respond_by": respond_by.isoformat(),
        "respond_by_text": date_text(respond_by),
        "position": position,
        "refusals_before": refusals,
        "refusal_limit": int(setting("refusal_limit")),
    }
    delivered = cases.deliver_message(session, "bed_vacated", payload, case_id=entry.case_id)
    session.flush()
    if delivered:
        return offer
    offer.status = OfferStatus.CANCELLED
    offer.reason = "申请人的入住申请案件不在等待空床状态"
    close_entry(session, entry, EntryStatus.WITHDRAWN, "入住申请案件已结束或异常，移出轮候名单", actor)
    return None


def refusals_in_window(session: Session, entry: WaitlistEntry) -> int:
    """How many offers this entry declined or missed within the configured window (before now)."""
    since = clock.now() - timedelta(days=int(setting("refusal_window_days")))
    return (
        session.scalar(
            select(func.count(WaitlistOffer.id)).where(
                WaitlistOffer.entry_id == entry.id,
                WaitlistOffer.status.in_(list(REFUSALS)),
                WaitlistOffer.responded_at >= since,
            )
        )
        or 0
    )


def offer_for_case(session: Session, case: Case, offer_id) -> WaitlistOffer:
    offer = session.get(WaitlistOffer, int(offer_id)) if offer_id is not None else None
    if offer is None or offer.case_id != case.id:
        raise NotFound("空床通知记录不存在")
    return offer


def entry_for_case(session: Session, case: Case) -> WaitlistEntry:
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.case_id == case.id))
    if entry is None:
        raise NotFound("该案件没有轮候登记")
    return entry


def record_arrival(session: Session, case: Case, offer_id, actor: User | None) -> WaitlistOffer:
    offer = offer_for_case(session, case, offer_id)
    offer.status = OfferStatus.ARRIVED
    offer.responded_at = clock.now()
    entry = session.get(WaitlistEntry, offer.entry_id)
    log_event(
        session,
        entry.facility_id,
        QueueEventKind.ARRIVED,
        actor,
        entry=entry,
        vacancy_id=offer.vacancy_id,
        offer=offer,
        reason="申请人已到场接受入住评估",
    )
    session.flush()
    return offer


def record_refusal(
    session: Session, case: Case, offer_id, outcome: str, note: str, actor: User | None, *, remove: bool
) -> WaitlistOffer:
    """Record a decline or no-show; keep the applicant's place, or remove them (with the ban); pass the bed on."""
    offer = offer_for_case(session, case, offer_id)
    status = OfferStatus.NO_SHOW if outcome == "no_show" else OfferStatus.DECLINED
    offer.status = status
    offer.responded_at = clock.now()
    offer.reason = note or ("逾期未到场" if status == OfferStatus.NO_SHOW else "放弃入住")
    entry = session.get(WaitlistEntry, offer.entry_id)
    session.flush()
    count = refusals_in_window(session, entry)
    kind = QueueEventKind.NO_SHOW if status == OfferStatus.NO_SHOW else QueueEventKind.DECLINED
    limit = int(setting("refusal_limit"))
    log_event(
        session,
        entry.facility_id,
        kind,
        actor,
        entry=entry,
        vacancy_id=offer.vacancy_id,
        offer=offer,
        reason=f"{offer.reason}（{int(setting('refusal_window_days'))}天内第{count}次，满{limit}次移出轮候名单）",
    )
    if remove:
        ban_days = int(setting("ban_days"))
        reason = f"{int(setting('refusal_window_days'))}天内{count}次放弃入住或逾期未接受入住评估"
        close_entry(session, entry, EntryStatus.REMOVED, reason, actor)
        if ban_days > 0:
            entry.banned_until = clock.now() + timedelta(days=ban_days)
    else:
        entry.status = EntryStatus.WAITING
    session.flush()
    pass_on(session, offer, actor)
    return offer


def record_unsuitable(
    session: Session, case: Case, offer_id, reason: str, actor: User | None
) -> WaitlistOffer:
    offer = offer_for_case(session, case, offer_id)
    offer.status = OfferStatus.UNSUITABLE
    offer.responded_at = offer.responded_at or clock.now()
    offer.reason = reason or "入住评估不宜入住"
    entry = session.get(WaitlistEntry, offer.entry_id)
    close_entry(
        session,
        entry,
        EntryStatus.NOT_ADMITTED,
        offer.reason,
        actor,
        offer=offer,
        kind=QueueEventKind.UNSUITABLE,
    )
    pass_on(session, offer, actor)
    return offer


def record_admission(
    session: Session, case: Case, offer_id, admitted_on: str | None, bed: str | None, actor: User | None
) -> WaitlistOffer:
    offer = offer_for_case(session, case, offer_id)
    now = clock.now()
    offer.status = OfferStatus.ADMITTED
    offer.responded_at = offer.responded_at or now
    vacancy = session.get(BedVacancy, offer.vacancy_id)
    vacancy.status = VacancyStatus.FILLED
    vacancy.filled_at = now
    vacancy.filled_by_entry_id = offer.entry_id
    entry = session.get(WaitlistEntry, offer.entry_id)
    close_entry(
        session,
        entry,
        EntryStatus.ADMITTED,
        f"{admitted_on or local_text(now, '%Y-%m-%d')} 入住床位 {bed or vacancy.bed_label}",
        actor,
        offer=offer,
        kind=QueueEventKind.ADMITTED,
    )
    return offer


def pass_on(session: Session, offer: WaitlistOffer, actor: User | None) -> WaitlistOffer | None:
    """The applicant will not take this bed: offer it to the next in order."""
    vacancy = session.get(BedVacancy, offer.vacancy_id)
    return offer_next(session, vacancy, actor)


def close_entry(
    session: Session,
    entry: WaitlistEntry,
    status: EntryStatus,
    reason: str,
    actor: User | None,
    *,
    offer: WaitlistOffer | None = None,
    kind: QueueEventKind | None = None,
) -> None:
    entry.status = status
    entry.ended_at = clock.now()
    entry.end_reason = reason
    kind = (
        kind
        or {
            EntryStatus.REMOVED: QueueEventKind.REMOVED,
            EntryStatus.WITHDRAWN: QueueEventKind.WITHDRAWN,
            EntryStatus.NOT_ADMITTED: QueueEventKind.UNSUITABLE,
            EntryStatus.ADMITTED: QueueEventKind.ADMITTED,
        }[status]
    )
    log_event(
        session,
        entry.facility_id,
        kind,
        actor,
        entry=entry,
        offer=offer,
        vacancy_id=offer.vacancy_id if offer is not None else None,
        reason=reason,
    )
    session.flush()


# --------------------------------------------------------------------------------------------------
# The queue and its explanation


@dataclass
class Position:
    """One line of a queue as shown to staff."""

    position: int
    entry_id: int
    facility_id: int
    elder_id: int
    elder_name: str  # masked when the elder lives outside the reader's area
    tier: Tier
    tier_label: str
    applied_at: datetime
    status: EntryStatus
    status_label: str
    explanation: str
    case_id: int | None = None


def queue(session: Session, facility_id: int) -> list[WaitlistEntry]:
    """The facility's queue in order: tier, application time, entry id."""
    session.flush()
    return list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.facility_id == facility_id, WaitlistEntry.status.in_(list(ACTIVE_STATUSES)))
            .order_by(WaitlistEntry.tier_rank, WaitlistEntry.applied_at, WaitlistEntry.id)
        )
    )


def position_of(session: Session, entry: WaitlistEntry) -> int | None:
    for position, other in enumerate(queue(session, entry.facility_id), start=1):
        if other.id == entry.id:
            return position
    return None


def waitlist(session: Session, actor: User, facility_or_area: int | str | Facility) -> list[Position]:
    """The full ordered queue of a facility (id or object), or of every facility located in an area (code)."""
    _require_reader(actor)
    if isinstance(facility_or_area, Facility):
        facilities = [facility_or_area]
    elif isinstance(facility_or_area, int):
        facilities = [_facility(session, facility_or_area)]
    else:
        code = str(facility_or_area)
        facilities = list(
            session.scalars(select(Facility).where(Facility.area_code.startswith(code)).order_by(Facility.id))
        )
    lines = []
    for facility in facilities:
        if not sees_facility(actor, facility):
            raise PermissionDenied("无权查看其他辖区养老机构的轮候名单")
        entries = queue(session, facility.id)
        for position, entry in enumerate(entries, start=1):
            elder = session.get(Elder, entry.elder_id)
            name = elder.name if access.covers(actor, entry.area_code) else mask_name(elder.name)
            lines.append(
                Position(
                    position=position,
                    entry_id=entry.id,
                    facility_id=facility.id,
                    elder_id=entry.elder_id,
                    elder_name=name,
                    tier=entry.tier,
                    tier_label=TIER_LABELS[entry.tier],
                    applied_at=entry.applied_at,
                    status=entry.status,
                    status_label=ENTRY_STATUS_LABELS[entry.status],
                    explanation=_explain(session, entry, entries),
                    case_id=entry.case_id,
                )
            )
    return lines


def explain_position(session: Session, actor: User, entry_id: int) -> str:
    """Tell an applicant where they are and why, e.g. `第7位：优先保障，申请时间 2025-03-02 10:15`."""
    _require_reader(actor)
    return _explain(session, _entry(session, actor, entry_id))


def _explain(session: Session, entry: WaitlistEntry, entries: Sequence[WaitlistEntry] | None = None) -> str:
    if entry.status not in ACTIVE_STATUSES:
        return _explain_ended(entry)
    entries = list(entries) if entries is not None else queue(session, entry.facility_id)
    index = next(i for i, e in enumerate(entries) if e.id == entry.id)
    text = f"第{index + 1}位：{TIER_LABELS[entry.tier]}，申请时间 {local_text(entry.applied_at)}"
    notes = []
    if index > 0 and _tied(entries[index - 1], entry):
        notes.append(
            f"与第{index}位同类别、同申请时间，按登记先后（登记号 {entries[index - 1].id} 在前）排在其后"
        )
    if index + 1 < len(entries) and _tied(entry, entries[index + 1]):
        notes.append(f"与第{index + 2}位同类别、同申请时间，按登记先后（登记号 {entry.id} 在前）排在其前")
    if entry.status == EntryStatus.OFFERED:
        pending = session.scalar(
            select(WaitlistOffer).where(
                WaitlistOffer.entry_id == entry.id,
                WaitlistOffer.status.in_([OfferStatus.PENDING, OfferStatus.ARRIVED]),
            )
        )
        if pending is not None:
            bed = session.get(BedVacancy, pending.vacancy_id)
            notes.append(
                f"已通知床位 {bed.bed_label}，须于 {date_text(pending.respond_by)} 前到场接受入住评估"
                if pending.status == OfferStatus.PENDING
                else f"已到场接受床位 {bed.bed_label} 的入住评估"
            )
    refusals = refusals_in_window(session, entry)
    if refusals:
        notes.append(
            f"{int(setting('refusal_window_days'))}天内已放弃或逾期未到 {refusals} 次"
            f"（满 {int(setting('refusal_limit'))} 次将移出轮候名单）"
        )
    return text + ("；" + "；".join(notes) if notes else "")


def _tied(a: WaitlistEntry, b: WaitlistEntry) -> bool:
    return a.tier == b.tier and a.applied_at == b.applied_at


def _explain_ended(entry: WaitlistEntry) -> str:
    when = local_text(entry.ended_at, "%Y-%m-%d") if entry.ended_at else ""
    text = f"{ENTRY_STATUS_LABELS[entry.status]}（{when}）"
    if entry.end_reason:
        text += f"：{entry.end_reason}"
    if entry.status == EntryStatus.REMOVED and entry.banned_until and entry.banned_until > clock.now():
        text += f"；{local_text(entry.banned_until, '%Y-%m-%d')} 前不能重新申请"
    return text


def queue_log(
    session: Session,
    actor: User,
    facility_id: int,
    *,
    entry_id: int | None = None,
    vacancy_id: int | None = None,
) -> list[WaitlistEvent]:
    """The audit log of a facility's queue (optionally of one entry or one vacancy), oldest first."""
    _require_reader(actor)
    facility = _facility(session, facility_id)
    if not sees_facility(actor, facility):
        raise PermissionDenied("无权查看其他辖区养老机构的轮候记录")
    query = select(WaitlistEvent).where(WaitlistEvent.facility_id == facility_id)
    if entry_id is not None:
        query = query.where(WaitlistEvent.entry_id == entry_id)
    if vacancy_id is not None:
        query = query.where(WaitlistEvent.vacancy_id == vacancy_id)
    session.flush()
    return list(session.scalars(query.order_by(WaitlistEvent.id)))


@dataclass
class NoticeCheck:
    """Whether one offer reached the applicant within the notification deadline (default 2 days)."""

    offer_id: int
    entry_id: int
    seq: int
    bed_free_since: datetime  # the vacancy's time for the first offer; when it passed on for later ones
    deadline: datetime
    queued_at: datetime | None
    sent_at: datetime | None
    message_status: str | None
    within_deadline: bool


def notification_report(session: Session, actor: User, vacancy_id: int) -> list[NoticeCheck]:
    """For each offer of a vacancy: when the bed became free for that applicant, and when the SMS was sent."""
    _require_reader(actor)
    vacancy = session.get(BedVacancy, vacancy_id) if is_row_id(vacancy_id) else None
    if vacancy is None:
        raise NotFound("空床记录不存在")
    if not sees_facility(actor, _facility(session, vacancy.facility_id)):
        raise PermissionDenied("无权查看其他辖区养老机构的记录")
    session.flush()
    days = int(setting("notify_within_days"))
    checks = []
    free_since = vacancy.vacated_on
    offers = session.scalars(
        select(WaitlistOffer).where(WaitlistOffer.vacancy_id == vacancy.id).order_by(WaitlistOffer.seq)
    )
    for offer in offers:
        message = session.get(OutboxMessage, offer.message_id) if offer.message_id else None
        deadline = free_since + timedelta(days=days)
        sent = message.sent_at if message is not None and message.status == OutboxStatus.SENT else None
        checks.append(
            NoticeCheck(
                offer_id=offer.id,
                entry_id=offer.entry_id,
                seq=offer.seq,
                bed_free_since=free_since,
                deadline=deadline,
                queued_at=message.queued_at if message is not None else None,
                sent_at=sent,
                message_status=message.status.value if message is not None else None,
                within_deadline=sent is not None and sent <= deadline,
            )
        )
        if offer.responded_at is not None:
            free_since = offer.responded_at
    return checks


# --------------------------------------------------------------------------------------------------
# Background work


def offer_open_vacancies(session: Session, *, limit: int = 500) -> int:
    """Offer vacancies that stayed open (nobody could take them) now that someone may be waiting."""
    session.flush()
    done = 0
    for vacancy in session.scalars(
        select(BedVacancy).where(BedVacancy.status == VacancyStatus.OPEN).order_by(BedVacancy.id).limit(limit)
    ).all():
        # Only someone who has not had this bed offered yet can change anything (and no skip is re-logged).
        offered_before = select(WaitlistOffer.entry_id).where(WaitlistOffer.vacancy_id == vacancy.id)
        waiting = session.scalar(
            select(func.count(WaitlistEntry.id)).where(
                WaitlistEntry.facility_id == vacancy.facility_id,
                WaitlistEntry.status == EntryStatus.WAITING,
                WaitlistEntry.id.not_in(offered_before),
            )
        )
        if waiting and offer_next(session, vacancy, None) is not None:
            done += 1
    return done


def reconcile(session: Session, *, limit: int = 50) -> int:
    """Close queue entries whose admission case ended without telling the queue (e.g. cancelled by staff)."""
    session.flush()
    stale = session.scalars(
        select(WaitlistEntry)
        .join(Case, Case.id == WaitlistEntry.case_id)
        .where(WaitlistEntry.status.in_(list(ACTIVE_STATUSES)), Case.status != CaseStatus.RUNNING)
        .order_by(WaitlistEntry.id)
        .limit(limit)
    ).all()
    for entry in stale:
        pending = session.scalars(
            select(WaitlistOffer).where(
                WaitlistOffer.entry_id == entry.id,
                WaitlistOffer.status.in_([OfferStatus.PENDING, OfferStatus.ARRIVED]),
            )
        ).all()
        close_entry(session, entry, EntryStatus.WITHDRAWN, "入住申请案件已终止，移出轮候名单", None)
        for offer in pending:
            offer.status = OfferStatus.CANCELLED
            offer.responded_at = clock.now()
            offer.reason = "入住申请案件已终止"
            session.flush()
            pass_on(session, offer, None)
    return len(stale)


# --------------------------------------------------------------------------------------------------
# Helpers


def _lock_queue(session: Session, facility_id: int) -> None:
    """Serialise offers from one facility's queue (two beds freed at once must not go to the same person)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Facility.id).where(Facility.id == facility_id).with_for_update())


def _require_reader(actor: User) -> None:
    if not actor.is_active or actor.role not in READ_ROLES:
        raise PermissionDenied("您的角色不能查看轮候名单")


def _entry(session: Session, actor: User, entry_id: int) -> WaitlistEntry:
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None:
        raise NotFound("轮候记录不存在")
    facility = _facility(session, entry.facility_id)
    facility_staff = actor.role in (Role.FACILITY_ADMIN, Role.APPROVER, Role.AUDITOR, Role.ADMIN) and (
        facility.area_code.startswith(actor.area_code)
    )
    if actor.role == Role.FACILITY_ADMIN and not sees_facility(actor, facility):
        raise PermissionDenied("只能查看本机构的轮候记录")
    if not (access.covers(actor, entry.area_code) or facility_staff):
        raise PermissionDenied("无权查看其他辖区的轮候记录")
    return entry


def log_event(
    session: Session,
    facility_id: int,
    kind: QueueEventKind,
    actor: User | None,
    *,
    entry: WaitlistEntry | None = None,
    vacancy: BedVacancy | None = None,
    vacancy_id: int | None = None,
    offer: WaitlistOffer | None = None,
    position: int | None = None,
    reason: str = "",
) -> WaitlistEvent:
    event = WaitlistEvent(
        facility_id=facility_id,
        entry_id=entry.id if entry is not None else None,
        vacancy_id=vacancy.id if vacancy is not None else vacancy_id,
        offer_id=offer.id if offer is not None else None,
        kind=kind,
        position=position,
        reason=reason,
        at=clock.now(),
        actor_id=actor.id if actor is not None else None,
    )
    session.add(event)
    return event


def refuse_application(payload: Mapping) -> tuple[str, dict[str, str]]:
    """The diagram found the applicant ineligible: the message and the field it concerns."""
    field = payload.get("field") or "elder_age"
    reason = payload.get("reason") or "不符合轮候入住公办养老机构的申请条件"
    if field == "elder_age" and payload.get("elder_age") is not None:
        reason = f"{reason}（申请人现年{payload['elder_age']}周岁）"
    return reason, {field: reason}


# --------------------------------------------------------------------------------------------------
# Starting an application from the page


# What `apply` takes from the register itself: not the applicant's to state on the form.
_REGISTER_FIELDS = frozenset(
    {
        "elder_age",
        "hukou_type",
        "tekun",
        "dibao",
        "near_dibao",
        "disability_level",
        "entitled_veteran_family",
        "family_planning_special",
    }
)


def application_form(session: Session, actor: User, schema: dict) -> dict:
    """The diagram's application form as the start page shows it: without the register's facts and the
    uploads (those go on the case page), with the facilities the actor may choose from."""
    props = {
        k: v
        for k, v in (schema.get("properties") or {}).items()
        if k not in _REGISTER_FIELDS and v.get("format") != "data-url"
    }
    if "facility_id" in props:
        facilities = list_facilities(session, actor)
        props["facility_id"] = {**props["facility_id"], "title": "申请入住的公办养老机构"}
        if facilities:
            props["facility_id"]["oneOf"] = [{"const": f.id, "title": f.name} for f in facilities]
    return {
        **schema,
        "properties": props,
        "required": [k for k in schema.get("required") or [] if k in props],
    }


def start_for_elder(session: Session, actor: User, elder: Elder, data: Mapping) -> Case:
    """Apply for the elder from the start page's form (the starter of the process)."""
    answers = dict(data)
    facility_id = answers.pop("facility_id", None)
    if not is_row_id(facility_id):
        message = "请选择申请入住的养老机构"
        raise ValidationFailed(message, field_errors={"facility_id": message})
    return apply(session, actor, elder.id, facility_id, answers)


def offer_and_reconcile(session: Session) -> int:
    """The admission job: offer beds that stayed free, close queue entries whose case ended elsewhere."""
    return offer_open_vacancies(session) + reconcile(session)


# --------------------------------------------------------------------------------------------------
# The working-day calendar changed


def recount_offers(session: Session, change) -> list:
    """Count the arrival deadline of every pending offer across a changed year again: the offer, the case's
    timer and what its open step shows move together, and the queue's log and the case's trail say so."""
    from_now = clock.now()
    pending = session.scalars(
        select(WaitlistOffer)
        .join(Case, Case.id == WaitlistOffer.case_id)
        .where(
            WaitlistOffer.status == OfferStatus.PENDING,
            WaitlistOffer.respond_by >= from_now - timedelta(days=1),
            Case.status == CaseStatus.RUNNING,
        )
        .order_by(WaitlistOffer.id)
    ).all()
    moved = []
    days = int(setting("arrival_workdays"))
    for offer in pending:
        if not change.touches(offer.offered_at, offer.respond_by):
            continue
        old, new = change.due(offer.offered_at, days)
        if old != offer.respond_by or new == offer.respond_by:
            continue
        offer.respond_by = new
        entry = session.get(WaitlistEntry, offer.entry_id)
        text = f"{change.note()}：到场接受入住评估的期限由 {date_text(old)} 调整为 {date_text(new)}"
        log_event(
            session,
            entry.facility_id,
            QueueEventKind.DEADLINE_CHANGED,
            change.actor,
            entry=entry,
            vacancy_id=offer.vacancy_id,
            offer=offer,
            reason=text,
        )
        session.flush()
        case = session.get(Case, offer.case_id)
        shown = dict(cases.case_data(case).get("offer") or {})
        shown.update(respond_by=new.isoformat(), respond_by_text=date_text(new))
        cases.advance(
            session,
            case,
            lambda inst, when=new.isoformat(), data={"offer": shown}: inst.reschedule_timer(
                ARRIVAL_DEADLINE, when, data
            ),
            actor=change.actor,
            events=[
                {
                    "kind": EventKind.DEADLINE_CHANGED,
                    "comment": text,
                    "detail": {"offer_id": offer.id, "old": old.isoformat(), "new": new.isoformat()},
                }
            ],
        )
        moved.append(Moved(case.id, None, "到场接受入住评估期限", old, new))
    return moved
