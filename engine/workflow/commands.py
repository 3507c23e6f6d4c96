"""``tidepool pool ...``: what an administrator does to pools from a shell.

assign, recycle, move and release act as the system (``Actor.system(via="cli")``),
through the same pool operations as the screens and the API, so each leaves its
feed entry and ledger row; ``history`` prints a record's ledger.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from sqlalchemy import select

from engine.actor import Actor
from engine.errors import NotFoundError
from engine.permissions.manage import user_by_login
from engine.runtime import open_runtime
from engine.storage.database import DATABASE_URL_ENV, database_url, make_engine
from engine.storage.pool_tables import POOL_EVENT_TABLE
from engine.workflow import pools

CLI_ACTOR = Actor.system("cli", via="cli")


def _run(args: argparse.Namespace, out: TextIO) -> int:
    url = database_url(args.db)
    engine = make_engine(url)
    try:
        runtime = open_runtime(url, engine=engine)
        with runtime.records.transaction(CLI_ACTOR) as tx:
            message = _operation(args, tx, runtime)
        out.write(message + "\n")
    finally:
        engine.dispose()
    return 0


def _user(tx: Any, login: str) -> int:
    return int(user_by_login(tx.conn, login).id)


def _operation(args: argparse.Namespace, tx: Any, runtime: Any) -> str:
    command = args.pool_command
    if command == "assign":
        record = pools.assign(tx, args.entity, args.id, owner_id=_user(tx, args.to),
                              reason=args.reason)
        return f"{args.entity} {record.id} now held by {args.to}"
    if command == "recycle":
        record = pools.recycle(tx, args.entity, args.id, reason=args.reason, pool=args.pool)
        return f"{args.entity} {record.id} is back in {record['pool_id']}"
    if command == "move":
        record = pools.move(tx, args.entity, args.id, to_pool=args.to_pool, reason=args.reason)
        return f"{args.entity} {record.id} is in {record['pool_id']}"
    if command == "release":
        moved = pools.release_held(tx, _user(tx, args.user), reason=args.reason)
        return f"{moved} record(s) held by {args.user} are back in their pools"
    return _history(tx, args)


def _history(tx: Any, args: argparse.Namespace) -> str:
    if args.entity not in tx.service.schema.tables:
        raise NotFoundError("entity", args.entity)
    ledger = tx.service.schema.system[POOL_EVENT_TABLE]
    rows = tx.conn.execute(select(ledger).where(ledger.c.entity == args.entity,
                                                ledger.c.record_id == args.id)
                           .order_by(ledger.c.id)).mappings().all()
    lines = [f"{r['at']:%Y-%m-%d %H:%M} {r['kind']:<8} pool={r['pool'] or '-'} "
             f"from={r['from_owner'] or '-'} to={r['to_owner'] or '-'} "
             f"by={r['actor_id'] or 'system'}"
             + (f" rule={r['rule']}" if r["rule"] else "")
             + (f" reason={r['reason']!r}" if r["reason"] else "") for r in rows]
    return "\n".join(lines) if lines else f"no pool events for {args.entity} {args.id}"


def add_pool_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``tidepool pool assign|recycle|move|release|history``."""
    group = sub.add_parser("pool", help="pool work as an administrator: assign, recycle, "
                                        "move, release a user's records, a record's history"
                           ).add_subparsers(dest="pool_command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=text)
        p.add_argument("--db", help=f"database URL (default: ${DATABASE_URL_ENV} or "
                                    "sqlite:///tidepool.db)")
        p.set_defaults(run=_run)
        return p

    p = command("assign", "give a record (in a pool or held) to a user, within capacity")
    p.add_argument("entity")
    p.add_argument("id", type=int)
    p.add_argument("--to", required=True, metavar="LOGIN")
    p.add_argument("--reason")
    p = command("recycle", "take a held record back into its pool")
    p.add_argument("entity")
    p.add_argument("id", type=int)
    p.add_argument("--reason", required=True)
    p.add_argument("--pool", help="the target pool when the entity has several")
    p = command("move", "move a record in a pool to another pool of its entity")
    p.add_argument("entity")
    p.add_argument("id", type=int)
    p.add_argument("--to-pool", required=True)
    p.add_argument("--reason")
    p = command("release", "return every record a user holds to its pool")
    p.add_argument("user", metavar="LOGIN")
    p.add_argument("--reason", default="released by an administrator")
    p = command("history", "a record's pool events (claims, returns, assignments...)")
    p.add_argument("entity")
    p.add_argument("id", type=int)
