"""Demo home-adaptation cases at several stages, driven through the real use cases with the clock moved."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import cases, clock, tasks
from ...clock import today
from ...models import Case, Elder, HumanTask, TaskStatus, User
from ...rules.assessment import DisabilityLevel
from . import adaptation

_DISABLED = {DisabilityLevel.MODERATE, DisabilityLevel.SEVERE, DisabilityLevel.COMPLETE}
_CATEGORY = ("tekun", "dibao", "near_dibao", "three_category_household")


@contextmanager
def at(moment: datetime) -> Iterator[clock.ManualClock]:
    manual = clock.ManualClock(moment)
    with clock.using(manual):
        yield manual


def complete(session: Session, user: User, case: Case, spec: str, data: dict) -> None:
    task = session.scalar(
        select(HumanTask).where(
            HumanTask.case_id == case.id, HumanTask.task_spec == spec, HumanTask.status == TaskStatus.READY
        )
    )
    if task is None:
        raise RuntimeError(f"demo: step {spec} of case {case.id} is not ready")
    tasks.complete(session, user, task.id, data)


def create(session: Session, users: dict[str, User], elders: list[Elder]) -> dict[str, int]:
    return {"home_adaptation_cases": len(_adaptation_cases(session, users, elders, clock.now()))}


def _adaptation_eligible(elder: Elder, day) -> bool:
    level = elder.current_disability_level(day)
    return any(getattr(elder, f) for f in _CATEGORY) and (
        elder.age_on(day) >= 80 or level in _DISABLED or elder.severe_handicap
    )


def _application(elder: Elder, day) -> dict:
    level = elder.current_disability_level(day)
    return {
        "household_category": next(f for f in _CATEGORY if getattr(elder, f)),
        "elder_age": elder.age_on(day),
        "disability_level": level.value if level is not None else "none",
        "handicapped": elder.severe_handicap,
        "contact_phone": elder.phone or elder.guardian_phone or "13900000000",
        "address": elder.address or "祥云村",
        "applicant_name": elder.name,
        "applicant_relation": "self",
        "needs": "卫生间湿滑，起夜不便，希望安装扶手和防滑地面",
    }


def _adaptation_cases(
    session: Session, users: dict[str, User], elders: list[Elder], now: datetime
) -> set[int]:
    assistant = users["village_assistant"]
    day = today()
    chosen = [
        e for e in elders if e.residence_area_code == assistant.area_code and _adaptation_eligible(e, day)
    ]
    done: set[int] = set()
    if not chosen:
        return done
    plan = {
        "plan": {
            "items": [
                {"item": "anti_slip_floor", "quantity": 8},
                {"item": "bathroom_handrail", "quantity": 2},
                {"item": "shower_chair", "quantity": 1},
                {"item": "sensor_light", "quantity": 3},
            ]
        },
        "signed_by": "elder",
        "signed_on": "",
        "signature_scan": "attachment:demo-signature",
    }
    steps = [
        ("township_review", "caseworker", {"decision": "approve", "comment": "材料齐全，同意"}),
        ("county_review", "approver", {"decision": "approve", "comment": "纳入本年度改造计划"}),
        (
            "home_assessment",
            "assessor",
            {
                "assessed_on": "",
                "capability_level": "mild",
                "environment_risks": ["slippery_floor", "toilet_bath"],
                "recommended_items": ["anti_slip_floor", "bathroom_handrail", "shower_chair", "sensor_light"],
                "environment_notes": "卫生间地面瓷砖湿滑，无扶手；卧室至卫生间无夜间照明",
            },
        ),
    ]

    def run(elder: Elder, start: datetime, until: str) -> None:
        with at(start) as manual:
            case = adaptation.start_application(session, assistant, elder.id)
            complete(session, assistant, case, "application", _application(elder, day))
            if until == "township_review":
                return
            for spec, who, data in steps:
                manual.advance(days=3)
                if "assessed_on" in data:
                    data = {**data, "assessed_on": manual().date().isoformat()}
                complete(session, users[who], case, spec, data)
            manual.advance(days=2)
            signed = {**plan, "signer_name": elder.name, "signed_on": manual().date().isoformat()}
            complete(session, users["caseworker"], case, "adaptation_plan", signed)
            if until == "public_notice":
                return
            manual.advance(days=7, minutes=5)
            cases.fire_timers(session, session.get(Case, case.id))
            manual.advance(days=10)
            finished = manual().date().isoformat()
            complete(
                session,
                users["provider"],
                case,
                "carry_out_works",
                {
                    "contractor_name": "温县安居适老化改造工程队",
                    "started_on": finished,
                    "finished_on": finished,
                    "before_photo_1": "attachment:demo-before",
                    "after_photo_1": "attachment:demo-after",
                },
            )
            manual.advance(days=3)
            complete(
                session,
                users["caseworker"],
                case,
                "acceptance_inspection",
                {
                    "acceptance_result": "passed",
                    "inspected_on": manual().date().isoformat(),
                    "inspectors": "王建华、刘敏",
                    "elder_confirmed": True,
                },
            )
            manual.advance(days=5)
            subsidy = Decimal(cases.case_data(session.get(Case, case.id))["plan_summary"]["subsidy"])
            complete(
                session,
                users["approver"],
                case,
                "subsidy_payment",
                {
                    "paid_amount": subsidy,
                    "paid_on": manual().date().isoformat(),
                    "voucher_no": "ZF-DEMO-001",
                    "payee": "contractor",
                },
            )
            manual.advance(days=7)
            complete(
                session,
                users["caseworker"],
                case,
                "satisfaction_callback",
                {
                    "called_on": manual().date().isoformat(),
                    "callback_method": "phone",
                    "satisfaction": "satisfied",
                    "callback_note": "扶手牢固，起夜方便多了",
                },
            )
            manual.advance(days=2)
            complete(
                session,
                users["caseworker"],
                case,
                "archive_household_file",
                {"file_no": f"SLH-DEMO-{elder.id:04d}", "documents_complete": True},
            )

    for elder, start, until in zip(
        chosen,
        (now - timedelta(days=70), now - timedelta(days=14), now - timedelta(days=2)),
        ("archived", "public_notice", "township_review"),
        strict=False,
    ):
        run(elder, start, until)
        done.add(elder.id)
    return done
