"""Visiting care for vulnerable elders (特殊困难老年人探访关爱), seed 004 §二(一), §三(一).

Enrolling starts a `visiting_care` case: the `visit_frequency` table sets the minimum frequency, the township
confirms (the elder must agree), and the enrolment stays until death, moving away or withdrawal. Each visit
period is a short `visiting_care_visit` case opened by `open_due_visits` (the process's job) and assigned to the
village assistant; a period without a visit turns overdue and goes to the township.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ... import cases, clock, elders, enrolments, tasks
from ...clock import as_date, month_end
from ...errors import Conflict, NotFound, ValidationFailed
from ...models import Case, CaseStatus, Role, User
from ...models.care import (
    EnrolmentStatus,
    Visit,
    VisitFrequency,
    VisitingEnrolment,
    VisitMethod,
    VisitStatus,
)
from ...models.elders import Elder, ElderStatus
from ...rules.assessment import DisabilityLevel
from ..home_care import enrolment as home_care
from .helpers import FREQUENCIES

PROCESS_KEY = "visiting_care"
VISIT_PROCESS_KEY = "visiting_care_visit"
ADAPTATION_PROCESS_KEY = "home_adaptation"
ENROL_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ADMIN})
WITHDRAW_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.APPROVER, Role.ADMIN})
# The groups seed 004 names (独居、空巢、留守、失能、重残、计划生育特殊家庭), and 分散供养特困 (seed 000).
CATEGORY_LABELS = {
    "home_support": "分散供养特困",
    "living_alone": "独居",
    "empty_nest": "空巢",
    "left_behind": "留守",
    "disabled": "失能",
    "severe_handicap": "重残",
    "family_planning_special": "计划生育特殊家庭",
}
METHOD_LABELS = {
    "phone": "电话探访",
    "online": "视频（线上）探访",
    "encounter": "路遇探访",
    "home": "入户探访",
}
# Fortnightly periods are counted from a fixed Monday, so every enrolment's fortnights line up.
FORTNIGHT_EPOCH = date(2024, 1, 1)


# --------------------------------------------------------------------------------------------------
# Periods


def period_of(day: date, frequency: VisitFrequency | str) -> tuple[date, date]:
    """The visit period containing `day`: a Monday–Sunday week, an aligned fortnight, or a calendar month."""
    frequency = VisitFrequency(frequency)
    if frequency == VisitFrequency.WEEKLY:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if frequency == VisitFrequency.FORTNIGHTLY:
        start = day - timedelta(days=(day - FORTNIGHT_EPOCH).days % 14)
        return start, start + timedelta(days=13)
    return day.replace(day=1), month_end(day)


def period_label(start: date, end: date) -> str:
    return f"{start.isoformat()} 至 {end.isoformat()}"


# --------------------------------------------------------------------------------------------------
# Enrolling


def categories_of(elder: Elder, level: DisabilityLevel | None) -> list[str]:
    """Why an elder counts as vulnerable (empty: not on the list)."""
    found = [
        flag for flag in ("home_support", "living_alone", "empty_nest", "left_behind") if getattr(elder, flag)
    ]
    if level is not None and level != DisabilityLevel.INTACT:
        found.append("disabled")
    found += [flag for flag in ("severe_handicap", "family_planning_special") if getattr(elder, flag)]
    return found


def enrolment_seed(elder: Elder, today: date, note: str = "") -> dict:
    """The case data an enrolment starts from: the elder's attributes the `visit_frequency` table reads."""
    level = elder.current_disability_level(today)
    categories = categories_of(elder, level)
    return {
        "elder_name": elder.name,
        "home_support": bool(elder.home_support),
        "disability_level": level.value if level else None,
        "living_alone": bool(elder.living_alone),
        "empty_nest": bool(elder.empty_nest),
        "left_behind": bool(elder.left_behind),
        "severe_handicap": bool(elder.severe_handicap),
        "family_planning_special": bool(elder.family_planning_special),
        "categories": categories,
        "categories_label": "、".join(CATEGORY_LABELS[c] for c in categories) or "无",
        "request_note": note,
    }


def active_enrolment(session: Session, elder_id: int) -> VisitingEnrolment | None:
    return session.scalar(
        select(VisitingEnrolment).where(
            VisitingEnrolment.elder_id == elder_id, VisitingEnrolment.status == EnrolmentStatus.ACTIVE
        )
    )


