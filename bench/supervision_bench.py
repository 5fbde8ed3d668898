"""Supervision pages on the web benchmark's county: the dashboard and the case list, rendered through the app.

`web_bench.fill` makes 50 townships, 50,000 elders, 200,000 cases and 1,000,000 task rows; `add_figures`
adds what the dashboard counts besides (bulk rows, no engine): 5,000 elders in visiting care (a tenth of
them 特困 supported at home, visited weekly) with three months of visits, 2,000 home-care service months with
their 六助 records, 600 waitlist entries at 4 homes, 500 paid home adaptations.

pages_p50_ms / pages_p95_ms: GET requests through the Flask app (view, use case, template, response), signed
in through the login form, for a county approver and township caseworkers:
- dashboard: /dashboard for the county and for a township (every figure: open cases by step, overdue by
  township and role, visit rates, waitlist, services, adaptation, assessments, occupancy);
- case list: /cases for the county and for a township: default, running only, overdue, a process and step,
  a search by elder name, a date range, page 50, sorted by last update.
Each is also reported by scope (`_county_`, `_township_`). The dashboard is measured counted afresh on every
request; `dashboard_recent_p95_ms` is the page as served with figures counted within the last minute
(DASHBOARD_MAX_AGE, the default), as people get it.

Target: p95 <= 200 ms for both pages on SQLite and PostgreSQL.

    .venv/bin/python -m bench.supervision_bench [--quick] [--no-postgres]   (also part of `eldercare bench web`)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, text, update

from bench import web_bench
from workflows.clock import month_end
from workflows.db import make_engine
from workflows.models import Case, Elder, User
from workflows.models.admission import TIER_RANK, Facility, Tier, WaitlistEntry
from workflows.models.care import HomeCareEnrolment, HomeCareMonth, Visit, VisitingEnrolment

SIX = ("meal", "cleaning", "bathing", "mobility", "medical", "personal_care")
TARGET_MS = 200


def add_figures(url: str, scale: dict, seed: int = 1123) -> dict:
    """Bulk-insert the rows the dashboard counts besides cases and tasks; return how many of each."""
    rng = random.Random(seed)
    engine = make_engine(url)
    today = datetime.now(UTC).astimezone(web_bench_local()).date()
    now = datetime.now(UTC)
    n_elders = scale["elders"]
    counts = {}
    with engine.begin() as conn:
        elders = conn.execute(
            select(Elder.id, Elder.residence_area_code, Elder.tekun).where(Elder.id % 10 == 0)
        ).all()
        # A tenth of the register on the visiting list; its 特困 members supported at home (visited weekly).
        conn.execute(update(Elder).where(Elder.id % 10 == 0, Elder.tekun.is_(True)).values(home_support=True))
        cases = conn.execute(select(Case.id).order_by(Case.id)).scalars().all()
        enrolments, visits = [], []
        for k, (elder_id, area, tekun) in enumerate(elders):
            enrolments.append(
                {
                    "id": k + 1,
                    "elder_id": elder_id,
                    "case_id": cases[k],
                    "area_code": area,
                    "status": "active",
                    "frequency": "weekly" if tekun else "monthly",
                    "categories": "[]",
                    "started_on": today - timedelta(days=400),
                    "next_period_start": today,
                    "last_visited_on": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            first = today.replace(day=1)
            for months_back in range(3):
                start = (first - timedelta(days=31 * months_back)).replace(day=1)
                if rng.random() < 0.85:
                    day = start + timedelta(days=rng.randint(0, (min(month_end(start), today) - start).days))
                    visits.append(_visit(k + 1, elder_id, area, start, month_end(start), day, now))
            if tekun:
                monday = today - timedelta(days=today.weekday())
                for weeks_back in range(1, 5):
                    start = monday - timedelta(days=7 * weeks_back)
                    if start >= first - timedelta(days=62) and rng.random() < 0.8:
                        visits.append(
                            _visit(
                                k + 1,
                                elder_id,
                                area,
                                start,
                                start + timedelta(days=6),
                                start + timedelta(days=rng.randint(0, 6)),
                                now,
                                weekly=True,
                            )
                        )
        conn.execute(insert(VisitingEnrolment), enrolments)
        seen = set()
        unique = []
        for v in visits:
            key = (v["enrolment_id"], v["period_start"])
            if key not in seen:
                seen.add(key)
                unique.append(v)
        for i in range(0, len(unique), 5000):
            conn.execute(insert(Visit), unique[i : i + 5000])
        counts.update(visiting_enrolments=len(enrolments), visits=len(unique))

        # Home care: 2,000 elders (1 % of the cases) with this month's service month; the records sit in the
        # month case's data.
        provider = conn.execute(select(User.id).where(User.username == "provider")).scalar_one()
        month_cases = cases[len(cases) // 20 : len(cases) // 20 + len(cases) // 100]
        homes, months = [], []
        for k, case_id in enumerate(month_cases):
            elder_id = rng.randint(1, n_elders)
            area = web_bench.village_code(
                web_bench.township_code((elder_id - 1) % 200 // 4), (elder_id - 1) % 4
            )
            records = [
                {
                    "service_date": (
                        today.replace(day=1) + timedelta(days=rng.randint(0, today.day - 1))
                    ).isoformat(),
                    "service_type": rng.choice(SIX),
                    "minutes": 60,
                    "amount": f"{rng.choice((20, 30, 50, 80))}.00",
                    "staff_name": "护理员",
                }
                for _ in range(rng.randint(0, 6))
            ]
            conn.execute(
                update(Case).where(Case.id == case_id).values(data=json.dumps({"services": records}))
            )
            homes.append(
                {
                    "id": k + 1,
                    "elder_id": elder_id,
                    "case_id": case_id,
                    "area_code": area,
                    "status": "active",
                    "disability_level": "moderate",
                    "monthly_quota": Decimal("300.00"),
                    "provider_id": provider,
                    "services": "[]",
                    "started_on": today - timedelta(days=200),
                    "next_month": today.replace(day=1) + timedelta(days=32),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            months.append(
                {
                    "enrolment_id": k + 1,
                    "month": today.replace(day=1),
                    "case_id": case_id,
                    "status": "open",
                    "service_count": 0,
                    "service_total": Decimal("0.00"),
                    "flagged": False,
                    "flags": "[]",
                    "created_at": now,
                }
            )
        conn.execute(insert(HomeCareEnrolment), homes)
        conn.execute(insert(HomeCareMonth), months)
        counts.update(home_care_months=len(months))

        # Four homes and 600 applicants waiting (0.3 % of the cases; each entry has a case of its own).
        facilities = [
            {
                "id": i + 1,
                "name": f"第{i + 1}敬老院",
                "area_code": web_bench.COUNTY,
                "address": "",
                "phone": "",
                "beds": 120,
                "is_active": True,
                "created_at": now,
            }
            for i in range(4)
        ]
        conn.execute(insert(Facility), facilities)
        entries = []
        for k, case_id in enumerate(cases[len(cases) // 10 : len(cases) // 10 + len(cases) * 3 // 1000]):
            tier = rng.choice(list(Tier))
            elder_id = rng.randint(1, n_elders)
            applied = now - timedelta(days=rng.randint(1, 400))
            entries.append(
                {
                    "facility_id": k % 4 + 1,
                    "elder_id": elder_id,
                    "case_id": case_id,
                    "area_code": web_bench.village_code(web_bench.township_code(k % 50), k % 4),
                    "tier": tier.value,
                    "tier_rank": TIER_RANK[tier],
                    "tier_reason": "",
                    "applied_at": applied,
                    "joined_at": applied,
                    "status": "waiting",
                }
            )
        conn.execute(insert(WaitlistEntry), entries)
        counts.update(waitlist_entries=len(entries))

        # 500 finished cases are paid home adaptations, spread over this year and the last two.
        adapted = (
            conn.execute(select(Case.id).where(Case.status == "completed").order_by(Case.id).limit(500))
            .scalars()
            .all()
        )
        for case_id in adapted:
            ended = now - timedelta(days=rng.randint(1, 900))
            conn.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(
                    process_key="home_adaptation",
                    ended_at=ended,
                    data=json.dumps({"paid_amount": "3000.00", "paid_on": ended.date().isoformat()}),
                )
            )
        counts.update(adaptations=len(adapted))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return counts


def web_bench_local():
    from workflows.deadlines import LOCAL

    return LOCAL


def _visit(enrolment_id, elder_id, area, start, end, day, now, weekly=False) -> dict:
    return {
        "enrolment_id": enrolment_id,
        "elder_id": elder_id,
        "area_code": area,
        "case_id": None,
        "period_start": start,
        "period_end": end,
        "status": "done",
        "visited_on": day,
        "method": "phone",
        "visitor_id": None,
        "services": "[]",
        "findings": "{}",
        "emergency": False,
        "referrals": "[]",
        "overdue_at": None,
        "recorded_at": now,
        "created_at": now,
    }


# --------------------------------------------------------------------------------------------------


def _client(app, username: str):
    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login", data={"username": username, "password": web_bench.PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.text[:200]
    return client


def measure_pages(url: str, samples: int = 120, seed: int = 11) -> dict:
    """p50/p95 of the dashboard and the case list, rendered through the app, per page kind; every
    dashboard counted afresh (DASHBOARD_MAX_AGE 0), then the dashboard as served within a minute of a count."""
    from webapp import create_app

    rng = random.Random(seed)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": False, "DASHBOARD_MAX_AGE": 0})
    engine = make_engine(url)
    with engine.connect() as conn:
        names = conn.execute(select(Elder.name).limit(200)).scalars().all()
    engine.dispose()
    approver = _client(app, "approver")
    caseworkers = [_client(app, f"cw{i:03d}") for i in rng.sample(range(1, web_bench.TOWNSHIPS + 1), 5)]
    month = date.today().replace(day=1)
    dashboard_urls = [
        ("county", approver, "/dashboard"),
        ("township", approver, f"/dashboard?area={web_bench.township_code(7)}"),
        ("township", None, "/dashboard"),  # a township caseworker's own
    ]
    case_urls = [
        "/cases",
        "/cases?status=running",
        "/cases?overdue=1",
        "/cases?process=bench_home_care&step=approval&status=running",
        lambda: f"/cases?q={rng.choice(names)}",
        f"/cases?started_from={(month - timedelta(days=90)).isoformat()}&started_to={month.isoformat()}",
        "/cases?page=50",
        "/cases?sort=updated&status=completed",
    ]
    timings: dict[str, list[float]] = {
        "dashboard": [],
        "case_list": [],
        "dashboard_county": [],
        "dashboard_township": [],
        "case_list_county": [],
        "case_list_township": [],
    }
    failures = []
    for i in range(samples + 10):
        for kind in ("dashboard", "case_list"):
            if kind == "dashboard":
                scope, who, path = dashboard_urls[i % len(dashboard_urls)]
            else:
                path = case_urls[i % len(case_urls)]
                path = path() if callable(path) else path
                who = approver if i % 2 else None
                scope = "county" if who else "township"
            client = who or rng.choice(caseworkers)
            t0 = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                failures.append(f"{path} {response.status_code}")
            if i >= 10:  # warm-up excluded
                timings[kind].append(elapsed)
                timings[f"{kind}_{scope}"].append(elapsed)
    if failures:
        raise RuntimeError("pages failed: " + "; ".join(failures[:5]))
    out = {}
    for kind, values in timings.items():
        values.sort()
        out[f"{kind}_p50_ms"] = round(statistics.median(values), 1)
        out[f"{kind}_p95_ms"] = round(values[max(0, int(len(values) * 0.95) - 1)], 1)
        if kind in ("dashboard", "case_list"):
            out[f"{kind}_max_ms"] = round(values[-1], 1)
    # The same dashboards as people get them: counted at most a minute before.
    app.config["DASHBOARD_MAX_AGE"] = 60
    warm = []
    for i in range(samples // 2 + 3):
        scope, who, path = dashboard_urls[i % len(dashboard_urls)]
        client = who or caseworkers[i % len(caseworkers)]
        t0 = time.perf_counter()
        assert client.get(path).status_code == 200
        if i >= 3:
            warm.append((time.perf_counter() - t0) * 1000)
    warm.sort()
    out["dashboard_recent_p95_ms"] = round(warm[int(len(warm) * 0.95) - 1], 1)
    out["pages_samples"] = samples
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    app.extensions["db_engine"].dispose()
    return out


def bench_database(url: str, *, quick: bool, filled: bool = False, log=print) -> dict:
    """Fill (unless the web benchmark did), add the dashboard's rows, and measure the two pages."""
    scale = web_bench._scaled(quick)
    result = {}
    if not filled:
        log(f"filling {url.split('://')[0]}: {scale['cases']:,} cases ...")
        result.update(web_bench.fill(url, scale, log=log))
    result.update(add_figures(url, scale))
    log("  measuring the dashboard and the case list ...")
    result.update(measure_pages(url, samples=40 if quick else 120))
    log(f"  dashboard p95 {result['dashboard_p95_ms']} ms, case list p95 {result['case_list_p95_ms']} ms")
    return result


