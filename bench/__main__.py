"""`python -m bench engine|web|roster|pdf|migration|chaos|scaleout|bulk [--quick] [--no-postgres]`: run one
benchmark; the last line printed is one JSON object with the figures (progress goes to standard error)."""

import argparse
import json
import sys

from workflows import processes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="eldercare bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "which", choices=["engine", "web", "roster", "pdf", "migration", "chaos", "scaleout", "bulk"]
    )
    parser.add_argument("--quick", action="store_true", help="smaller workload (for a smoke run)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    processes.install()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.which == "engine":
        from . import engine_bench

        result = engine_bench.run(
            n_cases=10 if args.quick else 40,
            rounds=1 if args.quick else 5,
            skip_postgres=args.no_postgres,
            log=log,
        )
    elif args.which == "pdf":
        from . import pdf_bench

        result = pdf_bench.run(quick=args.quick, log=log)
    elif args.which == "migration":
        from . import migration_bench

        result = migration_bench.run(quick=args.quick, skip_postgres=args.no_postgres, log=log)
    elif args.which == "scaleout":
        from . import scaleout

        result = scaleout.run(quick=args.quick, log=log)
    elif args.which == "bulk":
        from . import bulk_bench

        result = bulk_bench.run(quick=args.quick, skip_postgres=args.no_postgres, log=log)
    elif args.which == "chaos":
        from . import chaos

        result = chaos.run(quick=args.quick, skip_postgres=args.no_postgres, log=log)
    elif args.which == "roster":
        from . import roster_bench

        result = roster_bench.run(rows=1000 if args.quick else 10000)
    else:
        from . import web_bench

        result = web_bench.run(quick=args.quick, skip_postgres=args.no_postgres, log=log)
    print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