def already_proposed(session: Session, elder_id: int) -> str | None:
    """One enrolment case under way per elder (the core asks this, under a lock, before starting one)."""
    running = session.scalar(
        select(Case.id).where(
            Case.process_key == PROCESS_KEY, Case.elder_id == elder_id, Case.status == CaseStatus.RUNNING
        )
    )
    if running is None:
        return None
    return f"{session.get(Elder, elder_id).name}已有在办的探访关爱登记（案件 #{running}）"


def enrol_visiting_care(session: Session, actor: User, elder_id: int, note: str = "") -> Case:
    """Propose an elder for visiting care (after the village's survey 摸排); the township confirms."""
    elders.require_role(actor, ENROL_ROLES, "登记探访关爱对象")
    elder = elders.get_elder(session, actor, elder_id)
    if elder.status != ElderStatus.ACTIVE:
        raise Conflict(f"{elder.name}的档案状态为{elders.STATUS_LABELS[elder.status]}，不能纳入探访")
    if active_enrolment(session, elder.id) is not None:
        raise Conflict(f"{elder.name}已是探访关爱对象")
    return cases.start_case(  # which refuses a second enrolment under way (`already_proposed`)
        session,
        actor,
        PROCESS_KEY,
        area_code=elder.residence_area_code,
        elder_id=elder.id,
        data=enrolment_seed(elder, clock.today(), note),
        title=f"探访关爱：{elder.name}",
    )


def enrol(session: Session, case, payload: Mapping) -> VisitingEnrolment:
    """Put the elder on the visiting list (effect of `enrol_visiting_care`); the current period is due now."""
    elder_id = int(payload["elder_id"])
    if active_enrolment(session, elder_id) is not None:
        raise Conflict("该老人已是探访关爱对象，不能重复纳入")
    frequency = VisitFrequency(payload["frequency"])
    today, now = clock.today(), clock.now()
    enrolment = VisitingEnrolment(
        elder_id=elder_id,
        case_id=case.id,
        area_code=case.area_code,
        status=EnrolmentStatus.ACTIVE,
        frequency=frequency,
        categories=json.dumps(list(payload.get("categories") or []), ensure_ascii=False),
        started_on=today,
        next_period_start=period_of(today, frequency)[0],
        created_at=now,
        updated_at=now,
    )
    session.add(enrolment)
    session.flush()
    return enrolment


def change_frequency(session: Session, case, payload: Mapping) -> VisitingEnrolment:
    """Set the frequency confirmed at the yearly review (effect of `update_visiting_frequency`)."""
    enrolment = session.scalar(
        select(VisitingEnrolment).where(
            VisitingEnrolment.case_id == case.id, VisitingEnrolment.status == EnrolmentStatus.ACTIVE
        )
    )
    if enrolment is None:
        raise NotFound(f"案件 #{case.id} 没有在册的探访关爱登记")
    enrolment.frequency = VisitFrequency(payload["frequency"])
    enrolment.updated_at = clock.now()
    session.flush()
    return enrolment


def end_enrolment(session: Session, case, payload: Mapping) -> VisitingEnrolment | None:
    """Take the elder off the list (effect of `end_visiting_care`); no further periods open."""
    return enrolments.end_active(session, VisitingEnrolment, case, payload)


def withdraw(session: Session, actor: User, elder_id: int, reason: str) -> list[int]:
    """Record the elder's wish to stop being visited: the enrolment case ends it."""
    return enrolments.request_withdrawal(
        session,
        actor,
        elder_id,
        reason,
        message="visiting_care_withdrawn",
        roles=WITHDRAW_ROLES,
        action="办理退出探访",
        nothing_running="{name}不是在册的探访关爱对象",
    )


def visit_seed(enrolment: VisitingEnrolment, elder: Elder, start: date, end: date) -> dict:
    frequency = VisitFrequency(enrolment.frequency)
    return {
        "enrolment_id": enrolment.id,
        "elder_name": elder.name,
        "elder_address": elder.address,
        "elder_phone": elder.phone or "",
        "visit_frequency": frequency.value,
        "visit_frequency_label": FREQUENCIES[frequency.value],
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
    }


