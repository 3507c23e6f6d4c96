"""Row permissions at scale: the list query with its permission clause vs without it.

Run ``python -m bench.bench_permissions`` (``--rows``, default 1,000,000; ``--help``).
For each backend (a SQLite file; a throwaway PostgreSQL cluster from
tests/support/pgcluster) it loads the CRM package, a 5-level org of ``--users``
users (bench/_perm_org.py), the customer rows and read shares, then measures in
the same run, calls of each pair interleaved so machine noise hits both alike:

* per scope shape (admin, rep, team supervisor, managers of ever larger
  subtrees), one keyset page of 50 newest first, four ways:
  ``RecordService.list`` with ``CasbinAccessPolicy``; the same with no policy
  (``Unrestricted``); the Core statement the policy-bound service executed
  (captured, run with ``conn.execute(stmt).all()``); the Core statement of the
  unrestricted service (the same query without the clause). The ratios:
  *clause* = scoped statement / unscoped statement (issue 13's 1.5x target at 1M
  rows; issue 3 had asked 1.3x),
  *end to end* = service with policy / service without, and *vs raw* = service
  with policy / unscoped statement (includes the records service's own
  overhead, measured in the Records section);
* per request: Casbin ``enforce``, ``check_action``, ``row_scope`` (memoised
  and compiled), and the index build (once per policy version).

Results go to the ``Permissions (issue 3)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from bench._perm_org import ENTITY, Org, existing, prepare
from bench.databases import database
from bench.results import write_section
from bench.timing import Timing, ratio, time_calls
from engine.access import Unrestricted
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.permissions.index import build_index, load_state
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records import ListQuery, RecordService
from engine.storage.database import make_engine
from engine.storage.direct import through_connection
from engine.storage.tables import build_schema

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "Permissions (issue 3)"
#: Issue 13: every scope shape within 1.5x of its unscoped statement (issue 3 asked 1.3x).
TARGET = 1.5
LIMIT = 50


@dataclass(frozen=True)
class ListResult:
    backend: str
    shape: str
    branches: int
    service: Timing        # RecordService.list with CasbinAccessPolicy
    open_service: Timing   # RecordService.list unrestricted
    scoped: Timing         # the Core statement the scoped service ran
    unscoped: Timing       # the Core statement the unrestricted service ran

    @property
    def clause(self) -> float:
        return ratio(self.scoped, self.unscoped)

    @property
    def end_to_end(self) -> float:
        return ratio(self.service, self.open_service)

    @property
    def vs_raw(self) -> float:
        return ratio(self.service, self.unscoped)


@dataclass(frozen=True)
class CallResult:
    backend: str
    call: Timing
    note: str = ""


def time_interleaved(calls: dict[str, Callable[[], object]], *, runs: int,
                     warmup: int = 10, budget_s: float = 20.0) -> dict[str, Timing]:
    """Time several calls in rotation, so drifting load on the machine hits all of them."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + budget_s
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1000)
        if time.perf_counter() > deadline and len(samples[next(iter(calls))]) >= 10:
            break
    out = {}
    for name, values in samples.items():
        values.sort()
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        out[name] = Timing(name=name, runs=len(values), median_ms=statistics.median(values),
                           p95_ms=p95)
    return out


def captured(engine: Engine, call: Callable[[], object]) -> tuple[Any, dict[str, Any]]:
    """The last Core statement (and its parameters) that ``call`` executed."""
    seen: list[tuple[Any, Any]] = []

    def grab(conn: Any, clause: Any, multiparams: Any, params: Any, options: Any) -> None:
        seen.append((clause, params))

    event.listen(engine, "before_execute", grab)
    try:
        with through_connection():  # the hot reads skip Core's listeners otherwise
            call()
    finally:
        event.remove(engine, "before_execute", grab)
    return seen[-1]


