"""Reports benchmark: the leaderboard from the daily rollups and the funnel from the report
compiler, each against the raw aggregate SQL over the base tables in the same run, on
SQLite and PostgreSQL; and what keeping the rollups adds to a write.

Rows are made by the database itself (``INSERT ... SELECT`` from a number series,
secondary indexes built after; loading is not what is measured), then the rollups are
rebuilt (``tidepool reports rebuild``; its time is reported). Timings are medians
over many calls of one process on a shared machine; read the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
)

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
from engine.reports.freshness import rebuild_on
from engine.reports.install import install as install_reports
from engine.reports.leaderboard import board
from engine.reports.periods import window
from engine.reports.rollups import RollupKeeper
from engine.reports.zone import day_start, local_day, sync_company_zone
from engine.runtime import HOOK_PROVIDERS, Runtime, install_hooks, open_runtime
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import init_database
from engine.storage.settings import set_company_time_zone
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


def _numbers(dialect: str, first: int, last: int) -> Any:
    """A one-column selectable ``i`` of the integers first..last, made by the database."""
    if dialect == "postgresql":
        series = func.generate_series(first, last).table_valued("i").render_derived()
        return select(series.c.i).subquery()
    seed = select(literal(first, BigInteger).label("i")).cte("n", recursive=True)
    return seed.union_all(select(seed.c.i + 1).where(seed.c.i < last))


def _pick(i: Any, salt: int, size: int) -> Any:
    """A deterministic, well-spread number in [0, size) from row number ``i``."""
    return ((i * 2654435761 + salt * 40503) % 2147483647) % size


class _Sql:
    """The few dialect-specific expressions the set-based loader needs."""

    def __init__(self, dialect: str, start: dt.datetime) -> None:
        self.dialect = dialect
        self.start = start

    def at(self, seconds: Any) -> Any:
        """``start`` plus ``seconds``, as the DateTime column stores it."""
        if self.dialect == "postgresql":
            return literal(self.start, DateTime(timezone=True)) + \
                func.make_interval(0, 0, 0, 0, 0, 0, seconds)
        naive = self.start.astimezone(dt.UTC).replace(tzinfo=None)
        # SQLAlchemy's SQLite format (microseconds included) keeps string comparisons right
        return func.datetime(naive.isoformat(sep=" "),
                             literal("+").concat(cast(seconds, String)).concat(" seconds")) \
            .concat(".000000")

    def day(self, days: Any) -> Any:
        first = self.start.astimezone(dt.UTC).date()
        if self.dialect == "postgresql":
            return literal(first, Date) + cast(days, Integer)
        return func.date(first.isoformat(), literal("+").concat(cast(days, String)).concat(" days"))

    def text(self, prefix: str, i: Any) -> Any:
        return literal(prefix).concat(cast(i, String))


def _load(runtime: Runtime, entity: str, count: int, columns: Any) -> None:
    """INSERT ... SELECT ``count`` rows made by ``columns(i)`` from a number series, in
    chunks, with the table's secondary indexes dropped during the load and built after."""
    table = runtime.schema.table(entity)
    dialect = runtime.engine.dialect.name
    indexes = list(table.indexes)
    with runtime.engine.begin() as conn:
        for ix in indexes:
            ix.drop(conn)
    chunk = 1_000_000
    for first in range(1, count + 1, chunk):
        last = min(count, first + chunk - 1)
        n = _numbers(dialect, first, last)
        made = columns(n.c.i)
        with runtime.engine.begin() as conn:
            conn.execute(insert(table).from_select(list(made), select(*made.values())))
        print(f"  {entity}: {last:,} rows", flush=True)
    with runtime.engine.begin() as conn:
        for ix in indexes:
            ix.create(conn)