def open_visit(session: Session, enrolment: VisitingEnrolment, period_start: date) -> Visit:
    """Open the visit period starting `period_start` (one short case, for the village assistant); idempotent."""
    start, end = period_of(period_start, enrolment.frequency)
    existing = session.scalar(
        select(Visit).where(Visit.enrolment_id == enrolment.id, Visit.period_start == start)
    )
    if existing is not None:
        return existing
    elder = session.get(Elder, enrolment.elder_id)
    # The row first: a period opened late (after a worker outage) turns overdue as its case starts.
    visit = Visit(
        enrolment_id=enrolment.id,
        elder_id=enrolment.elder_id,
        area_code=enrolment.area_code,
        period_start=start,
        period_end=end,
        status=VisitStatus.DUE,
        created_at=clock.now(),
    )
    session.add(visit)
    session.flush()
    case = cases.start_case(
        session,
        None,
        VISIT_PROCESS_KEY,
        area_code=enrolment.area_code,
        elder_id=enrolment.elder_id,
        data=visit_seed(enrolment, elder, start, end),
        title=f"探访（{period_label(start, end)}）：{elder.name}",
        parent_case_id=enrolment.case_id,
    )
    visit.case_id = case.id
    enrolments.set_due(session, case.id, "record_visit", end)
    session.flush()
    return visit


def open_due_visits(session: Session, *, limit: int = 50) -> int:
    """Open every visit period that has begun for an active enrolment (one batch); return how many."""

    def open_next(session: Session, enrolment: VisitingEnrolment) -> date:
        visit = open_visit(session, enrolment, enrolment.next_period_start)
        return visit.period_end + timedelta(days=1)

    return enrolments.open_due(
        session, VisitingEnrolment, VisitingEnrolment.next_period_start, open_next, limit=limit
    )


def check_visit(data: Mapping, period_start, today: date) -> dict[str, str]:
    """Field errors for a visit record: the date inside the period (or late, after it), never in the future."""
    errors: dict[str, str] = {}
    try:
        day = as_date(data.get("visited_on"))
    except ValueError:
        return {"visited_on": "请填写探访日期（YYYY-MM-DD）"}
    start = as_date(period_start)
    if day > today:
        errors["visited_on"] = "探访日期不能晚于今天"
    elif day < start:
        errors["visited_on"] = (
            f"探访日期 {day.isoformat()} 早于本期开始日期 {start.isoformat()}，请在对应的探访期填报"
        )
    if data.get("method") not in METHOD_LABELS:
        errors["method"] = "探访方式须为电话、视频（线上）、路遇或入户"
    return errors


def submit_visit(session: Session, actor: User, task_id: str, data: dict) -> cases.Outcome:
    """Complete the village assistant's visit record after checking the date; nothing is written when refused.

    The checks themselves run inside `tasks.complete` (declared with the process), for every caller.
    """
    return tasks.complete(session, actor, task_id, data)


def _visit_of(session: Session, payload: Mapping) -> Visit:
    visit = session.scalar(
        select(Visit).where(
            Visit.enrolment_id == int(payload["enrolment_id"]),
            Visit.period_start == as_date(payload["period_start"]),
        )
    )
    if visit is None:
        raise NotFound("找不到该探访期的登记")
    return visit


def record_visit(session: Session, case, payload: Mapping, actor: User | None) -> Visit:
    """Store a visit record (effect of `visit_recorded`): done, or done late after being flagged overdue."""
    visit = _visit_of(session, payload)
    findings = dict(payload.get("findings") or {})
    visit.status = VisitStatus.DONE_LATE if visit.status == VisitStatus.OVERDUE else VisitStatus.DONE
    visit.visited_on = as_date(payload["visited_on"])
    visit.method = VisitMethod(payload["method"])
    visit.visitor_id = actor.id if actor is not None else None
    visit.services = json.dumps(list(payload.get("services_provided") or []), ensure_ascii=False)
    visit.findings = json.dumps(findings, ensure_ascii=False)
    visit.emergency = bool(findings.get("emergency"))
    visit.recorded_at = clock.now()
    enrolment = session.get(VisitingEnrolment, visit.enrolment_id)
    if enrolment.last_visited_on is None or visit.visited_on > enrolment.last_visited_on:
        enrolment.last_visited_on = visit.visited_on
        enrolment.updated_at = clock.now()
    session.flush()
    return visit