def explain(engine: Engine, statement: Any, params: Any = None) -> str:
    """The plan of ``statement``: the real SQL and parameters, prefixed with EXPLAIN."""
    with engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "

        def add(conn_: Any, cursor: Any, sql: str, parameters: Any, context: Any,
                executemany: bool) -> tuple[str, Any]:
            return prefix + sql, parameters

        event.listen(conn, "before_cursor_execute", add, retval=True)
        try:
            # Straight from the DB-API cursor: the plan's columns are not the SELECT's.
            rows = conn.execute(statement, params or {}).cursor.fetchall()
        finally:
            event.remove(conn, "before_cursor_execute", add)
    return "\n".join(" | ".join(str(c) for c in row) for row in rows)


def shapes(org: Org) -> list[tuple[str, int]]:
    teams = {5: 1, 4: 3, 3: 9, 2: 27, 1: 81}
    found = [("admin: every row", org.admin), ("rep: own + pool + shared", org.reps[0]),
             ("team supervisor: department + pool + shared", org.leader_at(5))]
    for depth, name in ((4, "branch"), (3, "area"), (2, "region"), (1, "company")):
        shape = (f"{name} manager: subtree of {teams[depth]} teams + pool + shared "
                 "+ A-grade rule")
        found.append((shape, org.leader_at(depth)))
    return found


def bench_lists(engine: Engine, backend: str, org: Org, *, runs: int,
                show_plans: bool) -> list[ListResult]:
    registry = load_packages([CRM])
    schema = build_schema(registry)
    policy = CasbinAccessPolicy(engine, registry)
    scoped_service = RecordService(engine=engine, schema=schema, policy=policy)
    open_service = RecordService(engine=engine, schema=schema, policy=Unrestricted())
    system = Actor.system("bench")
    first = ListQuery(limit=LIMIT)
    results = []
    for name, user_id in shapes(org):
        actor = policy.actor_for(user_id)
        for page_name, pages in (("", 0), (", 3rd page (keyset)", 2)):
            if pages and not name.startswith(("rep", "region")):
                continue
            query, open_query = first, first
            for _ in range(pages):
                query = ListQuery(limit=LIMIT, after=scoped_service.list(
                    actor, ENTITY, query).next_token)
                open_query = ListQuery(limit=LIMIT, after=open_service.list(
                    system, ENTITY, open_query).next_token)

            def service(q: ListQuery = query, a: Actor = actor) -> object:
                return scoped_service.list(a, ENTITY, q)

            def unrestricted(q: ListQuery = open_query) -> object:
                return open_service.list(system, ENTITY, q)

            scoped_stmt, scoped_params = captured(engine, service)
            open_stmt, open_params = captured(engine, unrestricted)

            def run_scoped(stmt: Any = scoped_stmt, params: Any = scoped_params) -> object:
                with engine.connect() as conn:
                    return conn.execute(stmt, params).all()

            def run_open(stmt: Any = open_stmt, params: Any = open_params) -> object:
                with engine.connect() as conn:
                    return conn.execute(stmt, params).all()

            timings = time_interleaved({"service": service, "open": unrestricted,
                                        "scoped": run_scoped, "unscoped": run_open}, runs=runs)
            branches = len(policy.row_scope(actor, registry.entity(ENTITY),
                                            schema.table(ENTITY), "read").branches)
            results.append(ListResult(backend, name + page_name, branches, timings["service"],
                                      timings["open"], timings["scoped"], timings["unscoped"]))
            if show_plans:
                print(f"--- {backend}: {name}{page_name}\n"
                      f"{explain(engine, scoped_stmt, scoped_params)}\n",
                      flush=True)
    return results


