"""An approver archives a year of closed cases in a real browser: the job runs in its own process, the page's
script moves the progress bar to the end and offers the zip; the page fits a laptop and a phone."""

from __future__ import annotations

import io
import zipfile

from bench import casefile_workload as workload
from workflows import clock

from .conftest import Person, needs_chromium


@needs_chromium
def test_an_approver_archives_a_year_and_watches_it_finish(chromium, live_server, artifacts):
    sessions, journey_clock = live_server["sessions"], live_server["clock"]
    with clock.using(journey_clock), sessions.begin() as session:
        users = workload.seed(session)
        township, village = workload.villages()[0]
        names = []
        for loops in (0, 1, 2):
            case = workload.refused_case(session, users, workload.make_elder(session, village), loops=loops)
            names.append(case.title)
    year = str(journey_clock().year)

    approver = Person(chromium, live_server["url"], "approver", artifacts)
    page = approver.page
    page.click("text=案卷归档")
    page.wait_for_url("**/archives")
    page.fill("input[name=year]", year)
    page.select_option("select[name=process]", "home_care")
    page.click("button.primary")
    job = page.locator(".archive-job").first
    job.locator("progress").wait_for()
    # The job's own process makes the zip; the page polls it and shows the end without a reload.
    page.wait_for_selector(".archive-job[data-status=done]", timeout=240000)
    assert job.locator(".job-text").inner_text() == "已完成"
    assert job.locator("progress").get_attribute("value") == "100"
    download = job.locator(".job-download")
    assert download.is_visible()
    count = job.locator(".job-count").inner_text()
    done, total = (int(n) for n in count.split("/"))
    assert done == total >= 3
    approver.shot("archive-laptop")
    response = approver.context.request.get(download.get_attribute("href"))
    assert response.status == 200
    with zipfile.ZipFile(io.BytesIO(response.body())) as archive:
        files = archive.namelist()
    assert "案卷目录.xlsx" in files and sum(1 for f in files if "不予批准通知书" in f) >= 3
    assert approver.errors == []

    phone = Person(chromium, live_server["url"], "auditor", artifacts, phone=True)
    phone.page.goto("/archives")
    phone.page.locator(".archive-job").first.wait_for()
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone
    phone.shot("archive-phone")
    approver.close()
    phone.close()
