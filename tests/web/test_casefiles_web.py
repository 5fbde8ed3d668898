"""Case files, notices and archives over HTTP: the button and the list on the case page, the PDF from the page
and the API (role and area checked, masked where the role needs no numbers, audited), and a bulk archive run
by its own process with its progress read back and its zip downloaded."""

from __future__ import annotations

import io
import subprocess
import zipfile

from openpyxl import load_workbook
from sqlalchemy import select

from workflows import clock
from workflows.models import CaseEvent, EventKind
from workflows.models.notices import ArchiveJob

from .helpers import MASKED_ID, advance_to, start_case


def text_of(content: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=content, capture_output=True, check=True
    ).stdout.decode()


def refused_case(api, elder_id: int) -> dict:
    """A home-care case refused by the county and closed (the applicant informed)."""
    case = start_case(api, elder_id)
    task = advance_to(api, case, "county_approval")
    response = api["approver"].post(
        f"/api/tasks/{task['id']}/complete", {"data": {"decision": "reject", "comment": "收入超过低保标准"}}
    )
    assert response.status_code == 200, response.text
    task = advance_to(api, case, "inform_applicant")
    today = clock.now().date().isoformat()
    response = api["caseworker"].post(
        f"/api/tasks/{task['id']}/complete", {"data": {"informed_on": today, "inform_method": "written"}}
    )
    assert response.status_code == 200, response.text
    return api["caseworker"].get(f"/api/cases/{case['id']}").json


def test_the_case_page_offers_the_case_file_and_lists_the_notices(api, browsers, make_elder):
    case = refused_case(api, make_elder(name="郑淑珍"))
    page = browsers["caseworker"].get(f"/cases/{case['id']}")
    assert page.status_code == 200
    assert f'href="/cases/{case["id"]}/casefile.pdf"' in page.text and "打印案卷（PDF）" in page.text
    assert "不予批准通知书 温民养不〔" in page.text
    notice_url = page.text.split('href="/notices/', 1)[1].split('"', 1)[0]
    first = browsers["caseworker"].get(f"/notices/{notice_url}")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert "收入超过低保标准" in text_of(first.data)
    assert browsers["approver"].get(f"/notices/{notice_url}").data == first.data  # a reprint is the same file
    assert browsers["caseworker2"].get(f"/notices/{notice_url}").status_code == 403


def test_the_case_file_pdf_is_checked_masked_and_audited(api, browsers, make_elder, db_session):
    case = refused_case(api, make_elder(name="冯桂英"))
    url = f"/cases/{case['id']}/casefile.pdf"
    response = browsers["caseworker"].get(url)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "private, no-store"
    text = text_of(response.data)
    assert "冯桂英" in text and "县级审批" in text and "哈希链校验：完整" in text
    assert not MASKED_ID.search(text)  # a caseworker checks identities: numbers whole
    masked = browsers["assessor"].get(url)
    assert masked.status_code == 200 and MASKED_ID.search(text_of(masked.data))
    assert browsers["caseworker2"].get(url).status_code == 403  # another township's case
    assert browsers["provider"].get(url).status_code == 403  # outside staff: not their case
    assert browsers["caseworker"].get("/cases/999999/casefile.pdf").status_code == 404
    kinds = db_session.scalars(
        select(CaseEvent.actor_id).where(
            CaseEvent.case_id == case["id"], CaseEvent.kind == EventKind.EXPORTED
        )
    ).all()
    assert len(kinds) == 2  # the caseworker's and the assessor's prints; refusals print nothing


def test_the_api_serves_the_case_file_and_documents_it(api, anonymous, make_elder):
    case = refused_case(api, make_elder(name="蒋玉兰"))
    response = api["approver"].get(f"/api/cases/{case['id']}/casefile.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert "蒋玉兰" in text_of(response.data)
    assert api["caseworker2"].get(f"/api/cases/{case['id']}/casefile.pdf").status_code == 403
    assert anonymous.get(f"/api/cases/{case['id']}/casefile.pdf").status_code == 401
    doc = anonymous.get("/api/openapi.json").json
    answer = doc["paths"]["/api/cases/{case_id}/casefile.pdf"]["get"]["responses"]
    assert answer["200"]["content"] == {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
    assert {"401", "403", "404"} <= set(answer)


def test_an_archive_runs_in_its_own_process_and_is_downloaded(
    app, api, browsers, make_elder, db_session, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        app, "instance_path", str(tmp_path)
    )  # the zip and the job's log go to the test's folder
    closed = [
        refused_case(api, make_elder(name=name, township=township))
        for name, township in (
            ("韩秀兰", "xiangyun"),
            ("曹德胜", "xiangyun"),
        )
    ]
    year = clock.now().astimezone(clock_zone()).year
    approver = browsers["approver"]
    page = approver.get("/archives")
    assert page.status_code == 200 and "开始归档" in page.text
    response = approver.post(
        "/archives", {"area": "410825", "year": str(year), "process": "home_care"}, token_from="/archives"
    )
    assert response.status_code == 302
    job_id = db_session.scalar(select(ArchiveJob.id).order_by(ArchiveJob.id.desc()).limit(1))
    process = app.extensions["archive_processes"][job_id]
    assert process.wait(timeout=300) == 0
    progress = approver.get(f"/archives/{job_id}.json").json
    assert progress["status"] == "done" and progress["ready"] and progress["percent"] == 100
    assert progress["done"] == progress["total"] >= 2 and progress["failed"] == 0
    download = approver.get(f"/archives/{job_id}/download")
    body = download.data
    download.close()  # the file it streams stays open until the response is closed
    assert download.status_code == 200 and download.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        assert any(
            n.startswith("祥云镇（410825100）/") and n.endswith("_韩秀兰_政府购买居家养老服务.pdf")
            for n in names
        )
        assert any(n.startswith("祥云镇（410825100）/") and "_曹德胜_" in n for n in names)
        assert any("不予批准通知书" in n for n in names)
        sheet = load_workbook(io.BytesIO(archive.read("案卷目录.xlsx"))).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][:5] == ("序号", "乡镇（街道）", "案件编号", "业务", "老人姓名")
        listed = {row[2] for row in rows[1:]}
        assert {c["id"] for c in closed} <= listed
        pdf_name = next(n for n in names if n.endswith("_韩秀兰_政府购买居家养老服务.pdf"))
        assert "韩秀兰" in text_of(archive.read(pdf_name))
    page = approver.get("/archives")
    assert f'id="job-{job_id}"' in page.text and f'href="/archives/{job_id}/download"' in page.text


def test_archives_are_for_approvers_and_auditors_within_their_area(browsers):
    assert browsers["caseworker"].get("/archives").status_code == 403
    assert browsers["provider"].get("/archives").status_code == 403
    assert browsers["auditor"].get("/archives").status_code == 200
    bad = browsers["approver"].post("/archives", {"area": "410825", "year": "20x6"}, token_from="/archives")
    assert bad.status_code == 422 and "年份应为四位数字" in bad.text
    elsewhere = browsers["approver"].post(
        "/archives", {"area": "110105", "year": "2026"}, token_from="/archives"
    )
    assert elsewhere.status_code in (403, 422)
    assert browsers["approver"].get("/archives/999999.json").status_code == 404


def clock_zone():

    return clock.LOCAL