def bench_calls(engine: Engine, backend: str, org: Org, *, runs: int) -> list[CallResult]:
    registry = load_packages([CRM])
    schema = build_schema(registry)
    entity, table = registry.entity(ENTITY), schema.table(ENTITY)
    policy = CasbinAccessPolicy(engine, registry)
    state = policy.state()
    rep = org.reps[0]
    actor = policy.actor_for(rep)
    p_rules, g_rules = state.enforcer.get_policy(), state.enforcer.get_grouping_policy()

    def per_request() -> object:   # what one list() asks the policy
        policy.check_action(actor, entity, "read")
        policy.hidden_fields(actor, entity)
        return policy.row_scope(actor, entity, table, "read")

    def reload() -> object:
        with engine.connect() as conn:
            return load_state(conn)

    calls: list[tuple[str, Callable[[], object], str]] = [
        ("Casbin enforce, allowed (rep, org, customer, read)",
         lambda: state.enforce(rep, "org", ENTITY, "read"), ""),
        ("Casbin enforce, denied (rep, org, customer, delete)",
         lambda: state.enforce(rep, "org", ENTITY, "delete"), ""),
        ("check_action (index lookup)", lambda: policy.check_action(actor, entity, "read"), ""),
        ("row_scope, memoised", lambda: policy.row_scope(actor, entity, table, "read"), ""),
        ("row_scope, compiled (memo miss)",
         lambda: policy._branches(state, policy.registry, rep, entity, table, "read"), ""),
        ("policy calls of one list request", per_request, "check_action + hidden + row_scope"),
        ("index build from the rule lists",
         lambda: build_index(p_rules, g_rules),
         f"{len(p_rules)} p rules, {len(g_rules)} g rules"),
        ("policy state reload (rules, enforcer, index, org)", reload, "once per version"),
    ]
    results = []
    for name, call, note in calls:
        slow = name.startswith(("index", "policy state"))
        results.append(CallResult(backend, time_calls(name, call, runs=20 if slow else runs,
                                                      warmup=3 if slow else 50), note))
    return results


def _ms(t: Timing) -> str:
    return f"{t.median_ms:.2f} ({t.p95_ms:.2f})"


