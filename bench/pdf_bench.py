"""Time case-file PDFs: a typical case file, a 40-step case file, and bulk archiving; print one JSON line.

    eldercare bench pdf [--quick]        (or: .venv/bin/python -m bench.pdf_bench [--cases 2000])

Everything runs on a new SQLite database in a temporary folder, with cases made through the real use cases
on the shipped diagrams (bench/casefile_workload.py). Targets on the 2-core reference machine: a typical
case file under 1 s, a 40-step one under 3 s (medians), and a county's year (2,000 closed cases) archived in
under 10 minutes; the archive figure is measured on `cases` cases and extrapolated to 2,000 (run with
--cases 2000 to measure the whole year).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench import casefile_workload as workload
from workflows import processes


def _median_ms(fn, rounds: int, cpu: list | None = None) -> tuple[float, object]:
    """Median wall-clock ms of `fn` (after one warm-up call); its median CPU ms is appended to `cpu`."""
    fn()  # warm: fonts, templates, the process spec
    times, cpu_times, result = [], [], None
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - started_cpu) * 1000)
    if cpu is not None:
        cpu.append(statistics.median(cpu_times))
    return statistics.median(times), result


FONT_CANDIDATES = ("WenQuanYi Micro Hei", "Noto Sans CJK SC")
SHORT_PAGE = (
    "<h1>温县民政局审批通知书</h1><p>温民养〔2026〕17号</p><p>张秀英：你于2026年3月2日提出的政府购买居家养老服务"
    "申请，经乡镇（街道）初审、温县民政局审核，符合条件，决定予以批准。月度服务额度为300元。</p>"
)


def font_figures(rounds: int) -> dict:
    """One short Chinese page per installed candidate font: median ms and bytes (the font choice's basis)."""
    import subprocess

    from weasyprint import HTML

    figures = {}
    for family in FONT_CANDIDATES:
        listed = subprocess.run(["fc-list", f":family={family}", "family"], capture_output=True, text=True)
        if family not in listed.stdout:
            continue
        html = f"<html><body style=\"font-family: '{family}'\">{SHORT_PAGE}</body></html>"
        ms, content = _median_ms(lambda html=html: HTML(string=html).write_pdf(), rounds)
        figures[family] = {"ms": round(ms), "kb": round(len(content) / 1024)}
    return figures


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(*, quick: bool = False, cases: int | None = None, workers: int | None = None, log=print) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="eldercare-pdf-bench-"))
    previous = os.environ.get("ELDERCARE_INSTANCE")
    os.environ["ELDERCARE_INSTANCE"] = str(folder)
    try:
        return _run(folder, quick=quick, cases=cases or (40 if quick else 300), workers=workers, log=log)
    finally:
        if previous is None:
            os.environ.pop("ELDERCARE_INSTANCE", None)
        else:
            os.environ["ELDERCARE_INSTANCE"] = previous
        shutil.rmtree(folder, ignore_errors=True)


def _run(folder: Path, *, quick: bool, cases: int, workers: int | None, log) -> dict:
    from casefiles import archive, casefile
    from workflows import archives, clock
    from workflows.db import make_engine, session_factory
    from workflows.models import Base

    url = f"sqlite:///{folder / 'bench.sqlite'}"
    uploads = folder / "attachments"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    make = session_factory(engine)
    villages = workload.villages()
    log("preparing cases ...")
    with make.begin() as session:
        users = workload.seed(session)
        typical = workload.typical_case(
            session,
            users,
            workload.make_elder(session, villages[0][1], users["assessor"]),
            upload_root=uploads,
        )
        long = workload.refused_case(
            session,
            users,
            workload.make_elder(session, villages[1][1]),
            loops=19,
            photos=2,
            upload_root=uploads,
        )
    rounds = 3 if quick else 7
    with make() as session:
        approver = session.get(type(users["approver"]), users["approver"].id)
        cpu: list[float] = []
        typical_ms, typical_pdf = _median_ms(
            lambda: casefile.render_casefile_pages(session, approver, typical.id, upload_root=uploads),
            rounds,
            cpu,
        )
        long_ms, long_pdf = _median_ms(
            lambda: casefile.render_casefile_pages(session, approver, long.id, upload_root=uploads),
            rounds,
            cpu,
        )
        long_steps = len(casefile.gather(session, approver, long.id, upload_root=uploads).steps)
    log(
        f"typical case file: {typical_ms:.0f} ms ({typical_pdf.pages} pages); "
        f"{long_steps}-step case file: {long_ms:.0f} ms ({long_pdf.pages} pages)"
    )

    log(f"preparing {cases} closed cases for the archive ...")
    made = 0
    while made < cases:
        with make.begin() as session:
            for _ in range(min(50, cases - made)):
                township, village = villages[made % len(villages)]
                elder = workload.make_elder(session, village, users["assessor"])
                workload.refused_case(
                    session, users, elder, loops=made % 3, photos=made % 2, upload_root=uploads
                )
                made += 1
    with make.begin() as session:
        job = archives.request_archive(session, None, "410825", clock.now().astimezone(archives.LOCAL).year)
        job_id = job.id
    engine.dispose()
    started = time.perf_counter()
    cpu_before = _cpu_seconds()
    target = archive.run_job(url, job_id, upload_root=uploads, workers=workers, log=log)
    seconds = time.perf_counter() - started
    cpu_per_case = (_cpu_seconds() - cpu_before) / cases
    per_s = cases / seconds
    cores = min(workers or os.cpu_count() or 1, os.cpu_count() or 1)
    result = {
        "font_short_page": font_figures(rounds),
        "typical_casefile_ms": round(typical_ms),
        "typical_casefile_cpu_ms": round(cpu[0]),
        "typical_casefile_pages": typical_pdf.pages,
        "typical_casefile_kb": round(len(typical_pdf.pdf) / 1024),
        "long_casefile_steps": long_steps,
        "long_casefile_ms": round(long_ms),
        "long_casefile_cpu_ms": round(cpu[1]),
        "long_casefile_pages": long_pdf.pages,
        "archive_cases": cases,
        "archive_workers": workers or os.cpu_count(),
        "archive_seconds": round(seconds, 1),
        "archive_per_s": round(per_s, 2),
        "archive_zip_mb": round(target.stat().st_size / 1048576, 1) if target else None,
        "county_year_2000_cases_minutes": round(2000 / per_s / 60, 1),
        # CPU the archive used per case (this process and its workers): what the machine must give each case,
        # and the year's time when the cores are the archive's alone.
        "archive_cpu_s_per_case": round(cpu_per_case, 3),
        "county_year_2000_cases_minutes_on_free_cores": round(2000 * cpu_per_case / cores / 60, 1),
        # Other work on the machine slows every figure here: the load when the run ended, for reading them.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "targets": {
            "typical_casefile_ms": 1000,
            "long_casefile_ms": 3000,
            "county_year_2000_cases_minutes": 10,
        },
    }
    result["meets_targets"] = (
        result["typical_casefile_ms"] < 1000
        and result["long_casefile_ms"] < 3000
        and result["county_year_2000_cases_minutes"] < 10
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    processes.install()
    print(json.dumps(run(quick=args.quick, cases=args.cases, workers=args.workers), ensure_ascii=False))


if __name__ == "__main__":
    main()