def run(quick: bool = False, skip_postgres: bool = False, log=print) -> dict:
    out: dict = {"quick": quick, "scale": web_bench._scaled(quick)}
    with tempfile.TemporaryDirectory(prefix="eldercare-supervision-bench-") as tmp:
        out["sqlite"] = bench_database(f"sqlite:///{tmp}/web.sqlite", quick=quick, log=log)
    if not skip_postgres:
        from bench import engine_bench

        pg_url, pg_folder = engine_bench.postgres_url()
        try:
            from sqlalchemy import text as sql

            admin = make_engine(pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sql("DROP DATABASE IF EXISTS eldercare_supervision_bench"))
                conn.execute(sql("CREATE DATABASE eldercare_supervision_bench"))
            admin.dispose()
            out["postgres"] = bench_database(
                pg_url.rsplit("/", 1)[0] + "/eldercare_supervision_bench", quick=quick, log=log
            )
        finally:
            if pg_folder:
                from bench import pgcluster

                pgcluster.discard(pg_folder)
    out["targets"] = {"dashboard_p95_ms": TARGET_MS, "case_list_p95_ms": TARGET_MS}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--measure-only", metavar="URL", help="measure the pages of a database filled before")
    args = parser.parse_args(argv)
    from workflows import processes

    processes.install()
    if args.measure_only:
        print(json.dumps(measure_pages(args.measure_only, samples=40 if args.quick else 120)))
        return 0
    result = run(quick=args.quick, skip_postgres=args.no_postgres, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
