"""Fuzzy dedup cost: warnings per checked row against the bulk create they accompany,
and how the cost moves when the table grows (it should not: index probes).

Run ``python -m bench.bench_dedup`` (``--help`` for sizes and backends). For each
backend it initialises the CRM package, bulk-creates ``--rows`` synthetic customers
(the table), then times, in the same run:

* bulk create of ``--check`` further customers in batches of ``--batch`` - the baseline;
* batch check: ``RecordService.dedup_warnings`` of the same rows, a batch at a time
  (the import and bulk API path: one GROUP BY over an IN list per rule per batch);
* single check: one call per row for ``--single`` rows (the form and API create path);
* the same batch check after the table has grown to 4x ``--rows``: the ratio of the
  two is the growth of the cost with the table (1.0x = independent of its size).

Results go to the ``Dedup warnings (issue 10)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.databases import database
from bench.results import write_section
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.runtime import Runtime, open_runtime
from engine.seeding import generate_rows
from engine.storage.database import make_engine
from engine.storage.migrate import init_database

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "Dedup warnings (issue 10)"
ENTITY = "customer"
SYSTEM = Actor.system("bench")


def _rows(runtime: Runtime, count: int, seed: int) -> list[dict[str, Any]]:
    # Name and phone only: the fields the rules read (and the unique key) decide the cost.
    entity = runtime.registry.entity(ENTITY)
    return [{"name": r["name"], "phone": None}
            for r in generate_rows(entity, count=count, seed=seed)]


def _fill(runtime: Runtime, rows: list[dict[str, Any]], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        runtime.records.bulk_create(SYSTEM, ENTITY, rows[start:start + batch])
    return time.perf_counter() - started


def _check(runtime: Runtime, rows: list[dict[str, Any]], batch: int) -> tuple[float, int]:
    started = time.perf_counter()
    warned = 0
    for start in range(0, len(rows), batch):
        warned += len(runtime.records.dedup_warnings(SYSTEM, ENTITY, rows[start:start + batch]))
    return time.perf_counter() - started, warned


def bench(runtime: Runtime, *, rows: int, check: int, single: int, batch: int
          ) -> dict[str, float]:
    table = _rows(runtime, rows, seed=1)
    _fill(runtime, table, batch)
    fresh = _rows(runtime, check, seed=2)
    # Every other checked row is a stored name spelled as a company ("... 有限公司"): a match.
    probe = [{"name": table[i]["name"] + " 有限公司", "phone": None} if i % 2 == 0 else
             fresh[i] for i in range(check)]
    _check(runtime, probe[:batch], batch)  # warm up: compiled statements, policy caches
    batch_s, warned = _check(runtime, probe, batch)
    started = time.perf_counter()
    for row in probe[:single]:
        runtime.records.dedup_warnings(SYSTEM, ENTITY, [row])
    single_s = time.perf_counter() - started
    bulk_s = _fill(runtime, probe, batch)
    _fill(runtime, _rows(runtime, 3 * rows - check, seed=3), batch)
    grown_s, _ = _check(runtime, probe, batch)
    return {"rows": rows, "check": check, "single": single, "bulk_s": bulk_s,
            "batch_s": batch_s, "single_s": single_s, "grown_s": grown_s, "warned": warned}


def report(results: dict[str, dict[str, float]], command: str, versions: str) -> str:
    lines = [
        (f"`{command}` on {platform.python_implementation()} {platform.python_version()}, "
         f"{versions}; customer names from the seeding generator; every other checked "
         "row is a stored name with a company suffix, so half the checks find a match."),
        "",
        ("| backend | table rows | bulk create per row | batch check per row (x bulk) | "
         "single check per call | batch check at 4x table (growth) | rows warned |"),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, r in results.items():
        bulk = r["bulk_s"] / r["check"]
        per = r["batch_s"] / r["check"]
        lines.append(
            f"| {backend} | {int(r['rows']):,} | {bulk * 1e6:.0f} us | {per * 1e6:.0f} us "
            f"({per / bulk:.2f}x) | {r['single_s'] / r['single'] * 1e6:.0f} us | "
            f"{r['grown_s'] / r['check'] * 1e6:.0f} us ({r['grown_s'] / r['batch_s']:.2f}x) "
            f"| {int(r['warned']):,} of {int(r['check']):,} |")
    lines += ["", ("How to read it: a check is one GROUP BY over an IN list per rule per "
                   "batch, read off the stem index, plus a read-scope probe for the matched "
                   "ids; growth near 1x means the cost does not depend on the table's size.")]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_dedup",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--check", type=int, default=5_000)
    parser.add_argument("--single", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    versions = f"SQLite {__import__('sqlite3').sqlite_version}"
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-bench-") as tmp, \
                database(backend, Path(tmp)) as url:
            engine = make_engine(url)
            init_database(engine, target=load_packages([CRM]), actor="bench")
            runtime = open_runtime(url, engine=engine)
            if backend == "postgresql":
                with engine.connect() as conn:
                    versions += ", PostgreSQL " + conn.execute(
                        text("SHOW server_version")).scalar_one()
            results[backend] = bench(runtime, rows=args.rows, check=args.check,
                                     single=args.single, batch=args.batch)
            engine.dispose()
    command = "python -m bench.bench_dedup" + (f" {' '.join(argv)}" if argv else "")
    body = report(results, command, versions)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