def load(runtime: Runtime, reps: list[int], *, customers: int, follow_ups: int) -> dt.date:
    """Customers, leads (a fifth), opportunities (a fifth) and follow-ups over a year.

    Set-based (the database makes the rows from a number series): 6M rows load in
    minutes rather than the hour executemany took. Owners are the reps in id order.
    """
    today = local_day(dt.datetime.now(dt.UTC))
    start = day_start(today - dt.timedelta(days=DAYS - 1))
    sql = _Sql(runtime.engine.dialect.name, start)
    first_rep, rep_count = min(reps), len(reps)
    assert reps == list(range(first_rep, first_rep + rep_count)), "reps have consecutive ids"

    def base(i: Any, salt: int) -> dict[str, Any]:
        at = sql.at(_pick(i, salt, DAYS * 86400))
        return {"created_at": at, "updated_at": at, "version": literal(1),
                "owner_id": first_rep + _pick(i, salt + 1, rep_count)}

    _load(runtime, "customer", customers,
          lambda i: {**base(i, 1), "name": sql.text("c", i)})
    _load(runtime, "lead", customers // 5, lambda i: {
        **base(i, 3), "company_name": sql.text("l", i),
        "phone": cast(10_000_000_000 + i, String), "channel": literal("sem"),
        "status": literal("new")})
    stages = ["research", "offer", "quote", "won", "lost"]

    def opportunity(i: Any) -> dict[str, Any]:
        offset = _pick(i, 5, DAYS * 86400)
        at = sql.at(offset)
        return {"created_at": at, "updated_at": at, "version": literal(1),
                "owner_id": first_rep + _pick(i, 6, rep_count), "name": sql.text("o", i),
                "customer": 1 + _pick(i, 7, customers),
                "stage": case(*[(_pick(i, 8, len(stages)) == k, literal(v))
                                for k, v in enumerate(stages)]),
                "amount": 100 + _pick(i, 9, 99_900), "amount_currency": literal("CNY"),
                "expected_close": sql.day(offset // 86400 + 30)}

    _load(runtime, "opportunity", customers // 5, opportunity)
    kinds = ["call", "visit", "message", "meeting"]
    _load(runtime, "follow_up", follow_ups, lambda i: {
        **base(i, 11), "code": sql.text("F", i),
        "kind": case(*[(_pick(i, 13, len(kinds)) == k, literal(v))
                       for k, v in enumerate(kinds)]),
        "content": literal("x"), "customer": 1 + _pick(i, 14, customers),
        "happened_at": sql.at(_pick(i, 15, DAYS * 86400))})
    with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if runtime.engine.dialect.name == "postgresql"
                          else "ANALYZE"))
    return today


def bench_leaderboard(runtime: Runtime, backend: str, size: str, today: dt.date,
                      runs: int, reps: list[int]) -> list[Row]:
    """Each period and both scopes: ``all`` ranks every rep, ``team`` is a rep's own team
    (the rep's department; the raw baseline groups the same owners)."""
    registry = runtime.registry
    keeper = RollupKeeper(runtime.schema, registry)
    rep = Actor(user_id=reps[0], login="rep0_0")
    team = reps[:REPS_PER_TEAM]
    cases = [("follow_ups", p, "all") for p in ("today", "this_week", "this_month",
                                                 "this_quarter", "this_year")]
    cases += [("follow_ups", "this_month", "team"), ("new_customers", "this_month", "all"),
              ("won_amount", "this_quarter", "all"), ("won_amount", "this_quarter", "team")]
    out = []
    for name, period, scope in cases:
        w = window(period, today=today)
        m = catalog_of(registry).board_measure(name)
        assert m is not None and w.first and w.end
        owners = team if scope == "team" else None
        reader = rep if scope == "team" else ROOT

        def engine_call(m: Any = m, w: Any = w, scope: Any = scope,
                        reader: Actor = reader) -> object:
            return board(runtime.records, registry, reader, measure=m.name, window=w,
                         scope=scope)

        def raw_call(m: Any = m, w: Any = w, owners: Any = owners) -> object:
            with runtime.engine.connect() as conn:
                return keeper.raw_totals(conn, runtime.records, m, first=w.first, end=w.end,
                                         owners=owners)

        with runtime.engine.connect() as conn:
            assert keeper.rollup_totals(conn, m, first=w.first, end=w.end, owners=owners) \
                == keeper.raw_totals(conn, runtime.records, m, first=w.first, end=w.end,
                                     owners=owners)
        who = f"team of {REPS_PER_TEAM}" if scope == "team" else \
            f"all {TEAMS * REPS_PER_TEAM} reps"
        case = f"leaderboard {name}, {w.name} ({who})"
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
    # Both with every other hook (pool clocks, automation): the difference is the rollups'.
    plain = install_hooks(RecordService(engine=runtime.engine, schema=runtime.schema),
                          [p for p in HOOK_PROVIDERS if p is not install_reports])
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
create with every other write hook but the rollups'. A leaderboard ratio far below 1 is
the rollups' point: the ranking reads (reps x days) owner-day rows however many records
there are. The funnel reads the base tables and costs about what the raw counts cost; the
write row shows the rollup hook's price.
"""


def report(rows: Sequence[Row], rebuilds: Sequence[tuple[str, str, float]], command: str,
           note: str) -> str:
    lines = [f"`{command}` on {machine()}; {note}.", "",
             ("| backend | rows | case | engine ms median (p95; best) | "
              "baseline ms median (p95; best) | ratio |"),
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.backend} | {r.size} | {r.case} | {r.engine.median_ms:.2f} "
                     f"({r.engine.p95_ms:.2f}; {r.engine.best_ms:.2f}) | "
                     f"{r.baseline.median_ms:.2f} ({r.baseline.p95_ms:.2f}; "
                     f"{r.baseline.best_ms:.2f}) | {r.ratio:.3f} |")
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
    parser.add_argument("--zone", default="Asia/Shanghai", help="the company time zone")
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
            with write_transaction(runtime.engine) as conn:
                set_company_time_zone(conn, args.zone)   # days in a zone with an offset
                sync_company_zone(conn)
            print(f"{backend}: loading {size}", flush=True)
            today = load(runtime, reps, customers=args.customers, follow_ups=args.follow_ups)
            started = time.perf_counter()
            rebuild_on(runtime.engine, runtime.records, runtime.registry)
            rebuilds.append((backend, size, time.perf_counter() - started))
            print(f"  rollups rebuilt in {rebuilds[-1][2]:.1f} s", flush=True)
            rows += bench_leaderboard(runtime, backend, size, today, args.runs, reps)
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
