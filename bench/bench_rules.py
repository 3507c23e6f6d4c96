"""Pool rules and distribution vs the hand-written SQL they amount to, in the same run.

Run ``python -m bench.bench_rules`` (``--help`` for sizes and backends). For each
backend it initialises the CRM package, creates an org (two teams of reps), and:

* rule run: loads ``--rows`` customers held by reps, 10% of them untouched for 30
  days, and times ``run_rules`` of the ``customer_pool.untouched_7d`` rule (set-based
  candidates, batches of ``--batch`` (default: the runner's for the database) moved by the
  records service's guarded UPDATE
  with feed, ledger and clock rows) against, on the same rows reset to the same
  state: (a) the single hand-written UPDATE that makes the same change of owner and
  pool, and (b) that UPDATE plus the feed and ledger rows written with
  ``INSERT ... SELECT`` (what hand-written SQL needs to leave the same trace);
* distribution: bulk-creates ``--new`` leads without an owner (the lead pool
  distributes by channel to the two teams, round robin, skipping reps at
  capacity) against bulk-creating the same rows with an owner given (no placement).

Results go to the ``Pool rules and distribution (issue 9)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    update,
)

from bench.databases import copy_rows_until, database
from bench.results import write_section
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.permissions.identity import create_user
from engine.permissions.org import create_department
from engine.runtime import Runtime, open_runtime
from engine.seeding import generate_rows
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import init_database
from engine.workflow.rule_runner import default_batch, run_rules

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "Pool rules and distribution (issue 9)"
POOL, RULE = "customer_pool", "untouched_7d"
NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
REPS_PER_TEAM = 20
BATCH = 5000

#: What the numbers say, written with them (kept in RESULTS.md on every run).
READING = """

Reading:

