"""Case files as PDF: the text comes back exactly (names, headings, the forms' Chinese labels: garbled glyphs
fail), the CJK font is embedded, personal numbers stay masked for roles that do not need them, printing is
audited, a broken hash chain shows, and the renderer reaches nothing outside the app's own resources."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, date, datetime

import pytest
from PIL import Image
from sqlalchemy import select, update

from casefiles import casefile, pdf
from tests.processes.harness import World
from workflows import attachments, clock
from workflows.errors import PermissionDenied
from workflows.models import Assessment, CaseEvent, EventKind, Role, User
from workflows.processes.home_care import enrolment as home_care
from workflows.rules.assessment import ITEMS, AssessmentReason, DisabilityLevel, score_assessment
from workflows.rules.idnumber import compute_check_char

ID_NUMBER = "410825194503120" + "22"
ID_NUMBER += compute_check_char(ID_NUMBER)
APPLICATION = {
    "applicant_type": "proxy",
    "applicant_name": "李秀梅",
    "applicant_phone": "13812345678",
    "requested_services": ["meal", "cleaning", "bathing"],
}


@pytest.fixture
def manual_clock():
    c = clock.ManualClock(datetime(2025, 6, 2, 1, 0, tzinfo=UTC))
    with clock.using(c):
        yield c


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)


def jpeg(color=(200, 120, 40), size=(1600, 1200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def refused(world, tmp_path):
    """A home-care application sent back once, then refused, with a photo and a PDF attached, its elder assessed."""
    elder = world.elder(
        id_number=ID_NUMBER,
        name="欧阳秀英",
        phone="13912345678",
        dibao=True,
        disability_level=DisabilityLevel.MODERATE,
        disability_assessed_on=date(2025, 5, 6),
        disability_valid_until=date(2026, 5, 6),
    )
    scores = {item.key: min(item.max_score, 2) for item in ITEMS}
    result = score_assessment(scores)
    world.session.add(
        Assessment(
            elder_id=elder.id,
            assessed_on=date(2025, 5, 6),
            reason=AssessmentReason.INITIAL,
            items=json.dumps(scores),
            total=result.total,
            level=result.level,
            adjustments="[]",
            valid_until=date(2026, 5, 6),
            assessor_id=world.users["assessor"].id,
            created_at=world.clock(),
        )
    )
    case = home_care.apply_home_care(world.session, world.users["village_assistant"], elder.id, APPLICATION)
    worker = world.users["caseworker"]
    attachments.save_attachment(world.session, worker, case.id, "入户照片.jpg", jpeg(), root=tmp_path)
    attachments.save_attachment(
        world.session, worker, case.id, "收入证明.pdf", b"%PDF-1.4\n%%EOF\n", root=tmp_path
    )
    review = {"decision": "pass", "home_visit_on": "2025-06-02", "verification": "入户核实：低保在册，卧床"}
    world.complete(case, "township_review", review)
    world.complete(case, "county_approval", {"decision": "send_back", "comment": "请补充收入证明"})
    world.complete(case, "township_review", {**review, "verification": "已补充收入证明"})
    world.complete(case, "county_approval", {"decision": "reject", "comment": "家庭人均收入高于低保标准"})
    world.complete(case, "inform_applicant", {"informed_on": "2025-06-02", "inform_method": "written"})
    return world.refresh(case)


def text_of(content: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=content, capture_output=True, check=True
    ).stdout.decode()


def fonts_of(content: bytes, tmp_path) -> str:
    path = tmp_path / "file.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True).stdout


def test_the_case_file_reads_back_exactly_with_the_forms_labels(world, refused, tmp_path):
    rendered = casefile.render_casefile_pages(
        world.session, world.users["approver"], refused.id, upload_root=tmp_path
    )
    assert rendered.pdf.startswith(b"%PDF-") and rendered.pages >= 4
    text = text_of(rendered.pdf)
    for expected in (
        "基本养老服务案卷",
        "温县民政局",
        "欧阳秀英（女，80周岁）",
        "政府购买居家养老服务（第 1 版）",
        "已办结（县级审批：不予批准）",
        "目录",
        "一、办理过程",
        "乡镇初审（入户核实）",
        "县级审批",
        "告知不予通过",
        "决定：退回乡镇补正",
        "决定：不予批准",
        "意见：家庭人均收入高于低保标准",
        "入户核实日期",  # the township review form's own titles, not its keys
        "核实情况",
        "书面送达",  # a choice shown by its label
        "二、老年人能力评估",
        "GB/T 42195-2022",
        "床椅转移",
        "中度失能",
        "三、材料清单",
        "入户照片.jpg",
        "收入证明.pdf",
        "四、通知书",
        "温民养不〔2025〕1号",
        "五、办理记录与完整性校验",
        "哈希链校验：完整",
        "打印：2025-06-02 09:00",
        "第1页",
        "（含封面和目录）",
    ):
        assert expected in text, expected
    assert "home_visit_on" not in text and "inform_method" not in text  # no raw keys
    assert f"共 {rendered.pages} 页（含封面和目录）" in text
    assert f"第{rendered.pages}页" in text  # pages numbered through, front and body alike
    fonts = fonts_of(rendered.pdf, tmp_path)
    assert "WenQuanYi-Micro-Hei" in fonts
    for line in fonts.splitlines()[2:]:
        assert " yes yes yes " in line, line  # embedded, subset, with a Unicode map


def test_labels_that_are_not_in_the_text_layer_would_fail(world, refused, tmp_path):
    # What "exactly" buys: the text layer holds the characters themselves, in order, not lookalikes.
    text = text_of(
        casefile.render_casefile_pages(
            world.session, world.users["approver"], refused.id, upload_root=tmp_path
        ).pdf
    )
    assert "欧阳秀英" in text and "歐陽秀英" not in text


def test_personal_numbers_are_whole_only_for_roles_that_need_them(world, refused, tmp_path):
    full = text_of(
        casefile.render_casefile_pages(
            world.session, world.users["approver"], refused.id, upload_root=tmp_path
        ).pdf
    )
    assert ID_NUMBER in full and "13912345678" in full and "13812345678" in full
    assessor = world.users["assessor"]  # reads the county's cases, but needs no one's numbers
    masked = casefile.render_casefile_pages(world.session, assessor, refused.id, upload_root=tmp_path)
    text = text_of(masked.pdf)
    assert ID_NUMBER not in text and "13912345678" not in text and "13812345678" not in text
    assert "4108**********" in text.replace(" ", "") or "4108" in text
    assert "本案卷按打印人角色遮蔽了身份证号和电话号码" in text


def test_printing_is_audited_and_outsiders_are_refused(world, refused, tmp_path):
    before = refused.event_count
    casefile.print_casefile(world.session, world.users["caseworker"], refused.id, upload_root=tmp_path)
    last = world.session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == refused.id).order_by(CaseEvent.seq.desc()).limit(1)
    )
    assert (last.seq, last.kind, last.actor_id) == (
        before + 1,
        EventKind.EXPORTED,
        world.users["caseworker"].id,
    )
    assert json.loads(last.detail)["document"] == "casefile"
    other = User(username="t_cw2", display_name="番田镇经办人", role=Role.CASEWORKER, area_code="410825101")
    world.session.add(other)
    world.session.flush()
    with pytest.raises(PermissionDenied):
        casefile.print_casefile(world.session, other, refused.id, upload_root=tmp_path)
    provider = world.users["provider"]  # outside staff read only the cases they work on
    with pytest.raises(PermissionDenied):
        casefile.print_casefile(world.session, provider, refused.id, upload_root=tmp_path)


def test_a_tampered_trail_shows_in_the_file(world, refused, tmp_path):
    world.session.execute(
        update(CaseEvent)
        .where(CaseEvent.case_id == refused.id, CaseEvent.seq == 3)
        .values(comment="改过的意见")
    )
    text = text_of(
        casefile.render_casefile_pages(
            world.session, world.users["auditor"], refused.id, upload_root=tmp_path
        ).pdf
    )
    assert "哈希链校验：发现" in text and "第3条记录内容被改动" in text


def test_the_photo_is_embedded_as_a_thumbnail(world, refused, tmp_path):
    data = casefile.gather(world.session, world.users["approver"], refused.id, upload_root=tmp_path)
    [photo] = data.photos
    thumb = Image.open(io.BytesIO(data.resources[photo.thumbnail[4:]]))
    assert thumb.format == "JPEG" and max(thumb.size) <= max(casefile.THUMB_SIZE)
    path = tmp_path / "file.pdf"
    path.write_bytes(casefile.render_gathered(data).pdf)
    listed = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, check=True, text=True
    ).stdout
    [image] = listed.splitlines()[2:]
    assert f" {thumb.size[0]} " in image and f" {thumb.size[1]} " in image


def test_the_fetcher_refuses_the_network_and_files_outside_the_assets(tmp_path):
    from weasyprint.urls import FatalURLFetchingError

    fetch = pdf.fetcher({"seal": b"\x89PNG"})
    assert fetch.fetch("res:seal").read() == b"\x89PNG"
    for url in (
        "http://127.0.0.1/x.png",
        "https://example.org/font.woff2",
        "file:///etc/passwd",
        "asset:../pdf.py",
        "asset:/etc/passwd",
        "res:other",
        "data:text/plain,hello",
    ):
        with pytest.raises(FatalURLFetchingError):
            fetch.fetch(url)
    with pytest.raises(FatalURLFetchingError):  # a template reaching out stops the rendering
        from weasyprint import HTML

        HTML(string='<img src="http://127.0.0.1:9/x.png">', url_fetcher=pdf.fetcher()).write_pdf()


def test_the_same_case_renders_to_the_same_bytes(world, refused, tmp_path):
    first = casefile.render_casefile_pages(
        world.session, world.users["approver"], refused.id, upload_root=tmp_path
    )
    second = casefile.render_casefile_pages(
        world.session, world.users["approver"], refused.id, upload_root=tmp_path
    )
    assert first.pdf == second.pdf
