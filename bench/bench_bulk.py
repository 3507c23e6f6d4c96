"""Bulk create of CRM customers: in process and over HTTP, against plain inserts of the same rows.

Run ``python -m bench.bench_bulk`` (``--help`` for options). It builds the demo
database (users of every role, the pools and their territories), then measures,
in the same run and on the same database:

* service: ``RecordService.bulk_create`` of ``--rows`` generated customers in
  ``--batch``-row batches, as the system actor and as a rep (row scopes from the
  roles: owner and reference checks), with everything a create does: coercion,
  validation, defaults, unique keys (match-key columns), activity entries, write
  events, the pool's territory distribution (a before_insert hook) and the
  in-transaction hooks (rollups, ledger, clocks);
* baseline: the very rows the service stored (customer rows with their key
  columns, and their activity rows) deleted and inserted again by a driver-level
  ``executemany`` per table in the same batches, one transaction each: the floor
  any bulk path on this database pays;
* HTTP (``--http-seconds`` > 0): ``POST /api/v1/customer/bulk`` with
  ``bench_http.BULK_ROWS`` records per request from 8 keep-alive connections to a
  one-worker server, as the rep with an API token (rows/s and server CPU per row).

Rates are rows per second of wall time and of this process's CPU (the steadier
figure on a shared machine: SQLite's work is in the process). Results go to the
``Bulk create (issue 13)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import bisect
import io
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete

from bench import bench_http
from bench.databases import database
from bench.results import write_section
from engine.actor import Actor
from engine.demo import prepare_demo
from engine.metadata.model import Entity
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import Runtime, open_runtime
from engine.seeding import generate_rows
from engine.storage.database import write_transaction

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
ENTITY = "customer"
REP = bench_http.REP
HEADING = "Bulk create (issue 13)"


@dataclass(frozen=True)
class Run:
    """One measured loop: ``rows`` rows in ``wall`` seconds using ``cpu`` process seconds."""

    label: str
    rows: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.rows / self.wall

    @property
    def cpu_rate(self) -> float:
        return self.rows / self.cpu


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def service_run(runtime: Runtime, actor: Actor, payloads: Sequence[dict[str, Any]], *,
                batch: int, label: str) -> tuple[Run, list[int]]:
    """``bulk_create`` the payloads in batches; the run and the ids created."""
    ids: list[int] = []
    wall, cpu = _clock()
    for offset in range(0, len(payloads), batch):
        ids += runtime.records.bulk_create(actor, ENTITY, payloads[offset:offset + batch])
    return Run(label, len(payloads), time.perf_counter() - wall,
               time.process_time() - cpu), ids


def baseline_run(runtime: Runtime, ids: Sequence[int], *, batch: int) -> Run:
    """Delete the rows ``ids`` and their activity, then insert the very same stored rows
    again with one driver ``executemany`` per table and batch (ids kept)."""
    table = runtime.schema.table(ENTITY)
    activity = runtime.schema.system["tp_activity"]
    low, high = min(ids), max(ids)
    row_columns = [c.name for c in table.c]
    entry_columns = [c.name for c in activity.c if c.name != "id"]
    # Driver-level reads: the values exactly as stored, with no type processing.
    with runtime.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            _select_sql(table.name, row_columns, "id BETWEEN ? AND ? ORDER BY id"),
            (low, high)).fetchall()
        entries = conn.exec_driver_sql(
            _select_sql(activity.name, entry_columns,
                        "entity = ? AND record_id BETWEEN ? AND ? ORDER BY record_id"),
            (ENTITY, low, high)).fetchall()
    if len(rows) != len(ids) or len(entries) < len(ids):
        raise RuntimeError(f"the service stored {len(rows)} rows and {len(entries)} activity "
                           f"entries for {len(ids)} ids")
    with write_transaction(runtime.engine) as conn:
        conn.execute(delete(activity).where((activity.c.entity == ENTITY)
                                            & activity.c.record_id.between(low, high)))
        conn.execute(delete(table).where(table.c.id.between(low, high)))
    row_sql = _insert_sql(table.name, row_columns)
    entry_sql = _insert_sql(activity.name, entry_columns)
    record_at = entry_columns.index("record_id")
    entry_ids = [e[record_at] for e in entries]
    raw = runtime.engine.raw_connection()
    try:
        wall, cpu = _clock()
        for offset in range(0, len(rows), batch):
            cursor = raw.cursor()
            # The engine's connections autocommit at driver level (it issues BEGIN itself).
            cursor.execute("BEGIN IMMEDIATE")
            chunk = rows[offset:offset + batch]
            first = bisect.bisect_left(entry_ids, chunk[0][0])
            last = bisect.bisect_right(entry_ids, chunk[-1][0])
            cursor.executemany(row_sql, chunk)
            cursor.executemany(entry_sql, entries[first:last])
            cursor.execute("COMMIT")
        done = Run("baseline", len(rows), time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        raw.close()
    return done


def _select_sql(table: str, columns: Sequence[str], where: str) -> str:
    # Identifiers from the storage schema (metadata validated against schemas/), not input.
    return f'SELECT {", ".join(columns)} FROM "{table}" WHERE {where}'


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    # Identifiers from the storage schema (metadata validated against schemas/), not input.
    marks = ", ".join("?" for _ in columns)
    return f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})'


def _distinct_bodies(token: str) -> bench_http.RequestMaker:
    """Bulk requests whose records all have new names (no possible duplicates)."""
    counter = iter(range(10**9))

    def make(i: int, previous: bytes | None) -> bytes:
        k = next(counter)
        records = [{"name": f"Fresh {k} {n}", "employees": n % 500}
                   for n in range(bench_http.BULK_ROWS)]
        return bench_http._request(
            "POST", f"/api/v1/{ENTITY}/bulk",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            json.dumps({"records": records}).encode())

    return make


def http_runs(url: str, *, seconds: float, clients: int) -> list[tuple[str, bench_http.Load]]:
    """One-worker server, the rep posting ``BULK_ROWS`` records per request: new names
    each time, then ``bench_http``'s body (the same names every request: from the second
    request on every row is a possible duplicate and gets a warning)."""
    token = bench_http.api_token(url)
    record = bench_http.rep_records(url, 1)[0]
    found = []
    with bench_http.server(url, workers=1, record=record) as (host, port, pid):
        repeated = next(m for op, _, m in bench_http.loads(token, "", record, [record] * clients)
                        if op == "bulk")
        fresh = bench_http.Traffic("POST", f"/api/v1/{ENTITY}/bulk", {},
                                   maker=_distinct_bodies(token))
        for label, make in (("new names", fresh), ("repeated names", repeated)):
            found.append((label, bench_http.run_load(host, port, pid, "bulk", "api", make,
                                                     clients=clients, seconds=seconds,
                                                     count_statements=False,
                                                     # a new body per request: the Python client
                                                     client="asyncio")))
    return found


def _engine_actor(engine: Engine, runtime: Runtime, login: str) -> Actor:
    with engine.connect() as conn:
        user = find_user(conn, login)
    assert user is not None, login
    actor: Actor = runtime.policy.actor_for(user.id)  # type: ignore[attr-defined]
    return actor


def writable_rows(runtime: Runtime, actor: Actor, entity: Entity, *, count: int, seed: int,
                  start: int) -> list[dict[str, Any]]:
    """``count`` generated rows of ``entity`` as ``actor`` may send them: a user's without
    the fields they may not write (they own what they create), the system's whole."""
    rows = list(generate_rows(entity, count=count, seed=seed, start=start))
    if actor.is_system:
        return rows
    barred = {"owner_id"} | runtime.policy.readonly_fields(actor, entity) \
        | runtime.policy.hidden_fields(actor, entity)
    return [{k: v for k, v in r.items() if k not in barred} for r in rows]


