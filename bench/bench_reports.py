"""Reports benchmark: the leaderboard from the daily rollups and the funnel from the report
compiler, each against the raw aggregate SQL over the base tables in the same run, on
SQLite and PostgreSQL; and what keeping the rollups adds to a write.

Rows are loaded with plain INSERTs (loading is not what is measured), then the rollups
are rebuilt (``tidepool reports rebuild``; its time is reported). Timings are medians
over many calls of one process on a shared machine; read the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, select, text

from bench.databases import database
from bench.results import write_section
from bench.timing import Timing, ratio, time_calls
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.permissions.identity import create_user
from engine.permissions.org import create_department
from engine.records.service import RecordService
from engine.reports.catalog import catalog_of, report_of
from engine.reports.compiler import ReportRunner
from engine.reports.leaderboard import board
from engine.reports.periods import window
from engine.reports.rollups import RollupKeeper
from engine.reports.zone import day_start, local_day
from engine.runtime import Runtime, install_hooks, open_runtime
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import init_database
from tests.conftest import REPO_ROOT

CRM = REPO_ROOT / "apps" / "crm"
HEADING = "Reports (issue 11)"
TEAMS = 10
REPS_PER_TEAM = 20
DAYS = 365
BATCH = 20_000
ROOT = Actor.system("bench")


@dataclass(frozen=True)
class Row:
    backend: str
    size: str
    case: str
    engine: Timing
    baseline: Timing

    @property
    def ratio(self) -> float:
        return ratio(self.engine, self.baseline)


def _runtime(url: str) -> Runtime:
    engine = make_engine(url)
    init_database(engine, target=load_packages([CRM]), actor="bench")
    return open_runtime(url, engine=engine)


def _people(runtime: Runtime) -> list[int]:
    with write_transaction(runtime.engine) as conn:
        top = create_department(conn, code="sales", name="Sales").id
        reps = []
        for t in range(TEAMS):
            team = create_department(conn, code=f"team{t}", name=f"Team {t}", parent_id=top).id
            reps += [create_user(conn, login=f"rep{t}_{i}", display_name=f"Rep {t}-{i}",
                                 department_id=team).id for i in range(REPS_PER_TEAM)]
    return reps


def _load(runtime: Runtime, entity: str, count: int, make: Any) -> None:
    table = runtime.schema.table(entity)
    rng = random.Random(entity)
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        rows = [make(rng, done + i) for i in range(n)]
        with runtime.engine.begin() as conn:
            conn.execute(insert(table), rows)
        done += n


def load(runtime: Runtime, reps: list[int], *, customers: int, follow_ups: int) -> dt.date:
    """Customers, leads (a fifth), opportunities (a fifth) and follow-ups over a year."""
    today = local_day(dt.datetime.now(dt.UTC))
    start = day_start(today - dt.timedelta(days=DAYS - 1))

    def when(rng: random.Random) -> dt.datetime:
        return start + dt.timedelta(seconds=rng.randrange(DAYS * 86400))

    def base(rng: random.Random) -> dict[str, Any]:
        at = when(rng)
        return {"created_at": at, "updated_at": at, "version": 1, "owner_id": rng.choice(reps)}

    _load(runtime, "customer", customers, lambda rng, i: {**base(rng), "name": f"c{i}"})
    _load(runtime, "lead", customers // 5, lambda rng, i: {
        **base(rng), "company_name": f"l{i}", "phone": f"1{i:010d}", "channel": "sem",
        "status": "new"})
    stages = ["research", "offer", "quote", "won", "lost"]

    def opportunity(rng: random.Random, i: int) -> dict[str, Any]:
        row = {**base(rng), "name": f"o{i}", "customer": 1 + rng.randrange(customers),
               "stage": rng.choice(stages), "amount": Decimal(rng.randrange(100, 100_000)),
               "amount_currency": "CNY"}
        row["expected_close"] = local_day(row["created_at"]) + dt.timedelta(days=30)
        return row

    _load(runtime, "opportunity", customers // 5, opportunity)
    kinds = ["call", "visit", "message", "meeting"]
    _load(runtime, "follow_up", follow_ups, lambda rng, i: {
        **base(rng), "code": f"F{i:09d}", "kind": rng.choice(kinds), "content": "x",
        "customer": 1 + rng.randrange(customers), "happened_at": when(rng)})
    with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if runtime.engine.dialect.name == "postgresql"
                          else "ANALYZE"))
    return today


def bench_leaderboard(runtime: Runtime, backend: str, size: str, today: dt.date,
                      runs: int) -> list[Row]:
    registry = runtime.registry
    keeper = RollupKeeper(runtime.schema, registry)
    month = window("this_month", today=today)
    quarter = window("this_quarter", today=today)
    out = []
    for name, w in (("follow_ups", month), ("follow_ups", quarter), ("new_customers", month),
                    ("won_amount", quarter)):
        m = catalog_of(registry).board_measure(name)
        assert m is not None and w.first and w.end

        def engine_call(m: Any = m, w: Any = w) -> object:
            return board(runtime.records, registry, ROOT, measure=m.name, window=w,
                         scope="all")

        def raw_call(m: Any = m, w: Any = w) -> object:
            with runtime.engine.connect() as conn:
                return keeper.raw_totals(conn, runtime.records, m, first=w.first, end=w.end)

        with runtime.engine.connect() as conn:
            assert keeper.rollup_totals(conn, m, first=w.first, end=w.end) == \
                keeper.raw_totals(conn, runtime.records, m, first=w.first, end=w.end)
        case = f"leaderboard {name}, {w.name} (all {TEAMS * REPS_PER_TEAM} reps)"
        out.append(Row(backend, size, case, time_calls(case, engine_call, runs=runs),
                       time_calls(case, raw_call, runs=max(5, runs // 4), warmup=2)))
    return out


def bench_funnel(runtime: Runtime, backend: str, size: str, today: dt.date,
                 runs: int) -> list[Row]:
    runner = ReportRunner(runtime.records, runtime.registry)
    report = report_of(runtime.registry, "sales_funnel")
    w = window("this_month", today=today)
    assert w.first and w.end
    first, end = day_start(w.first), day_start(w.end)
    tables = {n: runtime.schema.table(n) for n in ("lead", "customer", "opportunity")}

    def raw() -> object:
        lead, cust, opp = tables["lead"], tables["customer"], tables["opportunity"]
        with runtime.engine.connect() as conn:
            return [conn.execute(select(func.count()).where(
                        lead.c.created_at >= first, lead.c.created_at < end,
                        lead.c.deleted_at.is_(None))).scalar_one(),
                    conn.execute(select(func.count()).where(
                        cust.c.created_at >= first, cust.c.created_at < end,
                        cust.c.source_lead.is_not(None), cust.c.deleted_at.is_(None))
                    ).scalar_one(),
                    conn.execute(select(func.count(), func.count(
                        and_(opp.c.stage == "won", True).self_group())).where(
                        opp.c.created_at >= first, opp.c.created_at < end,
                        opp.c.deleted_at.is_(None))).one()]

    def compiled() -> object:
        return runner.run(ROOT, report, w)

    case = "funnel this month (4 steps, 3 entities)"
    slow_runs = max(5, runs // 10)
    return [Row(backend, size, case, time_calls(case, compiled, runs=slow_runs, warmup=2),
                time_calls(case, raw, runs=slow_runs, warmup=2))]


def bench_write(runtime: Runtime, backend: str, size: str, reps: list[int],
                runs: int) -> Row:
    plain = RecordService(engine=runtime.engine, schema=runtime.schema)
    kept = install_hooks(RecordService(engine=runtime.engine, schema=runtime.schema))
    counter = iter(range(10**9))

    def create(service: RecordService) -> object:
        return service.create(ROOT, "follow_up", {
            "kind": "visit", "content": "bench", "customer": 1, "owner_id": reps[0],
            "happened_at": dt.datetime.now(dt.UTC).isoformat(), "next_at": None,
            "lead": None} if next(counter) >= 0 else {})

    case = "create a follow-up (with vs without rollup hook)"
    return Row(backend, size, case, time_calls(case, lambda: create(kept), runs=runs),
               time_calls(case, lambda: create(plain), runs=runs))


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"


READING = """

