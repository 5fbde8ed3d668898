"""Demo admission waitlist: a public home, applicants in every tier (two tied), and a vacancy on offer."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import clock
from ...clock import today
from ...models import Case, Elder, HukouType, User
from ...models.admission import Facility
from ...rules.assessment import DisabilityLevel
from ..home_adaptation.demo import at, complete
from . import waitlist

_DISABLED = {DisabilityLevel.MODERATE, DisabilityLevel.SEVERE, DisabilityLevel.COMPLETE}


def create(session: Session, users: dict[str, User], elders: list[Elder]) -> dict[str, int]:
    adapted = set(session.scalars(select(Case.elder_id).where(Case.process_key == "home_adaptation")))
    queued, vacancies = _waitlist(session, users, [e for e in elders if e.id not in adapted], clock.now())
    return {"waitlist_entries": queued, "bed_vacancies": vacancies}


def _tier_group(elder: Elder, day) -> str | None:
    level = elder.current_disability_level(day)
    if elder.tekun:
        return "special" if not elder.institutional_support and elder.hukou_type == HukouType.RURAL else None
    if ((elder.dibao or elder.near_dibao) and level in _DISABLED) or elder.family_planning_special:
        return "priority"
    if not (elder.dibao or elder.near_dibao or elder.entitled_veteran_family):
        return "ordinary"
    return None


def _waitlist(
    session: Session, users: dict[str, User], elders: list[Elder], now: datetime
) -> tuple[int, int]:
    workers = [users[name] for name in ("caseworker", "caseworker2") if name in users]
    # The county's home, registered with the demo's organisations (its staff: the facility_admin account).
    facility = session.scalar(
        select(Facility).where(Facility.name == "温县社会福利中心")
    ) or waitlist.create_facility(
        session,
        users["approver"],
        name="温县社会福利中心",
        area_code=users["approver"].area_code,
        address="温县黄河路18号",
        phone="0391-6188001",
        beds=120,
    )
    day = today()
    wanted = {"special": 2, "priority": 3, "ordinary": 4}
    picked: list[tuple[Elder, User, str]] = []
    for elder in elders:
        worker = next((w for w in workers if elder.residence_area_code.startswith(w.area_code)), None)
        group = _tier_group(elder, day)
        if worker is None or group is None or wanted[group] == 0:
            continue
        wanted[group] -= 1
        picked.append((elder, worker, group))
    # Two ordinary applicants last: they applied at the same minute (a tie, ordered by entry id).
    ordinary = [p for p in picked if p[2] == "ordinary"][-2:]
    picked = [p for p in picked if p not in ordinary] + ordinary
    answers = {
        "violent_tendency": False,
        "mental_state_stable": True,
        "infectious_disease": False,
        "voluntary": True,
    }
    base = (now - timedelta(days=150)).replace(hour=1, minute=30, second=0, microsecond=0)
    queued = 0
    for index, (elder, worker, group) in enumerate(picked):
        # Applications about a week apart.
        offset = min(index, len(picked) - 2)
        applied = base + timedelta(days=7 * offset, hours=offset % 3)
        with at(applied) as manual:
            case = waitlist.apply(session, worker, elder.id, facility.id, answers, applied_at=applied)
            manual.advance(days=2)
            complete(
                session,
                worker,
                case,
                "verify_application",
                {
                    "decision": "approve",
                    "township_referral": group == "special",
                    "comment": "乡镇敬老院无床位，申请县级机构" if group == "special" else "材料属实",
                },
            )
        queued += 1
    vacancies = 0
    if queued:
        with at(now - timedelta(days=1)):
            waitlist.register_vacancy(
                session,
                users["facility_admin"],
                facility.id,
                "2号楼105-2",
                note="原入住老人转入医院长期治疗，床位空出",
            )
        vacancies = 1
    return queued, vacancies