def measure(url: str, *, rows: int, batch: int, rounds: int,
            http_seconds: float) -> tuple[list[tuple[Run, Run]],
                                          list[tuple[str, bench_http.Load]]]:
    prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=200)
    runtime = open_runtime(url, policy_factory=CasbinAccessPolicy)
    try:
        entity = runtime.registry.entity(ENTITY)
        rep = _engine_actor(runtime.engine, runtime, REP)
        pairs: list[tuple[Run, Run]] = []
        seed, start = 11, 100_000  # past the demo's rows: unique values follow the index
        for _ in range(rounds):
            for label, actor in (("system", Actor.system("bench")), ("rep", rep)):
                payloads = writable_rows(runtime, actor, entity, count=rows, seed=seed,
                                         start=start)
                seed, start = seed + 1, start + rows
                service, ids = service_run(runtime, actor, payloads, batch=batch, label=label)
                base = baseline_run(runtime, ids, batch=batch)
                pairs.append((service, base))
                print(f"  {label:6} service {service.rate:8,.0f} rows/s "
                      f"({service.cpu_rate:8,.0f}/CPU s)  baseline {base.rate:8,.0f} rows/s "
                      f"({base.cpu_rate:8,.0f}/CPU s)", flush=True)
    finally:
        runtime.engine.dispose()
    loads = http_runs(url, seconds=http_seconds, clients=8) if http_seconds > 0 else []
    for label, load in loads:
        print(f"  http ({label}) {load.per_second * bench_http.BULK_ROWS:,.0f} rows/s, "
              f"{load.cpu_ms / bench_http.BULK_ROWS * 1000:.1f} µs server CPU/row", flush=True)
    return pairs, loads


