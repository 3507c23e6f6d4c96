"""The ``tidepool`` command line.

Each subcommand parses its arguments and calls one engine function; output is
plain text for people, exit status for scripts (0 ok, 1 refused/invalid, 2 usage).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine

from engine.errors import MetadataError, MigrationError, TidepoolError
from engine.storage.database import DATABASE_URL_ENV, database_url, make_engine

#: The app packages used when no --app is given: the CRM shipped in this repository.
DEFAULT_APPS = (Path(__file__).resolve().parent.parent / "apps" / "crm",)


def _app_paths(args: argparse.Namespace) -> list[Path]:
    return [Path(p) for p in (args.app or DEFAULT_APPS)]


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help=f"database URL (default: ${DATABASE_URL_ENV} or a "
                                     "SQLite file tidepool.db in the working directory)")


def _add_apps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", action="append", metavar="PATH",
                        help="app package folder (repeatable; default: apps/crm)")


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from engine.metadata.check import run_check

    return run_check(args.paths, out)


def _load(args: argparse.Namespace) -> object:
    from engine.metadata.loader import load_packages

    return load_packages(_app_paths(args))


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[Engine]:
    """The database of ``--db``, disposed when the command ends (no pooled leftovers)."""
    engine = make_engine(database_url(args.db))
    try:
        yield engine
    finally:
        engine.dispose()


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    from engine.storage.migrate import init_database

    registry = _load(args)
    with _engine(args) as engine:
        plan = init_database(engine, target=registry, actor="cli")  # type: ignore[arg-type]
    out.write(plan.describe() + "\n")
    out.write(f"initialised {database_url(args.db)}\n")
    return 0


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    from engine.storage.migrate import apply_migration

    registry = _load(args)
    with _engine(args) as engine:
        plan = apply_migration(engine, target=registry, actor="cli",  # type: ignore[arg-type]
                               dry_run=args.dry_run, purge_archived=args.purge_archived)
    out.write(plan.describe() + "\n")
    if args.dry_run:
        out.write("dry run: nothing was changed\n")
    return 1 if plan.blocking else 0


def cmd_seed(args: argparse.Namespace, out: TextIO) -> int:
    from engine.seeding import seed_entity

    started = time.perf_counter()
    with _engine(args) as engine:
        created = seed_entity(engine, entity=args.entity, rows=args.rows, seed=args.seed,
                              batch_size=args.batch_size)
    elapsed = time.perf_counter() - started
    rate = created / elapsed if elapsed else float("inf")
    out.write(f"seeded {created} {args.entity} rows in {elapsed:.1f}s ({rate:,.0f} rows/s)\n")
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from engine.demo import prepare_demo
    from ui.serve import serve

    url = database_url(args.db or "sqlite:///tidepool-demo.db")
    prepare_demo(url, apps=_app_paths(args), reset=args.reset, out=out)
    if args.no_serve:
        return 0
    serve(url, host=args.host, port=args.port, out=out, demo=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidepool", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate app packages; print every error as "
                                     "file:json-pointer: message")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("init", help="create the tables of the app packages in an empty database")
    _add_db(p)
    _add_apps(p)
    p.set_defaults(run=cmd_init)

    p = sub.add_parser("migrate", help="bring the database to the app packages' metadata")
    _add_db(p)
    _add_apps(p)
    p.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    p.add_argument("--purge-archived", action="store_true",
                   help="drop archived columns of removed fields (their data is lost)")
    p.set_defaults(run=cmd_migrate)

    p = sub.add_parser("seed", help="insert synthetic rows at scale (benchmarks, demos)")
    _add_db(p)
    p.add_argument("--entity", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same rows)")
    p.add_argument("--batch-size", type=int, default=5000)
    p.set_defaults(run=cmd_seed)

    p = sub.add_parser("demo", help="a ready demo on SQLite with sample rows, served on 127.0.0.1")
    _add_db(p)
    _add_apps(p)
    p.add_argument("--reset", action="store_true", help="start from an empty database")
    p.add_argument("--no-serve", action="store_true", help="prepare the database and exit")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args, out))
    except MetadataError as exc:
        for issue in exc.issues:
            out.write(f"{issue}\n")
        out.write(f"{len(exc.issues)} error(s)\n")
        return 1
    except MigrationError as exc:
        out.write(f"{exc}\n")
        return 1
    except TidepoolError as exc:
        out.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
