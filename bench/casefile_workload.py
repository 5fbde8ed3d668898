"""Cases for case-file benchmarks and tests, made through the real use cases on the shipped diagrams.

- `typical_case`: a home-care application approved by the county (审批通知书), dispatched and accepted, with
  photos of the home visit; its elder has a capability assessment.
- `refused_case`: sent back by the county `loops` times, then refused (不予批准通知书) and the applicant
  informed: 2 x loops + 3 steps, closed. With loops=19 it is a 41-step case file.
"""

from __future__ import annotations

import io
import itertools
import json
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows import attachments, cases, clock, demo, tasks, versions
from workflows.config import bpmn_dir
from workflows.models import Assessment, Case, Elder, HumanTask, Role, TaskStatus, User
from workflows.models.elders import HukouType, LivingArrangement, Sex
from workflows.processes.home_care import enrolment as home_care
from workflows.rules.assessment import ITEMS, AssessmentReason, DisabilityLevel, score_assessment
from workflows.rules.idnumber import compute_check_char

PASSWORD = "bench-password-1"
APPLICATION = {
    "applicant_type": "proxy",
    "applicant_name": "李秀梅",
    "applicant_phone": "13812345678",
    "requested_services": ["meal", "cleaning", "bathing"],
    "application_note": "独居，行动不便，子女在外务工",
}
REVIEW_PASS = {
    "decision": "pass",
    "home_visit_on": "2026-03-03",
    "verification": "入户核实：低保在册，卧床，无人照料",
}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = "建国秀英桂兰玉兰德胜凤英广才长顺富贵淑珍金山振华翠花有福素芬志刚"
_serial = itertools.count(1)


def seed(session: Session) -> dict[str, User]:
    """The demo county's areas, users and elders, the shipped processes, and one caseworker per township."""
    demo.load_demo_registry(session, PASSWORD)
    versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
    users = {u.username: u for u in session.scalars(select(User))}
    for code, name, _villages in demo.TOWNSHIPS:
        username = f"caseworker_{code}"
        if username not in users:
            users[username] = User(
                username=username, display_name=f"{name}经办人", role=Role.CASEWORKER, area_code=code
            )
            session.add(users[username])
    session.flush()
    return users


def villages() -> list[tuple[str, str]]:
    """(township code, village code) of every demo village."""
    return [(township, village) for township, _n, vs in demo.TOWNSHIPS for village, _vn, _c in vs]


def make_elder(session: Session, village: str, assessor: User | None = None) -> Elder:
    """A 低保 elder of the village, 80 years old, with a valid moderate assessment on record."""
    n = next(_serial)
    first17 = f"410825{1946 - n % 10}0{n % 9 + 1}{n % 27 + 1:02d}{n % 1000:03d}"
    today = clock.now().date()
    elder = Elder(
        id_number=first17 + compute_check_char(first17),
        name=SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 2) % (len(GIVEN) - 1) :][:2],
        sex=Sex.FEMALE if int(first17[16]) % 2 == 0 else Sex.MALE,
        birth_date=date(1946 - n % 10, n % 9 + 1, n % 27 + 1),
        hukou_type=HukouType.RURAL,
        residence_area_code=village,
        address=f"{n % 9 + 1}组{n % 40 + 1}号",
        phone=f"138{n:08d}"[-11:],
        living_arrangement=LivingArrangement.LIVING_ALONE,
        dibao=True,
        disability_level=DisabilityLevel.MODERATE,
        disability_assessed_on=today - timedelta(days=30),
        disability_valid_until=today + timedelta(days=330),
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    session.add(elder)
    session.flush()
    scores = {item.key: min(item.max_score, 2) for item in ITEMS}
    result = score_assessment(scores)
    session.add(
        Assessment(
            elder_id=elder.id,
            assessed_on=today - timedelta(days=30),
            reason=AssessmentReason.INITIAL,
            items=json.dumps(scores),
            total=result.total,
            level=result.level,
            adjustments=json.dumps(result.adjustments, ensure_ascii=False),
            valid_until=today + timedelta(days=330),
            assessor_id=assessor.id if assessor else None,
            created_at=clock.now() - timedelta(days=30),
        )
    )
    session.flush()
    return elder


def complete(session: Session, case: Case, spec: str, actor: User, data: dict, comment: str | None = None):
    task = session.scalar(
        select(HumanTask).where(
            HumanTask.case_id == case.id, HumanTask.task_spec == spec, HumanTask.status == TaskStatus.READY
        )
    )
    if task is None:
        raise LookupError(f"{spec} is not ready on case {case.id}")
    return tasks.complete(session, actor, task.id, data, comment=comment)


def _caseworker(users, case: Case) -> User:
    return users.get(f"caseworker_{(case.area_code or '')[:9]}") or users["caseworker"]


def photo(seed: int, size=(2400, 1800)) -> bytes:
    """A camera-sized JPEG (a gradient with a few shapes, so it does not compress to nothing)."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (seed * 97 + i * 181) % size[0], (seed * 53 + i * 139) % size[1]
        draw.rectangle([x, y, x + 300, y + 200], fill=((seed * 40 + i * 20) % 255, 120, (i * 30) % 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def typical_case(
    session: Session, users, elder: Elder, *, photos: int = 2, upload_root: Path | None = None
) -> Case:
    applicant = users["admin"]
    case = home_care.apply_home_care(session, applicant, elder.id, APPLICATION)
    worker = _caseworker(users, case)
    for i in range(photos):
        attachments.save_attachment(
            session, worker, case.id, f"入户核实照片{i + 1}.jpg", photo(case.id + i), root=upload_root
        )
    complete(session, case, "township_review", worker, REVIEW_PASS)
    complete(session, case, "county_approval", users["approver"], {"decision": "approve", "comment": "同意"})
    complete(session, case, "dispatch_provider", worker, {"provider_id": users["provider"].id})
    complete(
        session,
        case,
        "provider_accept",
        users["provider"],
        {"decision": "accept", "planned_start_on": (clock.now().date() + timedelta(days=3)).isoformat()},
    )
    session.refresh(case)
    return case


def refused_case(
    session: Session, users, elder: Elder, *, loops: int = 0, photos: int = 0, upload_root: Path | None = None
) -> Case:
    """An application sent back `loops` times, then refused; closed once the applicant is informed."""
    case = home_care.apply_home_care(session, users["admin"], elder.id, APPLICATION)
    worker = _caseworker(users, case)
    for i in range(photos):
        attachments.save_attachment(
            session, worker, case.id, f"入户照片{i + 1}.jpg", photo(case.id + i), root=upload_root
        )
    for round_ in range(loops):
        complete(
            session,
            case,
            "township_review",
            worker,
            {**REVIEW_PASS, "verification": f"第{round_ + 1}次补正后核实"},
        )
        complete(
            session,
            case,
            "county_approval",
            users["approver"],
            {"decision": "send_back", "comment": f"第{round_ + 1}次退回：请补充收入证明和照料情况说明"},
        )
    complete(session, case, "township_review", worker, REVIEW_PASS)
    complete(
        session,
        case,
        "county_approval",
        users["approver"],
        {"decision": "reject", "comment": "家庭人均收入高于当地低保标准，不符合政府购买服务条件"},
    )
    complete(
        session,
        case,
        "inform_applicant",
        worker,
        {"informed_on": clock.now().date().isoformat(), "inform_method": "written"},
    )
    cases.forget_live_instances()
    session.refresh(case)
    return case
