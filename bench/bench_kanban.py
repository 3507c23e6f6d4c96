"""Kanban benchmark: the board (capped column heads + first cards) and the list count at
1M opportunities, next to the bare GROUP BY / COUNT SQL a full total needs, in one run.

Rows are loaded with plain executemany (loading is not what is measured) into the
permissions benchmark's org (bench/_perm_org.py: managers over subtrees, supervisors
over a team, reps over their own rows, an administrator over all). Timings are medians
over many calls of one process on a shared machine; read the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from bench._perm_org import EPOCH, Org, build_org
from bench.databases import database
from bench.results import write_section
from bench.timing import Timing, ratio, time_calls
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.permissions import _tables as t
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import Runtime, open_runtime
from engine.storage.database import make_engine
from engine.storage.migrate import init_database
from tests.conftest import REPO_ROOT
from ui.kanban.board import DEFAULT_COUNT_CAP, Board
from ui.screens.records.lists import COUNT_CAP

CRM = REPO_ROOT / "apps" / "crm"
HEADING = "Kanban at scale (issue 13)"
ENTITY = "opportunity"
BATCH = 20_000
#: A pipeline's usual shape: most deals early, few closing.
STAGES = (("research", 30), ("offer", 20), ("quote", 15), ("closing", 10), ("signed", 5),
          ("won", 12), ("lost", 8))
_COLUMNS = ("created_at", "updated_at", "version", "owner_id", "name", "customer", "stage",
            "amount", "amount_currency")


@dataclass(frozen=True)
class Row:
    backend: str
    who: str
    case: str
    engine: Timing
    baseline: Timing

    @property
    def ratio(self) -> float:
        return ratio(self.engine, self.baseline)


def load(engine: Engine, org: Org, *, rows: int) -> float:
    """One customer and ``rows`` opportunities owned by random reps; seconds taken."""
    started = time.perf_counter()
    rng = random.Random(11)
    keys = [k for k, weight in STAGES for _ in range(weight)]
    year = 365 * 24 * 3600
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn, conn.begin():
        conn.execute(text("INSERT INTO customer (created_at, updated_at, version, name) "
                          "VALUES (:at, :at, 1, 'Bench customer')"), {"at": EPOCH})
        customer = int(conn.execute(text("SELECT max(id) FROM customer")).scalar_one())
        sql = (f"INSERT INTO {ENTITY} ({', '.join(_COLUMNS)}) VALUES "
               f"({', '.join(['%s' if pg else '?'] * len(_COLUMNS))})")
        batch: list[tuple[object, ...]] = []
        for n in range(rows):
            at = EPOCH + dt.timedelta(seconds=rng.randrange(year))
            stamp = at if pg else at.strftime("%Y-%m-%d %H:%M:%S.%f")
            batch.append((stamp, stamp, 1, rng.choice(org.reps), f"Deal {n}", customer,
                          rng.choice(keys), rng.randrange(100, 1_000_000), "CNY"))
            if len(batch) == BATCH:
                conn.exec_driver_sql(sql, batch)
                batch = []
        if batch:
            conn.exec_driver_sql(sql, batch)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if pg else "ANALYZE"))
    return time.perf_counter() - started


def viewers(runtime: Runtime, org: Org) -> list[tuple[str, Actor]]:
    """The administrator, a region manager, the busiest team's supervisor, a rep."""
    with runtime.engine.connect() as conn:
        teams = conn.execute(select(t.user.c.department_id, func.count())
                             .where(t.user.c.id.in_(org.reps))
                             .group_by(t.user.c.department_id)
                             .order_by(func.count().desc())).first()
    assert teams is not None
    policy = runtime.policy
    assert isinstance(policy, CasbinAccessPolicy)

    def actor(uid: int, login: str) -> Actor:
        return policy.actor_for(uid, login=login)

    return [("admin (all)", actor(org.admin, "admin")),
            ("manager (subtree)", actor(org.leader_at(2), "manager")),
            ("supervisor (team)", actor(org.leaders[int(teams[0])], "supervisor")),
            ("rep (own)", actor(org.reps[0], "rep"))]