How to read it: *engine* is what Tidepool serves (the leaderboard from `tp_rollup_daily`,
the funnel from the report compiler with the reader's scope clause, a create with the
rollup hook); *baseline* is the raw aggregate SQL over the base tables in the same run (for
the leaderboard: `GROUP BY owner_id` over the date range, which the rollups are checked to
equal before timing; for the funnel: three hand-written counts) or, for the write, the same
create without the hook. A leaderboard ratio far below 1 is the rollups' point: the ranking
reads a few thousand owner-day rows however many records there are. The funnel reads the
base tables and costs about what the raw counts cost; the write row shows the hook's price.
"""


def report(rows: Sequence[Row], rebuilds: Sequence[tuple[str, str, float]], command: str,
           note: str) -> str:
    lines = [f"`{command}` on {machine()}; {note}.", "",
             "| backend | rows | case | engine ms (p95) | baseline ms (p95) | ratio |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.backend} | {r.size} | {r.case} | {r.engine.median_ms:.2f} "
                     f"({r.engine.p95_ms:.2f}) | {r.baseline.median_ms:.2f} "
                     f"({r.baseline.p95_ms:.2f}) | {r.ratio:.3f} |")
    lines += ["", "| backend | rows | rollup rebuild (s) |", "|---|---|---|"]
    lines += [f"| {b} | {s} | {secs:.1f} |" for b, s, secs in rebuilds]
    return "\n".join(lines) + READING


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_reports",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--follow-ups", type=int, default=5_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    size = f"{args.customers:,} customers / {args.follow_ups:,} follow-ups"
    rows: list[Row] = []
    rebuilds: list[tuple[str, str, float]] = []
    pg = "PostgreSQL not run"
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-bench-") as tmp, \
                database(backend, Path(tmp)) as url:
            runtime = _runtime(url)
            if backend == "postgresql":
                with runtime.engine.connect() as conn:
                    pg = "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar_one()
            reps = _people(runtime)
            print(f"{backend}: loading {size}", flush=True)
            today = load(runtime, reps, customers=args.customers, follow_ups=args.follow_ups)
            started = time.perf_counter()
            with write_transaction(runtime.engine) as conn:
                RollupKeeper(runtime.schema, runtime.registry).rebuild(conn, runtime.records)
            rebuilds.append((backend, size, time.perf_counter() - started))
            print(f"  rollups rebuilt in {rebuilds[-1][2]:.1f} s", flush=True)
            rows += bench_leaderboard(runtime, backend, size, today, args.runs)
            rows += bench_funnel(runtime, backend, size, today, args.runs)
            rows.append(bench_write(runtime, backend, size, reps, max(20, args.runs // 4)))
            runtime.engine.dispose()
            # Print as each backend finishes: a long run keeps what it measured.
            print(report([r for r in rows if r.backend == backend],
                         [b for b in rebuilds if b[0] == backend], backend, pg), flush=True)
    command = "python -m bench.bench_reports" + (f" {' '.join(argv)}" if argv else "")
    body = report(rows, rebuilds, command, pg)
    print(body)
    if not args.no_write:
        backends = args.backends.split(",")
        heading = HEADING if len(backends) > 1 else f"{HEADING}, {backends[0]}"
        write_section(heading, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
