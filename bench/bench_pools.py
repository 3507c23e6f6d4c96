"""Pool claims under concurrency: claims/s with N clients vs the bare UPDATE, same run.

Run ``python -m bench.bench_pools`` (``--claims``, ``--clients``, ``--backends``;
``--help``). For each backend (a SQLite file; a throwaway PostgreSQL cluster) it
loads the CRM demo, puts ``2 x --claims`` customers in the pool and lets
``--clients`` threads, each on its own connection and acting as a pool member,
claim distinct records:

* *claim*: ``PoolService.claim`` — permission check, the scoped read, the
  per-user-and-pool lock, one conditional UPDATE with every limit counted
  (capacity, daily claims, cooldown, new-record protection, all set high so
  they are evaluated but never refuse), the feed entry, the ledger row;
* *bare*: the statement a claim amounts to without limits, feed or ledger —
  ``UPDATE customer SET owner_id, pool_id = NULL, version + 1 WHERE id AND
  owner_id IS NULL`` in its own write transaction.

The ratio bare/claim says what the checks and the audit trail cost. Results go
to the ``Pools (issue 9)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bench.databases import database
from bench.results import write_section
from engine.actor import Actor
from engine.demo import prepare_demo
from engine.metadata.model import PoolLimits
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.service import RecordService
from engine.runtime import install_hooks
from engine.storage.applied import applied_registry
from engine.storage.database import make_engine, write_transaction
from engine.storage.tables import build_schema
from engine.workflow.pools import PoolService

REPO = Path(__file__).resolve().parent.parent
CRM = REPO / "apps" / "crm"
HEADING = "Pools (issue 9)"
MEMBERS = ("rep_east1", "rep_east2", "rep_west1", "sup_east", "sup_west", "manager")
HIGH = PoolLimits(max_held=10**6, daily_claims=10**6, reclaim_cooldown_days=30,
                  new_record_hours=1)


def _two_hours_on() -> datetime:
    """Now plus two hours: the freshly loaded rows are past new-record protection."""
    return datetime.now(UTC) + timedelta(hours=2)


RETRIES = {"count": 0}
_RETRY_LOCK = threading.Lock()


def _retrying(call: Callable[[], object]) -> None:
    """SQLite refuses a writer that waited past busy_timeout ("database is locked"); on a
    loaded machine a client can starve that long. Retry it and count, for the table."""
    for attempt in range(10):
        try:
            call()
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == 9:
                raise
            with _RETRY_LOCK:
                RETRIES["count"] += 1


def _parallel(clients: int, work: Callable[[int], None]) -> float:
    """Seconds for ``clients`` threads, released together, to each run ``work(i)``."""
    gate = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        gate.wait()
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised after the timing
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def measure(url: str, *, claims: int, clients: int) -> tuple[float, float]:
    """(claims/s through PoolService, bare UPDATEs/s) on the database at ``url``."""
    prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=2 * claims + 40)
    engine = make_engine(url, pool_size=clients + 2, max_overflow=clients)
    try:
        with engine.connect() as conn:
            base = applied_registry(conn)
        assert base is not None
        registry = dataclasses.replace(base, pools={
            n: dataclasses.replace(p, limits=HIGH) for n, p in base.pools.items()})
        records = install_hooks(RecordService(engine=engine, schema=build_schema(registry),
                                              policy=CasbinAccessPolicy(engine, registry),
                                              clock=_two_hours_on))
        table = records.schema.table("customer")
        with write_transaction(engine) as conn:
            ids = list(conn.execute(select(table.c.id).order_by(table.c.id)
                                    .limit(2 * claims)).scalars())
            conn.execute(update(table).where(table.c.id.in_(ids))
                         .values(owner_id=None, pool_id="customer_pool"))
        with engine.connect() as conn:
            users = [find_user(conn, login) for login in MEMBERS]
        actors = [records.policy.actor_for(u.id, login=u.login)  # type: ignore[attr-defined]
                  for u in users if u is not None]
        pools = PoolService(records)
        mine, bare = ids[:claims], ids[claims:]

        def claim(i: int) -> None:
            actor: Actor = actors[i % len(actors)]
            for record_id in mine[i::clients]:
                _retrying(functools.partial(pools.claim, actor, "customer", record_id))

        def update_only(i: int) -> None:
            user_id = actors[i % len(actors)].user_id

            def one(record_id: int) -> None:
                with write_transaction(engine) as conn:
                    conn.execute(update(table).where(table.c.id == record_id,
                                                     table.c.owner_id.is_(None))
                                 .values(owner_id=user_id, pool_id=None,
                                         version=table.c.version + 1))

            for record_id in bare[i::clients]:
                _retrying(functools.partial(one, record_id))

        t_claim = _parallel(clients, claim)
        t_bare = _parallel(clients, update_only)
        return claims / t_claim, claims / t_bare
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=2000, help="claims per run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true", help="print, do not update "
                                                                "RESULTS.md")
    args = parser.parse_args(argv)
    lines = [(f"`python -m bench.bench_pools --claims {args.claims} --clients {args.clients}` "
              f"on {platform.machine()}, Python {platform.python_version()}; "
              f"{args.clients} threads, each on its own connection, claim distinct pool "
              "records; *bare* is the single-row UPDATE a claim amounts to (no checks, feed "
              "or ledger), measured in the same run."), "",
             "| backend | clients | claims/s | bare UPDATE/s | bare / claim | lock retries |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            RETRIES["count"] = 0
            with database(backend, Path(tmp), name="pools") as url:
                rate, bare = measure(url, claims=args.claims, clients=args.clients)
            lines.append(f"| {backend} | {args.clients} | {rate:,.0f} | {bare:,.0f} | "
                         f"{bare / rate:.1f}x | {RETRIES['count']} |")
    lines += ["", ("A claim does far more than the bare UPDATE: the grant and row-scope "
                   "check, a scoped read, the per-user lock (PostgreSQL advisory lock), the "
                   "UPDATE whose WHERE counts held records, today's claims, the cooldown and "
                   "the pool-entry time, then the feed entry and the ledger row. On SQLite "
                   "every write transaction is serialised (BEGIN IMMEDIATE), so the clients "
                   "queue; on PostgreSQL they only queue per user and pool. *lock retries*: writers "
                   "SQLite refused after waiting its busy timeout (10 s), retried (a sign "
                   "of a loaded machine).")]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