def mark_overdue(session: Session, case, payload: Mapping) -> Visit:
    """Flag a period that ended without a visit (effect of `visit_overdue`)."""
    visit = _visit_of(session, payload)
    if visit.status == VisitStatus.DUE:
        visit.status = VisitStatus.OVERDUE
        visit.overdue_at = clock.now()
        session.flush()
    return visit


def _note_referral(session: Session, case, entry: dict) -> None:
    visit = session.scalar(select(Visit).where(Visit.case_id == case.id))
    if visit is not None:
        visit.referrals = json.dumps([*json.loads(visit.referrals or "[]"), entry], ensure_ascii=False)
        session.flush()


def refer_home_adaptation(session: Session, case, payload: Mapping, actor: User | None) -> dict:
    """Start a home-adaptation application for the elder a visit found in need (by process key)."""
    elder = session.get(Elder, int(payload["elder_id"]))
    entry: dict = {"process": ADAPTATION_PROCESS_KEY}
    running = session.scalar(
        select(Case).where(
            Case.process_key == ADAPTATION_PROCESS_KEY,
            Case.elder_id == elder.id,
            Case.status == CaseStatus.RUNNING,
        )
    )
    if running is not None:
        entry.update(skipped=f"已有在办的适老化改造申请（案件 #{running.id}）", case_id=running.id)
    else:
        try:
            started = cases.start_case(
                session,
                actor,
                ADAPTATION_PROCESS_KEY,
                area_code=elder.residence_area_code,
                elder_id=elder.id,
                data={
                    "elder_name": elder.name,
                    "elder_age": elder.age_on(clock.today()),
                    "referred_by": "visiting_care",
                    "referral_case_id": case.id,
                    "referral_note": payload.get("note") or "",
                },
                title=f"家庭适老化改造申请（探访转介）：{elder.name}",
            )
        except NotFound:
            # A county that has not deployed the adaptation process: the visit stands, the need is kept.
            entry.update(skipped="适老化改造流程尚未部署，需求已记录")
        else:
            entry.update(case_id=started.id)
    _note_referral(session, case, entry)
    return entry


def refer_home_care(session: Session, case, payload: Mapping, actor: User | None) -> dict:
    """Apply for purchased home care on behalf of the elder a visit found in need."""
    entry: dict = {"process": home_care.PROCESS_KEY}
    if actor is None:
        entry.update(skipped="无办理人，未能代办")
    else:
        started, why = home_care.refer(session, actor, int(payload["elder_id"]), payload.get("note") or "")
        entry.update({"case_id": started.id} if started is not None else {"skipped": why})
    _note_referral(session, case, entry)
    return entry


def visit_rate(session: Session, area_code: str, month: date) -> dict:
    """The monthly visit rate (月探访率) of an area: enrolled elders visited at least once in the month."""
    first, last = month.replace(day=1), month_end(month)
    enrolled = session.scalars(
        select(VisitingEnrolment.elder_id).where(
            elders.in_area(VisitingEnrolment.area_code, area_code),
            VisitingEnrolment.started_on <= last,
            or_(VisitingEnrolment.ended_on.is_(None), VisitingEnrolment.ended_on >= first),
        )
    ).all()
    enrolled_ids = set(enrolled)
    visited = (
        set(
            session.scalars(
                select(func.distinct(Visit.elder_id)).where(
                    elders.in_area(Visit.area_code, area_code),
                    Visit.visited_on >= first,
                    Visit.visited_on <= last,
                )
            ).all()
        )
        & enrolled_ids
    )
    rate = (
        (Decimal(len(visited)) / Decimal(len(enrolled_ids))).quantize(Decimal("0.0001"))
        if enrolled_ids
        else None
    )
    return {"enrolled": len(enrolled_ids), "visited": len(visited), "rate": rate}


# --------------------------------------------------------------------------------------------------
# What the process declares


def start_for_elder(session: Session, actor: User, elder: Elder, data: Mapping) -> Case:
    """Enrol an elder from the enrolment request form (the starter of the process)."""
    return enrol_visiting_care(session, actor, elder.id, str(data.get("note") or ""))


def check_visit_step(session: Session, actor: User, task, case, data: Mapping) -> None:
    """Step check of `record_visit`: the visit date inside its period (or after it), never in the future."""
    errors = check_visit(data, cases.case_data(session.get(Case, case.id))["period_start"], clock.today())
    if errors:
        raise ValidationFailed("探访记录有误，请按提示修改", field_errors=errors)
