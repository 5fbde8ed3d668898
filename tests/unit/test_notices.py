"""Notices: issued by the diagrams' deciding steps with gapless, unique numbers per county, kind and year
(also when several are issued at the same moment, on SQLite and PostgreSQL), a snapshot of what they say,
and a PDF stored the first time so every reprint is the same file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from casefiles import notices as notice_pdfs
from tests.processes.harness import World
from workflows import clock, notices
from workflows.errors import PermissionDenied
from workflows.models import CaseEvent, EventKind, Role, User
from workflows.models.notices import Notice, NoticeCounter, NoticeKind
from workflows.processes.home_care import enrolment as home_care
from workflows.rules.assessment import DisabilityLevel
from workflows.rules.idnumber import compute_check_char

APPLICATION = {
    "applicant_type": "proxy",
    "applicant_name": "李秀梅",
    "applicant_phone": "13812345678",
    "requested_services": ["meal", "cleaning"],
}
REVIEW_PASS = {"decision": "pass", "home_visit_on": "2025-06-02", "verification": "入户核实：低保在册，卧床"}
_serial = iter(range(300, 999))


@pytest.fixture
def manual_clock():
    c = clock.ManualClock(datetime(2025, 6, 2, 1, 0, tzinfo=UTC))
    with clock.using(c):
        yield c


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)


def elder(world, name="赵桂兰"):
    first17 = f"410825194503{next(_serial) % 28 + 1:02d}{next(_serial):03d}"
    return world.elder(
        id_number=first17 + compute_check_char(first17),
        name=name,
        dibao=True,
        disability_level=DisabilityLevel.MODERATE,
        disability_assessed_on=date(2025, 5, 6),
        disability_valid_until=date(2026, 5, 6),
    )


def home_care_case(world, name="赵桂兰"):
    return home_care.apply_home_care(
        world.session, world.users["village_assistant"], elder(world, name).id, APPLICATION
    )


def issued(world, case) -> list[Notice]:
    return notices.notices_of_case(world.session, world.users["approver"], case.id)


def pdf_text(content: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=content, capture_output=True, check=True
    ).stdout.decode()


def test_county_approval_issues_a_numbered_approval_notice(world):
    case = home_care_case(world, "钱秀英")
    world.complete(case, "township_review", REVIEW_PASS)
    assert issued(world, case) == []
    world.complete(case, "county_approval", {"decision": "approve", "comment": "同意"})
    [notice] = issued(world, case)
    assert (notice.kind, notice.number, notice.year) == (NoticeKind.APPROVAL, 1, 2025)
    assert (
        notice.document_number == "温民养〔2025〕1号"
    )  # the county's own prefix (settings), not the default
    assert (notice.task_spec, notice.issued_by) == ("county_approval", world.users["approver"].id)
    said = notices.snapshot_of(notice)
    assert said["title"] == "审批通知书" and said["issuer"] == "温县民政局"
    assert said["paragraphs"][0] == "钱秀英："
    assert "月度服务额度为300元" in "".join(said["paragraphs"])
    assert "政府购买居家养老服务" in said["paragraphs"][1]
    text = json.dumps(said, ensure_ascii=False)
    assert "410825194503" not in text  # the ID number only masked


def test_a_refusal_notice_carries_the_reason_and_numbers_on_its_own(world):
    first = home_care_case(world, "孙玉兰")
    world.complete(first, "township_review", REVIEW_PASS)
    world.complete(first, "county_approval", {"decision": "approve"})
    second = home_care_case(world, "李德胜")
    world.complete(second, "township_review", REVIEW_PASS)
    world.complete(second, "county_approval", {"decision": "reject", "comment": "家庭人均收入高于低保标准"})
    [refusal] = issued(world, second)
    assert (refusal.kind, refusal.number, refusal.document_number) == (
        NoticeKind.REFUSAL,
        1,
        "温民养不〔2025〕1号",
    )
    paragraphs = notices.snapshot_of(refusal)["paragraphs"]
    assert "理由：家庭人均收入高于低保标准" in paragraphs
    assert any("行政复议" in p for p in paragraphs)


def test_sending_back_issues_nothing(world):
    case = home_care_case(world)
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "send_back", "comment": "补充收入证明"})
    assert issued(world, case) == []


def test_notices_are_read_only_within_the_case_s_area(world):
    case = home_care_case(world)
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "approve"})
    [notice] = issued(world, case)
    outsider = User(
        username="t_cw_other", display_name="番田镇经办人", role=Role.CASEWORKER, area_code="410825101"
    )
    world.session.add(outsider)
    world.session.flush()
    with pytest.raises(PermissionDenied):
        notices.get_notice(world.session, outsider, notice.id)
    with pytest.raises(PermissionDenied):
        notices.notices_of_case(world.session, outsider, case.id)


def test_the_pdf_is_kept_the_first_time_and_every_reprint_is_the_same_file(world, tmp_path, monkeypatch):
    case = home_care_case(world, "周凤英")
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "approve"})
    [notice] = issued(world, case)
    reader = world.users["caseworker"]
    _, first = notice_pdfs.notice_pdf(world.session, reader, notice.id)
    assert notice.pdf_sha256 == hashlib.sha256(first).hexdigest()
    text = pdf_text(first)
    for expected in (
        "温县民政局",
        "审批通知书",
        "温民养〔2025〕1号",
        "周凤英：",
        "特此通知。",
        "2025年6月2日",
    ):
        assert expected in text
    # The county rewords its notices afterwards: an issued notice stays as it was printed.
    override = tmp_path / "notices.json"
    override.write_text(
        json.dumps({"default": {"kinds": {"approval": {"closing": ["此复。"]}}}}), encoding="utf-8"
    )
    monkeypatch.setenv(notices.CONFIG_ENV, str(override))
    _, again = notice_pdfs.notice_pdf(world.session, reader, notice.id)
    assert again == first
    assert notice_pdfs.render_notice(notice) == first  # and rendering the snapshot again gives the same bytes
    printed = world.session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == EventKind.EXPORTED)
    ).all()
    assert [json.loads(e.detail)["document_number"] for e in printed] == ["温民养〔2025〕1号"] * 2


def test_a_county_adjusts_wording_and_prefix_without_code(world, tmp_path, monkeypatch):
    override = tmp_path / "notices.json"
    override.write_text(
        json.dumps(
            {
                "counties": {
                    "410825": {
                        "issuer": "温县民政局（养老服务股）",
                        "kinds": {"refusal": {"prefix": "温民驳", "closing": ["此复。"]}},
                    }
                }
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(notices.CONFIG_ENV, str(override))
    case = home_care_case(world)
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "reject", "comment": "不符合条件"})
    [notice] = issued(world, case)
    said = notices.snapshot_of(notice)
    assert (notice.document_number, said["issuer"], said["closing"]) == (
        "温民驳〔2025〕1号",
        "温县民政局（养老服务股）",
        ["此复。"],
    )


# --------------------------------------------------------------------------------------------------
# Numbers under concurrency, on each database the tests run on


@pytest.fixture
def county(db_engine):
    code = str(uuid.uuid4().int)[:6]
    yield code
    with Session(db_engine) as s, s.begin():
        s.execute(delete(NoticeCounter).where(NoticeCounter.county_code == code))


def _take(db_engine, county_code, barrier, results, errors, *, keep=True):
    try:
        with Session(db_engine) as s:
            s.begin()
            barrier.wait(timeout=30)
            number = notices.next_number(s, county_code, NoticeKind.APPROVAL, 2026)
            if keep:
                s.commit()
                results.append(number)
            else:
                s.rollback()
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_numbers_issued_at_the_same_moment_are_distinct_and_without_gaps(db_engine, county):
    threads, results, errors = 8, [], []
    barrier = threading.Barrier(threads)
    workers = [
        threading.Thread(target=_take, args=(db_engine, county, barrier, results, errors))
        for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert errors == []
    assert sorted(results) == list(range(1, threads + 1))


def test_a_rolled_back_step_gives_its_number_back(db_engine, county):
    results, errors = [], []
    _take(db_engine, county, threading.Barrier(1), results, errors, keep=False)
    _take(db_engine, county, threading.Barrier(1), results, errors)
    _take(db_engine, county, threading.Barrier(1), results, errors)
    assert errors == [] and results == [1, 2]


def test_each_kind_and_year_counts_on_its_own(db_engine, county):
    with Session(db_engine) as s, s.begin():
        assert notices.next_number(s, county, NoticeKind.APPROVAL, 2026) == 1
        assert notices.next_number(s, county, NoticeKind.REFUSAL, 2026) == 1
        assert notices.next_number(s, county, NoticeKind.APPROVAL, 2027) == 1
        assert notices.next_number(s, county, NoticeKind.APPROVAL, 2026) == 2