- Rule run vs the hand-written UPDATE plus the feed and ledger rows: a batch writes its feed, ledger and notification rows with one `INSERT ... SELECT` per group of rows equal but for the record (engine/storage/fanout.py) and binds its ids as one parameter (a PostgreSQL array, a SQLite JSON array); the hooks take it as one batch event per previous owner (docs/hooks.md), each owner is told once per batch (a digest), warnings are found in the same read as the moves, and on PostgreSQL each batch plans its statements for its own ids (no generic plan). What the run does beyond the hand version: a row-locked read per batch, the rule re-checked in the UPDATE (PostgreSQL), a notification per owner and batch, one commit per batch. See "Rule run with batch write events and custom plans" below for a same-moment before/after.
- A moved record is counted once even with two runners (leased job rows; each batch is read row-locked in its unit and, on PostgreSQL, re-checked by the rule in the UPDATE), and the counts equal the hand UPDATE's row count (the benchmark refuses to report otherwise).
- Distribution: 100,000 leads created without an owner, placed by channel to two teams of 20 reps round robin with max_held 200 (8,000 placed, the rest unplaced with the reason, once everybody is full), cost 1.5-1.8x creating the same rows with their owners given: targets, capacities and cursors are read once per batch and each user's records move in one UPDATE.
- These runs shared the 2-core machine with other test and benchmark processes; ratios compare phases of the same run but the load was not constant."""


@dataclass(frozen=True)
class RuleResult:
    backend: str
    rows: int
    moved: int
    rule_s: float
    update_s: float
    traced_s: float


@dataclass(frozen=True)
class DistributionResult:
    backend: str
    rows: int
    placed: int
    distributed_s: float
    owned_s: float


def _runtime(url: str) -> tuple[Runtime, list[int]]:
    engine = make_engine(url)
    init_database(engine, target=load_packages([CRM]), actor="bench")
    reps: list[int] = []
    with write_transaction(engine) as conn:
        top = create_department(conn, code="company", name="Company")
        for code in ("team_east", "team_west"):
            dept = create_department(conn, code=code, name=code, parent_id=top.id)
            reps += [create_user(conn, login=f"{code}_{i}", display_name=f"{code} {i}",
                                 department_id=dept.id).id for i in range(REPS_PER_TEAM)]
    return open_runtime(url, engine=engine), reps


def _load_held(runtime: Runtime, reps: list[int], rows: int) -> int:
    """``rows`` customers held by the reps, 10% created 30 days ago (due), none exempt."""
    entity = runtime.registry.entity("customer")
    seed = [{**row, "owner_id": reps[i % len(reps)], "grade": "C", "tags": []}
            for i, row in enumerate(generate_rows(entity, count=min(rows, 5000), seed=3))]
    actor = Actor.system("bench")
    for offset in range(0, len(seed), BATCH):
        runtime.records.bulk_create(actor, "customer", seed[offset:offset + BATCH])
    copy_rows_until(runtime, "customer", rows)
    table = runtime.schema.table("customer")
    with runtime.engine.begin() as conn:
        conn.execute(update(table).values(created_at=NOW - dt.timedelta(days=1)))
        conn.execute(update(table).where(table.c.id % 10 == 0)
                     .values(created_at=NOW - dt.timedelta(days=30)))
    return rows // 10


def _reset(runtime: Runtime, reps: list[int]) -> None:
    """Give the due records back to their reps (the state before a run)."""
    table = runtime.schema.table("customer")
    clocks = runtime.schema.system["tp_record_clock"]
    with runtime.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id % 10 == 0)
                     .values(owner_id=reps[0], pool_id=None))
        conn.execute(clocks.delete())
    _analyze(runtime)


def _analyze(runtime: Runtime) -> None:
    """PostgreSQL: statistics for the freshly loaded rows, before every timed phase."""
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def _hand_written(runtime: Runtime, *, traced: bool) -> int:
    """The rule as SQL a developer would write: same WHERE, one UPDATE (plus the trace)."""
    table = runtime.schema.table("customer")
    system = runtime.schema.system
    lock, clocks = system["tp_pool_lock"], system["tp_record_clock"]
    cutoff = NOW - dt.timedelta(days=7)
    b_cutoff = NOW - dt.timedelta(days=14)
    fresh = exists().where(clocks.c.entity == "customer", clocks.c.record_id == table.c.id,
                           or_(clocks.c.touched_at > cutoff, clocks.c.owned_at > cutoff))
    where = and_(
        table.c.owner_id.is_not(None), table.c.deleted_at.is_(None),
        ~exists().where(lock.c.entity == "customer", lock.c.record_id == table.c.id),
        not_(fresh),
        case((or_(table.c.grade == "A", cast(table.c.tags, String).like(
            '%"key_account"%')), 1), else_=0) == 0,
        or_(and_(table.c.grade == "B", table.c.created_at <= b_cutoff),
            and_(or_(table.c.grade.is_(None), table.c.grade != "B"),
                 table.c.created_at <= cutoff)))
    with runtime.engine.begin() as conn:
        if traced:
            activity, ledger = system["tp_activity"], system["tp_pool_event"]
            conn.execute(insert(activity).from_select(
                ["entity", "record_id", "kind", "at", "body", "via"],
                select(literal("customer"), table.c.id, literal("drop"), literal(NOW),
                       literal(RULE), literal(f"rule:{POOL}.{RULE}")).where(where)))
            conn.execute(insert(ledger).from_select(
                ["entity", "record_id", "pool", "kind", "from_owner", "at", "rule"],
                select(literal("customer"), table.c.id, literal(POOL), literal("drop"),
                       table.c.owner_id, literal(NOW), literal(f"{POOL}.{RULE}"))
                .where(where)))
        moved = conn.execute(update(table).where(where).values(
            owner_id=None, pool_id=POOL, updated_at=NOW, version=table.c.version + 1)).rowcount
    return int(moved)


def _timed(call: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def bench_rule(runtime: Runtime, reps: list[int], backend: str, rows: int,
               batch: int | None) -> RuleResult:
    due = _load_held(runtime, reps, rows)
    print(f"{backend}: {rows:,} held, {due:,} due", flush=True)
    _analyze(runtime)  # the hand-written phases run after _reset's ANALYZE too
    rule_s, moved = _timed(lambda: run_rules(runtime.records, now=NOW, pool=POOL, rule=RULE,
                                             batch=batch).moved)
    _reset(runtime, reps)
    update_s, plain = _timed(lambda: _hand_written(runtime, traced=False))
    _reset(runtime, reps)
    traced_s, traced = _timed(lambda: _hand_written(runtime, traced=True))
    if not moved == plain == traced == due:
        raise SystemExit(f"counts differ: rule {moved}, update {plain}, traced {traced}, "
                         f"due {due}")
    print(f"  rule {rule_s:.2f}s, update {update_s:.2f}s, update+trace {traced_s:.2f}s",
          flush=True)
    return RuleResult(backend, rows, moved, rule_s, update_s, traced_s)


def bench_distribution(runtime: Runtime, reps: list[int], backend: str,
                       rows: int) -> DistributionResult:
    entity = runtime.registry.entity("lead")
    payloads = [{**row, "owner_id": None}
                for row in generate_rows(entity, count=rows, seed=11)]
    actor = Actor.system("bench")
    started = time.perf_counter()
    for offset in range(0, rows, BATCH):
        runtime.records.bulk_create(actor, "lead", payloads[offset:offset + BATCH])
    distributed_s = time.perf_counter() - started
    table = runtime.schema.table("lead")
    with runtime.engine.connect() as conn:
        placed = int(conn.execute(select(func.count()).select_from(table)
                                  .where(table.c.owner_id.is_not(None))).scalar_one())
    owned = [{**row, "owner_id": reps[i % len(reps)]} for i, row in enumerate(payloads)]
    with runtime.engine.begin() as conn:
        conn.execute(table.delete())
    started = time.perf_counter()
    for offset in range(0, rows, BATCH):
        runtime.records.bulk_create(actor, "lead", owned[offset:offset + BATCH])
    owned_s = time.perf_counter() - started
    print(f"  distribution of {rows:,}: {distributed_s:.2f}s ({placed:,} placed), "
          f"with owners given {owned_s:.2f}s", flush=True)
    return DistributionResult(backend, rows, placed, distributed_s, owned_s)


def _batches(batch: int | None) -> str:
    if batch is not None:
        return f"{batch:,}"
    return (f"the runner's default ({default_batch('sqlite'):,} on SQLite, "
            f"{default_batch('postgresql'):,} on PostgreSQL)")


def report(rules: list[RuleResult], dists: list[DistributionResult], command: str,
           pg_version: str, batch: int | None) -> str:
    lines = [(f"Command: `{command}` — {dt.date.today().isoformat()}; {platform.machine()}, "
             f"Python {platform.python_version()}, SQLite {_sqlite_version()}, {pg_version}. "
             f"Rule `{POOL}.{RULE}` (touched clock, 7 days, B 14 days, grade A and "
             f"key_account exempt), batches of {_batches(batch)}."), "",
             ("| backend | rows | moved | rule run s | hand UPDATE s | ratio | UPDATE + feed "
             "and ledger s | ratio |"), "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rules:
        lines.append(f"| {r.backend} | {r.rows:,} | {r.moved:,} | {r.rule_s:.2f} | "
                     f"{r.update_s:.2f} | {r.rule_s / r.update_s:.2f} | {r.traced_s:.2f} | "
                     f"{r.rule_s / r.traced_s:.2f} |")
    lines += ["", ("| backend | new leads | placed | distributed s | rows/s | owners given s "
              "| ratio |"), "|---|---:|---:|---:|---:|---:|---:|"]
    for d in dists:
        lines.append(f"| {d.backend} | {d.rows:,} | {d.placed:,} | {d.distributed_s:.2f} | "
                     f"{d.rows / d.distributed_s:,.0f} | {d.owned_s:.2f} | "
                     f"{d.distributed_s / d.owned_s:.2f} |")
    return "\n".join(lines) + READING


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_rules",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="held customers")
    parser.add_argument("--new", type=int, default=100_000, help="leads to distribute")
    parser.add_argument("--batch", type=int, default=None,
                        help="records moved per unit (default: the rule runner's for the "
                             "database, engine.workflow.rule_runner.default_batch)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    rules: list[RuleResult] = []
    dists: list[DistributionResult] = []
    pg_version = "PostgreSQL not run"
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-bench-") as tmp, \
                database(backend, Path(tmp)) as url:
            runtime, reps = _runtime(url)
            if backend == "postgresql":
                with runtime.engine.connect() as conn:
                    pg_version = "PostgreSQL " + conn.execute(
                        text("SHOW server_version")).scalar_one()
            rules.append(bench_rule(runtime, reps, backend, args.rows, args.batch))
            dists.append(bench_distribution(runtime, reps, backend, args.new))
            runtime.engine.dispose()
    command = "python -m bench.bench_rules" + (f" {' '.join(argv)}" if argv else "")
    body = report(rules, dists, command, pg_version, args.batch)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