def render(lists: Sequence[ListResult], calls: Sequence[CallResult], *, rows: int,
           users: int, shares: int, command: str, versions: str,
           loads: dict[str, float]) -> str:
    header = (f"Command: `{command}` — {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
              f"{os.cpu_count()} cores, {versions}.")
    legend = ("*clause* = the scoped statement / the same statement without the permission "
              f"clause (issue 13 target {TARGET}x); *end to end* = `RecordService.list` with "
              "`CasbinAccessPolicy` / unrestricted; *vs raw* = with policy / the unscoped Core "
              "statement (includes the records service's own overhead).")
    columns = ("| backend | scope shape | arms | service + policy | service, no policy "
               "| scoped statement | unscoped statement | clause | end to end | vs raw |")
    data = (f"{rows:,} customer rows (65 % owned by reps, 35 % in the pool, a third A-grade), "
            f"{users:,} users in a 5-level org of 121 departments, {shares:,} read shares "
            "(2 % to departments). Load (not measured): "
            + ", ".join(f"{b} {s:.0f}s" for b, s in loads.items()) + ".")
    lines = [
        header,
        data,
        "",
        f"### List: one page of {LIMIT}, newest first (median ms, p95 in brackets)",
        "",
        legend,
        "",
        columns,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in lists:
        lines.append(f"| {r.backend} | {r.shape} | {r.branches} | {_ms(r.service)} | "
                     f"{_ms(r.open_service)} | {_ms(r.scoped)} | {_ms(r.unscoped)} | "
                     f"{r.clause:.2f} | {r.end_to_end:.2f} | {r.vs_raw:.2f} |")
    lines += ["", "Reading the list table (plans: `--explain`):", "", *READING]
    lines += ["", "### Policy calls (median µs per call, p95 in brackets)", "",
              "| backend | call | µs | calls/s | note |", "|---|---|---:|---:|---|"]
    for c in calls:
        lines.append(f"| {c.backend} | {c.call.name} | {c.call.median_ms * 1000:,.1f} "
                     f"({c.call.p95_ms * 1000:,.1f}) | {c.call.per_second:,.0f} | {c.note} |")
    return "\n".join(lines) + "\n"


READING = [
    ("- A scope of one arm (`all`; `own` alone) costs what the unscoped page costs: the "
    "same index walk with one more condition."),
    ("- A scope of several branches that shows much of the table (a pool, a big subtree, a "
    "broad sharing rule: every manager and supervisor here, and a rep with the pool) runs "
    "as one walk of the sort index with its branches OR-ed and the owner index hidden "
    "(`owner_id + 0`): the walk reads about page / visible share rows and needs no UNION, "
    "sort or join back (issue 13). The share is measured once per user, entity and policy "
    "state on the newest 256 rows (`scopes.WALK_MIN_SHARE`, 0.2); the *arms* column "
    "then reads 1."),
    ("- A scope that shows little (a rep with shares, a team without the pool) keeps one "
    "keyset query per arm: own rows, pool rows, each sharing rule read up to a page of "
    "keys from their own index, the shares arm fetches every record shared with the user. "
    "The keys are merged (UNION) and only the page's rows are fetched."),
    ("- On PostgreSQL a team (up to 16 owners) runs one arm per owner, because it cannot "
    "merge per-value index scans (an IN list sorted every row of the team); larger "
    "departments walk the recent index and keep their owners' rows "
    "(engine/permissions/_owners.py); their counts seek the owner index "
    "(`RowScope.counting`: `owner_id = ANY`)."),
    ("- Before issue 3 the same shapes cost 10-50x: a team's owners hidden in a subquery "
    "(SQLite walked the whole table), an OR across share grantees (a scan of the shares), "
    "a sharing rule on a rare tag (a scan of the table), and a whole-row UNION rebuilt in "
    "Python on every request."),
]


def _versions(backends: Sequence[str], pg_version: str) -> str:
    parts = [f"Python {platform.python_version()}"]
    if "sqlite" in backends:
        parts.append(f"SQLite {sqlite3.sqlite_version}")
    if pg_version:
        parts.append(pg_version)
    return ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_permissions",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--shares", type=int, default=None,
                        help="read shares (default: rows / 10)")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"),
                        help="repeatable (default: both)")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per measurement")
    parser.add_argument("--explain", action="store_true", help="print each scoped plan")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    parser.add_argument("--sqlite-file", type=Path,
                        help="keep the SQLite database here; reused if it holds --rows rows")
    parser.add_argument("--results", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    backends = args.backend or ["sqlite", "postgresql"]
    shares = args.shares if args.shares is not None else args.rows // 10
    registry = load_packages([CRM])
    lists: list[ListResult] = []
    calls: list[CallResult] = []
    loads: dict[str, float] = {}
    pg_version = ""
    users = 0
    with tempfile.TemporaryDirectory(prefix="tidepool-perm-") as tmp:
        for backend in backends:
            with database(backend, Path(tmp), name="perm", sqlite_file=args.sqlite_file) as url:
                engine = make_engine(url)
                try:
                    found = existing(engine, rows=args.rows) if backend == "sqlite" else None
                    if found is not None:
                        org, loads[backend] = found, 0.0
                    else:
                        print(f"{backend}: loading {args.rows:,} rows...", flush=True)
                        org, loads[backend] = prepare(engine, registry, rows=args.rows,
                                                      users=args.users, shares=shares)
                    users = org.users
                    if backend == "postgresql":
                        with engine.connect() as conn:
                            pg_version = "PostgreSQL " + str(conn.execute(
                                text("SHOW server_version")).scalar_one())
                    lists += bench_lists(engine, backend, org, runs=args.runs,
                                         show_plans=args.explain)
                    calls += bench_calls(engine, backend, org, runs=args.runs * 5)
                finally:
                    engine.dispose()
    command = "python -m bench.bench_permissions" + (
        f" {' '.join(argv)}" if argv else "")
    report = render(lists, calls, rows=args.rows, users=users, shares=shares,
                    command=command, versions=_versions(backends, pg_version), loads=loads)
    print(report)
    if not args.no_write:
        if args.results is not None:
            write_section(HEADING, report, path=args.results)
        else:
            write_section(HEADING, report)
    missed = [r for r in lists if r.clause > TARGET]
    for r in missed:
        print(f"over target: {r.backend} {r.shape}: clause {r.clause:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
