"""``tidepool reports rebuild`` and ``tidepool reports verify``.

rebuild: recompute every leaderboard rollup from the base tables in one
transaction, in the company's time zone (after an import that bypassed the service or
a new leaderboard measure; a zone change rebuilds by itself). verify: compare the rollups with the raw aggregate
over the base tables, per measure and owner, for a range of days; a mismatch
exits 1 and names it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TextIO

from engine.reports.catalog import catalog_of
from engine.reports.freshness import rebuild_on
from engine.reports.rollups import RollupKeeper
from engine.reports.zone import sync_company_zone
from engine.runtime import open_runtime
from engine.storage.database import database_url


def rebuild(url: str | None, out: TextIO, *, measures: list[str] | None = None) -> int:
    runtime = open_runtime(database_url(url))
    try:
        written = rebuild_on(runtime.engine, runtime.records, runtime.registry, measures)
        out.writelines(f"{name}: {rows} owner-day row(s)\n"
                       for name, rows in sorted(written.items()))
        out.write(f"rebuilt {len(written)} measure(s)\n")
        return 0
    finally:
        runtime.engine.dispose()


def verify(url: str | None, out: TextIO, *, first: dt.date, end: dt.date) -> int:
    runtime = open_runtime(database_url(url))
    try:
        keeper = RollupKeeper(runtime.schema, runtime.registry)
        bad = 0
        with runtime.engine.connect() as conn:
            sync_company_zone(conn)   # raw days in the company zone the rollups must match
            for m in catalog_of(runtime.registry).board_measures():
                raw = keeper.raw_totals(conn, runtime.records, m, first=first, end=end)
                kept = keeper.rollup_totals(conn, m, first=first, end=end)
                for owner in sorted(set(raw) | set(kept)):
                    if raw.get(owner) != kept.get(owner):
                        bad += 1
                        out.write(f"{m.name} owner {owner}: rollup {kept.get(owner)} != "
                                  f"raw {raw.get(owner)}\n")
                out.write(f"{m.name}: {len(raw)} owner(s) checked\n")
        out.write("rollups equal the raw aggregates\n" if not bad
                  else f"{bad} mismatch(es): run `tidepool reports rebuild`\n")
        return 0 if not bad else 1
    finally:
        runtime.engine.dispose()


def add_commands(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                 add_db: object) -> None:
    """Register ``reports rebuild`` and ``reports verify`` on the CLI's subparsers."""
    reports = sub.add_parser("reports", help="leaderboard rollups: rebuild and verify")
    commands = reports.add_subparsers(dest="reports_command", required=True)
    p = commands.add_parser("rebuild", help="recompute the leaderboard rollups from the base "
                                            "tables")
    add_db(p)  # type: ignore[operator]
    p.add_argument("--measure", action="append", help="only this measure (repeatable)")
    p.set_defaults(run=lambda args, out: rebuild(args.db, out, measures=args.measure))
    p = commands.add_parser("verify", help="compare the rollups with the raw aggregates")
    add_db(p)  # type: ignore[operator]
    p.add_argument("--since", type=dt.date.fromisoformat, default=dt.date(1970, 1, 1),
                   help="first day (YYYY-MM-DD); default: all")
    p.add_argument("--until", type=dt.date.fromisoformat, default=dt.date(2200, 1, 1),
                   help="day after the last (YYYY-MM-DD)")
    p.set_defaults(run=lambda args, out: verify(args.db, out, first=args.since,
                                                end=args.until))