def bench_viewer(runtime: Runtime, backend: str, who: str, actor: Actor, *, runs: int,
                 slow_runs: int) -> list[Row]:
    records = runtime.records
    entity = runtime.registry.entity(ENTITY)
    rules = records.stage_rules(ENTITY)
    assert rules is not None
    board = Board(records, actor, entity, rules, locale="en", cap=DEFAULT_COUNT_CAP)
    plan = records.plan(ENTITY)
    where = records.scoped_where(actor, ENTITY) or []
    c = plan.table.c
    group_sql = select(c.stage, c.amount_currency, func.count(), func.sum(c.amount)) \
        .where(*where).group_by(c.stage, c.amount_currency)
    count_sql = select(func.count()).select_from(plan.table).where(*where)

    def run(stmt: object) -> Callable[[], object]:
        def call() -> object:
            with runtime.engine.connect() as conn:
                return conn.execute(stmt).all()  # type: ignore[call-overload]
        return call

    bare_group = time_calls("group by", run(group_sql), runs=slow_runs, warmup=1,
                            budget_s=60)
    bare_count = time_calls("count", run(count_sql), runs=slow_runs, warmup=1, budget_s=60)
    exact = time_calls("exact", lambda: board.heads(exact=True), runs=slow_runs, warmup=1,
                       budget_s=60)
    heads = time_calls("heads", board.heads, runs=runs)
    whole = time_calls("board", board.board, runs=runs)
    listed = time_calls("list count", lambda: records.count(actor, ENTITY, cap=COUNT_CAP),
                        runs=runs)
    shown = {h.stage: h.shown for h in board.heads().values()}
    print(f"  {who}: {shown}", flush=True)
    return [Row(backend, who, "board: capped heads + first cards of 7 columns", whole,
                bare_group),
            Row(backend, who, f"capped heads alone (cap {DEFAULT_COUNT_CAP:,})", heads,
                bare_group),
            Row(backend, who, "exact heads (?exact=1)", exact, bare_group),
            Row(backend, who, f"list count (cap {COUNT_CAP:,})", listed, bare_count)]


def report(rows: Sequence[Row], command: str, note: str) -> str:
    lines = [f"`{command}`; {note}.", "",
             "| backend | viewer | case | engine ms (p95) | baseline ms (p95) | ratio |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.backend} | {r.who} | {r.case} | {r.engine.median_ms:.1f} "
                     f"({r.engine.p95_ms:.1f}) | {r.baseline.median_ms:.1f} "
                     f"({r.baseline.p95_ms:.1f}) | {r.ratio:.3f} |")
    return "\n".join(lines) + READING


READING = """

Baselines, in the same run with the viewer's row scope: for the board rows, the bare
`SELECT stage, currency, count(*), sum(amount) ... GROUP BY` that exact column totals
need (what the board ran before: it reads every visible row); for the list count, the
bare uncapped `count(*)`. The board now counts each stage through a
`LIMIT cap+1` subquery, so its cost is bounded by the cap (1,000 per column: "1,000+",
no total) and not by the table; `?exact=1` still runs the full GROUP BY on request.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_kanban",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=222)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--slow-runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    notes = [f"{args.rows:,} opportunities"]
    registry = load_packages([CRM])
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tidepool-bench-") as tmp, \
                database(backend, Path(tmp)) as url:
            engine = make_engine(url)
            init_database(engine, target=registry, actor="bench")
            org = build_org(engine, registry, users=args.users)
            print(f"{backend}: loading {args.rows:,} opportunities", flush=True)
            seconds = load(engine, org, rows=args.rows)
            notes.append(f"{backend} load {seconds:.0f} s")
            print(f"  loaded in {seconds:.0f} s", flush=True)
            runtime = open_runtime(url, engine=engine,
                                   policy=CasbinAccessPolicy(engine, registry))
            for who, actor in viewers(runtime, org):
                rows += bench_viewer(runtime, backend, who, actor, runs=args.runs,
                                     slow_runs=args.slow_runs)
                print(report([r for r in rows if r.who == who and r.backend == backend],
                             backend, ""), flush=True)
            engine.dispose()
    with open("/proc/loadavg", encoding="ascii") as f:
        notes.append(f"load average {f.read().split()[0]} at the end")
    command = "python -m bench.bench_kanban" + (f" {' '.join(argv)}" if argv else "")
    body = report(rows, command, ", ".join(notes))
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
