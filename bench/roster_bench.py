"""Time a roster import: 10,000 generated rows (.xlsx) into a fresh database; print one JSON line.

    .venv/bin/python -m bench.roster_bench [--rows 10000] [--url postgresql+psycopg://...]

Without --url the database is a new SQLite file in a temporary folder. The target is under 30 s on the
2-core reference machine; the time covers reading the file, checking every row and the inserts.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import workflows.models.elders  # noqa: F401  (registers the elder tables)
from workflows import processes
from workflows.db import make_engine
from workflows.demo import TOWNSHIPS, load_demo_registry
from workflows.models import Base, User
from workflows.models.elders import Elder
from workflows.roster import COLUMNS, import_roster
from workflows.rules.idnumber import compute_check_char

HEADERS = [header for header, _key in COLUMNS[:20]]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = "建国秀英桂兰玉兰德胜凤英广才长顺富贵淑珍金山振华翠花有福素芬志刚"


def write_roster(path: Path, rows: int, seed: int = 20251123) -> None:
    """Write a roster of `rows` valid, distinct elders in the demo county."""
    rng = random.Random(seed)
    villages = [(code, name) for _t, township, vs in TOWNSHIPS for code, name, _c in vs]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("名册")
    sheet.append(HEADERS)
    used: set[str] = set()
    first, span = date(1925, 1, 1), (date(1960, 12, 31) - date(1925, 1, 1)).days
    while len(used) < rows:
        birth = first + timedelta(days=rng.randint(0, span))
        area = rng.choice(("410825", "410883", "410822", "110105"))
        first17 = f"{area}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
        number = first17 + compute_check_char(first17)
        if number in used:
            continue
        used.add(number)
        village_code, village_name = rng.choice(villages)
        tekun = rng.random() < 0.06
        dibao = not tekun and rng.random() < 0.12
        alone = rng.random() < 0.15
        handicap = rng.random() < 0.05
        sheet.append(
            [
                rng.choice(SURNAMES) + GIVEN[rng.randrange(0, len(GIVEN), 2) :][:2],
                number,
                "1" + rng.choice("3589") + f"{rng.randint(0, 999_999_999):09d}",
                rng.choice(("农村", "城镇")),
                village_code if rng.random() < 0.5 else village_name,
                f"{rng.randint(1, 12)}组{rng.randint(1, 80)}号",
                "独居" if alone else rng.choice(("与配偶同住", "与子女同住")),
                "是" if dibao else "否",
                "否",
                "是" if tekun else "否",
                "是" if tekun else "否",
                "否",
                "是" if alone else "否",
                "否",
                "否",
                "是" if handicap else "否",
                rng.choice((1, 2)) if handicap else None,
                "否",
                "否",
                "否",
            ]
        )
    workbook.save(path)


def run(rows: int = 10_000, url: str | None = None) -> dict:
    """Import a generated roster of `rows` rows into a fresh database; return the figures."""
    with tempfile.TemporaryDirectory() as folder:
        roster = Path(folder) / "roster.xlsx"
        write_roster(roster, rows)
        engine = make_engine(url or f"sqlite:///{Path(folder) / 'bench.sqlite'}")
        if url:
            Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            load_demo_registry(session, "bench-password")
        with Session(engine) as session:
            started = time.perf_counter()
            with session.begin():
                admin = session.scalar(select(User).where(User.username == "admin"))
                report = import_roster(session, admin, roster)
            seconds = time.perf_counter() - started
            total = session.scalar(select(func.count()).select_from(Elder))
        engine.dispose()
    return {
        "bench": "roster_import",
        "database": engine.dialect.name,
        "rows": rows,
        "imported": report.imported,
        "problems": len(report.problems),
        "elders_in_db": total,
        "seconds": round(seconds, 2),
        "target_seconds": 30,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--url", help="database URL (default: a new SQLite file)")
    args = parser.parse_args(argv)
    processes.install()
    print(json.dumps(run(args.rows, args.url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
