"""Lead conversions per second against writing the same records by hand, in the same run.

Run ``python -m bench.bench_conversion`` (``--help`` for sizes and backends). For each
backend it initialises the CRM package, bulk-creates ``2 x --leads`` leads with phones
of their own, then times, one lead at a time:

* by hand (the baseline): one unit of work creating the customer and the contact
  and marking the lead converted - the writes a conversion makes, nothing else;
* convert: ``Converter.convert`` of ``lead_to_customer`` on the other leads (the
  scoped read of the lead, the version-guarded mark, the match-key checks, the
  links, the feed entries);
* preview: ``Converter.preview`` of leads not converted (what the review page costs).

Results go to the ``Conversion (issue 10)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from bench.databases import database
from bench.results import write_section
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.records.conversion import Converter
from engine.runtime import Runtime, open_runtime
from engine.storage.database import make_engine
from engine.storage.migrate import init_database

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "Conversion (issue 10)"
SYSTEM = Actor.system("bench")
NAME = "lead_to_customer"


@dataclass(frozen=True)
class Result:
    backend: str
    leads: int
    by_hand_s: float
    convert_s: float
    preview_s: float


def _leads(runtime: Runtime, count: int, *, offset: int) -> list[int]:
    rows = [{"company_name": f"Shop {offset + i}", "contact_name": f"Owner {offset + i}",
             "phone": f"139{offset + i:08d}", "email": f"o{offset + i}@example.com",
             "channel": "street", "status": "qualified"} for i in range(count)]
    return runtime.records.bulk_create(SYSTEM, "lead", rows)


def bench(runtime: Runtime, backend: str, count: int) -> Result:
    records = runtime.records
    manual = _leads(runtime, count, offset=0)
    converted = _leads(runtime, count, offset=count)
    previewed = _leads(runtime, count, offset=2 * count)
    started = time.perf_counter()
    for lead_id in manual:
        lead = records.get(SYSTEM, "lead", lead_id)
        with records.transaction(SYSTEM) as tx:
            customer = tx.create("customer", {"name": lead["company_name"],
                                              "phone": lead["phone"], "source_lead": lead_id})
            tx.create("contact", {"name": lead["contact_name"], "phone": lead["phone"],
                                  "email": lead["email"], "is_primary": True,
                                  "customer": customer.id})
            tx.update("lead", lead_id, {"status": "converted"}, version=lead.version)
    by_hand_s = time.perf_counter() - started

    converter = Converter(records)
    started = time.perf_counter()
    for lead_id in converted:
        converter.convert(SYSTEM, NAME, lead_id)
    convert_s = time.perf_counter() - started

    started = time.perf_counter()
    for lead_id in previewed:
        converter.preview(SYSTEM, NAME, lead_id)
    preview_s = time.perf_counter() - started
    made = records.count(SYSTEM, "customer")
    assert made == 2 * count, made
    return Result(backend, count, by_hand_s, convert_s, preview_s)


def report(results: list[Result], command: str, pg_version: str) -> str:
    lines = [
        (f"`{command}` on {platform.python_implementation()} {platform.python_version()}, "
         f"SQLite {__import__('sqlite3').sqlite_version}, {pg_version}; one lead at a time, "
         "each conversion its own transaction (customer + contact, lead marked)."),
        "",
        ("| backend | leads | by hand per lead | convert per lead (x by hand) | "
         "preview per lead |"),
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.leads:,} | {r.by_hand_s / r.leads * 1e3:.2f} ms | "
            f"{r.convert_s / r.leads * 1e3:.2f} ms ({r.convert_s / r.by_hand_s:.2f}x) | "
            f"{r.preview_s / r.leads * 1e3:.2f} ms |")
    lines += ["", ("How to read it: \"by hand\" reads the lead (as a client must, to know "
              "its version) and then makes the same rows in one unit of work; the conversion "
              "reads the lead inside its unit of work instead, and adds the converted check, "
              "the match-key probes and its feed entries, so it costs about what the "
              "hand-written unit does. The preview is one read of the lead plus the "
              "match-key probe for an existing customer.")]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_conversion",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=500)
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
            results.append(bench(runtime, backend, args.leads))
            engine.dispose()
    command = "python -m bench.bench_conversion" + (f" {' '.join(argv)}" if argv else "")
    body = report(results, command, pg_version)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