def report(pairs: Sequence[tuple[Run, Run]], loads: Sequence[tuple[str, bench_http.Load]], *,
           command: str, rows: int, batch: int, load_avg: tuple[float, float]) -> str:
    lines = [
        (f"Command: `{command}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
         f"SQLite (WAL file), {os.cpu_count()} cores, load average {load_avg[0]:.1f} at the "
         f"start, {load_avg[1]:.1f} at the end. {rows:,} generated CRM customers per run in "
         f"{batch:,}-row batches; the demo database (users, pools and territories)."),
        "",
        ("| actor | service rows/s | per CPU s | baseline rows/s | per CPU s "
         "| service CPU / baseline CPU |"),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for service, base in pairs:
        lines.append(f"| {service.label} | {service.rate:,.0f} | {service.cpu_rate:,.0f} "
                     f"| {base.rate:,.0f} | {base.cpu_rate:,.0f} "
                     f"| {service.cpu / base.cpu:.2f} |")
    if loads:
        lines += ["", (f"HTTP, one worker, 8 connections, `POST /api/v1/{ENTITY}/bulk` with "
                       f"{bench_http.BULK_ROWS} records per request as `{REP}`:"), ""]
        lines += [f"- {label}: {load.per_second * bench_http.BULK_ROWS:,.0f} rows/s, "
                  f"{load.cpu_ms / bench_http.BULK_ROWS * 1000:.1f} µs server CPU per row "
                  f"({bench_http.BULK_ROWS / load.cpu_ms * 1000:,.0f} rows per server CPU "
                  "second)" for label, load in loads]
    lines += ["", ("Baseline: the rows the service stored (customer rows with their match-key "
                   "columns, and their activity rows), re-inserted by one driver executemany "
                   "per table and batch, one commit per batch.")]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_bulk",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="customers per run")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--http-seconds", type=float, default=4.0, help="0: no HTTP run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    start_load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tidepool-bulk-") as tmp, \
            database("sqlite", Path(tmp)) as url:
        pairs, loads = measure(url, rows=args.rows, batch=args.batch, rounds=args.rounds,
                              http_seconds=args.http_seconds)
    command = "python -m bench.bench_bulk" + (f" {' '.join(argv)}" if argv else "")
    body = report(pairs, loads, command=command, rows=args.rows, batch=args.batch,
                  load_avg=(start_load, os.getloadavg()[0]))
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
