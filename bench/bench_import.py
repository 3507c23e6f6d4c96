"""Import rows/s (CSV and XLSX) against the bulk create it rides on, in the same run.

Run ``python -m bench.bench_import`` (``--help`` for sizes and backends). For each
backend it initialises the CRM package and generates ``--rows`` synthetic customers
(the seeding generator; scalar fields only: money, address, geo and multi-select
cells have no one-cell spelling), then times, each on an empty table:

* bulk create: ``RecordService.bulk_create`` of the rows (Python values), batches
  of ``--batch`` - the baseline;
* CSV import: the same rows written as a UTF-8 CSV, read, mapped by header and
  imported with ``run_import`` (string coercion, in-file key check, batches);
* XLSX import: the same through an .xlsx workbook (openpyxl, read-only mode);
* duplicate lookup: ``dedup.holders`` of every row against the full table (the
  probe skip and upsert modes make per batch), per row.

Results go to the ``Import (issue 10)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import delete, text

from bench.databases import database
from bench.results import write_section
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.metadata.model import FieldType
from engine.records.dedup import holders
from engine.runtime import Runtime, open_runtime
from engine.seeding import generate_rows
from engine.storage.database import make_engine
from engine.storage.migrate import init_database
from engine.workflow.import_files import read_table
from engine.workflow.imports import match_columns, run_import

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "Import (issue 10)"
ENTITY = "customer"
SYSTEM = Actor.system("bench")
SKIPPED_TYPES = {FieldType.MONEY, FieldType.ADDRESS, FieldType.GEO_POINT,
                 FieldType.MULTI_SELECT, FieldType.FILE, FieldType.REFERENCE, FieldType.USER,
                 FieldType.AUTO_NUMBER}


@dataclass(frozen=True)
class Result:
    backend: str
    rows: int
    bulk_s: float
    csv_s: float
    xlsx_s: float
    xlsx_read_s: float
    lookup_s: float


def _rows(runtime: Runtime, count: int) -> tuple[list[str], list[dict[str, Any]]]:
    entity = runtime.registry.entity(ENTITY)
    names = [f.name for f in entity.fields if f.type not in SKIPPED_TYPES]
    rows = [{n: r[n] for n in names if n in r}
            for r in generate_rows(entity, count=count, seed=7)]
    return names, rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _empty(runtime: Runtime) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(delete(runtime.schema.system["tp_activity"]))
        conn.execute(delete(runtime.schema.table(ENTITY)))


def bench(runtime: Runtime, backend: str, count: int, batch: int) -> Result:
    names, rows = _rows(runtime, count)
    started = time.perf_counter()
    for start in range(0, count, batch):
        runtime.records.bulk_create(SYSTEM, ENTITY, rows[start:start + batch])
    bulk_s = time.perf_counter() - started

    plan = runtime.records.plan(ENTITY)
    started = time.perf_counter()
    with runtime.engine.connect() as conn:
        for start in range(0, count, batch):
            holders(conn, plan, rows[start:start + batch])
    lookup_s = time.perf_counter() - started
    _empty(runtime)

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    writer.writerows([_cell(r.get(n)) for n in names] for r in rows)
    data = out.getvalue().encode("utf-8")
    entity = runtime.registry.entity(ENTITY)
    started = time.perf_counter()
    table = read_table(data, filename="rows.csv")
    report = run_import(runtime.records, SYSTEM, entity=ENTITY, table=table,
                        mapping=match_columns(entity, table.headers), batch=batch)
    csv_s = time.perf_counter() - started
    assert report.created == count, (report.created, report.rejected[:3])
    _empty(runtime)

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(names)
    for r in rows:
        sheet.append([_cell(r.get(n)) for n in names])
    buffer = io.BytesIO()
    book.save(buffer)
    started = time.perf_counter()
    table = read_table(buffer.getvalue(), filename="rows.xlsx")
    xlsx_read_s = time.perf_counter() - started
    report = run_import(runtime.records, SYSTEM, entity=ENTITY, table=table,
                        mapping=match_columns(entity, table.headers), batch=batch)
    xlsx_s = time.perf_counter() - started
    assert report.created == count, (report.created, report.rejected[:3])
    _empty(runtime)
    return Result(backend, count, bulk_s, csv_s, xlsx_s, xlsx_read_s, lookup_s)


def report(results: list[Result], command: str, pg_version: str, batch: int) -> str:
    lines = [
        (f"`{command}` on {platform.python_implementation()} {platform.python_version()}, "
        f"SQLite {__import__('sqlite3').sqlite_version}, {pg_version}; {ENTITY} rows of "
        f"the scalar CRM fields, batches of {batch}, each on an empty table."),
        "",
        ("| backend | rows | bulk create rows/s | CSV import rows/s (x bulk time) | "
        "XLSX import rows/s (x bulk time; read share) | duplicate lookup per row |"),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.rows:,} | {r.rows / r.bulk_s:,.0f} | "
            f"{r.rows / r.csv_s:,.0f} ({r.csv_s / r.bulk_s:.2f}x) | "
            f"{r.rows / r.xlsx_s:,.0f} ({r.xlsx_s / r.bulk_s:.2f}x; "
            f"{r.xlsx_read_s / r.xlsx_s:.0%}) | {r.lookup_s / r.rows * 1e6:.1f} us "
            f"({r.lookup_s / r.bulk_s:.0%} of a bulk-created row) |")
    lines += ["", ("How to read it: an import is a bulk create plus reading and string "
              "coercion, the in-file key check and the error bookkeeping; the XLSX read "
              "share is openpyxl parsing the workbook. The duplicate lookup is one IN probe "
              "per unique key per batch on the match-key index.")]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_import",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    results: list[Result] = []
    pg_version = "PostgreSQL not run"
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-bench-") as tmp, \
                database(backend, Path(tmp)) as url:
            engine = make_engine(url)
            init_database(engine, target=load_packages([CRM]), actor="bench")
            runtime = open_runtime(url, engine=engine)
            if backend == "postgresql":
                with engine.connect() as conn:
                    pg_version = "PostgreSQL " + conn.execute(
                        text("SHOW server_version")).scalar_one()
            results.append(bench(runtime, backend, args.rows, args.batch))
            engine.dispose()
    command = "python -m bench.bench_import" + (f" {' '.join(argv)}" if argv else "")
    body = report(results, command, pg_version, args.batch)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
