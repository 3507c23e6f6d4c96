"""The ``tidepool`` command line.

Each subcommand parses its arguments and calls one engine function; output is
plain text for people, exit status for scripts (0 ok, 1 refused/invalid, 2 usage).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine

from engine.errors import MetadataError, MigrationError, TidepoolError
from engine.messages import M
from engine.metadata.model import Registry
from engine.storage.database import DATABASE_URL_ENV, database_url, make_engine
from engine.workflow.commands import add_pool_commands

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


#: Where ``init`` also looks for the first administrator's password (scripts, containers).
ADMIN_PASSWORD_ENV = "TIDEPOOL_ADMIN_PASSWORD"


def _new_password(prompt: str) -> str | None:
    """A password typed twice at a terminal; None when there is no terminal to ask."""
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass(f"{prompt} (again): ") != first:
        raise TidepoolError("the two passwords differ; nothing was changed")
    return first


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.bootstrap import (
        check_first_admin,
        create_first_admin,
        existing_admin,
        sync_policies,
    )
    from engine.storage.database import write_transaction
    from engine.storage.migrate import init_database

    registry = _load(args)
    assert isinstance(registry, Registry)
    with _engine(args) as engine:
        with engine.connect() as conn:
            admin = existing_admin(conn)
        password = None
        if admin is None:
            password = args.admin_password or os.environ.get(ADMIN_PASSWORD_ENV) or \
                _new_password(f"Password for the administrator {args.admin_login}")
            if password is None:
                out.write(f"error: the first administrator needs a password: pass "
                          f"--admin-password, set {ADMIN_PASSWORD_ENV} or run in a terminal "
                          f"(nothing was changed)\n")
                return 2
            # Refuse a bad password or a registry without the admin role before any DDL.
            check_first_admin(registry, login=args.admin_login, password=password)
        plan = init_database(engine, target=registry, actor="cli")
        sync_policies(engine, registry)
        if password is not None:
            with write_transaction(engine) as conn:
                user = create_first_admin(conn, registry, login=args.admin_login,
                                          password=password)
    out.write(plan.describe() + "\n")
    out.write(f"initialised {database_url(args.db)}\n")
    out.write(f"administrator: {user.login} (created)\n" if password is not None
              else f"administrator: {admin} (already there)\n")
    return 0


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    from engine.configure.service import configured_registry, migrate_configured
    from engine.storage.migrate import apply_migration

    synced = False
    with _engine(args) as engine:
        if args.dry_run:
            # the packages plus what admins configured, which a migrate must not undo
            registry = configured_registry(engine, _app_paths(args))
            plan = apply_migration(engine, target=registry, actor="cli", dry_run=True,
                                   purge_archived=args.purge_archived)
        else:
            # target, DDL and roles in one locked transaction (see migrate_configured)
            plan, synced = migrate_configured(engine, _app_paths(args), actor="cli",
                                              purge_archived=args.purge_archived)
    out.write(plan.describe() + "\n")
    if args.dry_run:
        out.write("dry run: nothing was changed\n")
    if synced:
        out.write("roles updated from the metadata\n")
    return 1 if plan.blocking else 0


# --- perms: users, departments, roles and the explainer, before the admin UI exists ----

def _applied(engine: Engine) -> Registry:
    from engine.storage.applied import applied_registry

    with engine.connect() as conn:
        registry = applied_registry(conn)
    if registry is None:
        raise TidepoolError("the database is not initialised: run `tidepool init` first")
    return registry


def cmd_perms_why(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.manage import explain

    with _engine(args) as engine:
        found = explain(engine, _applied(engine), login=args.user, entity=args.entity,
                        record_id=args.id, action=args.action)
    out.write(f"{found}\n")
    out.writelines(f"  also: {rule}\n" for rule in found.granted_by[1:])
    return 0 if found.allowed else 1


def cmd_perms_dept_add(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.manage import add_department
    from engine.storage.database import write_transaction

    with _engine(args) as engine, write_transaction(engine) as conn:
        new_id = add_department(conn, code=args.code, name=args.name, parent=args.parent)
    out.write(f"department {args.code} (id {new_id})\n")
    return 0


def cmd_perms_user_add(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.manage import add_user
    from engine.storage.database import write_transaction

    password = None
    if args.password_prompt:
        password = _new_password(f"Password for {args.login}")
        if password is None:
            out.write("error: --password-prompt needs a terminal (nothing was changed)\n")
            return 2
    with _engine(args) as engine:
        registry = _applied(engine)
        with write_transaction(engine) as conn:
            user = add_user(conn, registry, login=args.login, display_name=args.name or args.login,
                            password=password, department=args.department, level=args.level,
                            email=args.email, roles=args.role or ())
    out.write(f"user {user.login} (id {user.id})" + ("" if password else
                                                    ", no password yet: cannot sign in") + "\n")
    return 0


def cmd_perms_bind(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.manage import bind, unbind
    from engine.storage.database import write_transaction

    with _engine(args) as engine:
        registry = _applied(engine)
        with write_transaction(engine) as conn:
            if args.unbind:
                unbind(conn, login=args.user, role=args.role, domain=args.domain)
                out.write(f"{args.user} no longer holds {args.role} in {args.domain}\n")
            else:
                added = bind(conn, registry, login=args.user, role=args.role,
                             domain=args.domain)
                out.write(f"{args.user} holds {args.role} in {args.domain}"
                          + ("" if added else " (already did)") + "\n")
    return 0


def cmd_perms_deactivate(args: argparse.Namespace, out: TextIO) -> int:
    from engine.configure.people import deactivate_and_release
    from engine.permissions.manage import user_by_login
    from engine.runtime import open_runtime

    with _engine(args) as engine:
        runtime = open_runtime(database_url(args.db), engine=engine)
        with engine.connect() as conn:
            user_id = user_by_login(conn, args.user).id
        deactivate_and_release(runtime.records, user_id)
    out.write(f"{args.user} is deactivated: sessions and API tokens no longer work, and "
              "the records they held are back in their pools\n")
    return 0


def _add_perms(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    perms = sub.add_parser("perms", help="users, departments and roles; why a user may or may "
                                         "not act on a record").add_subparsers(
        dest="perms_command", required=True)
    p = perms.add_parser("why", help="the rule that lets a user act on a record, or why not "
                                     "(exit 0 allowed, 1 refused)")
    _add_db(p)
    p.add_argument("--user", required=True, metavar="LOGIN")
    p.add_argument("--entity", required=True)
    p.add_argument("--id", required=True, type=int)
    p.add_argument("--action", default="read")
    p.set_defaults(run=cmd_perms_why)
    p = perms.add_parser("dept-add", help="add a department to the org tree")
    _add_db(p)
    p.add_argument("--code", required=True, help="lower-case identifier (pools name it)")
    p.add_argument("--name", required=True)
    p.add_argument("--parent", metavar="CODE", help="the parent department (default: top level)")
    p.set_defaults(run=cmd_perms_dept_add)
    p = perms.add_parser("user-add", help="add a user, optionally with roles")
    _add_db(p)
    p.add_argument("--login", required=True)
    p.add_argument("--name", help="display name (default: the login)")
    p.add_argument("--email")
    p.add_argument("--department", metavar="CODE")
    p.add_argument("--level", help="e.g. manager, supervisor, rep")
    p.add_argument("--role", action="append", metavar="ROLE[@DOMAIN]",
                   help="repeatable; DOMAIN is org (default), dept:<code> or pool:<name>")
    p.add_argument("--password-prompt", action="store_true",
                   help="ask for the user's password (otherwise they cannot sign in yet)")
    p.set_defaults(run=cmd_perms_user_add)
    p = perms.add_parser("bind", help="give a user a role in a domain (--unbind takes it away)")
    _add_db(p)
    p.add_argument("--user", required=True, metavar="LOGIN")
    p.add_argument("--role", required=True)
    p.add_argument("--domain", default="org", help="org (default), dept:<code> or pool:<name>")
    p.add_argument("--unbind", action="store_true")
    p.set_defaults(run=cmd_perms_bind)
    p = perms.add_parser("deactivate", help="stop a user signing in; ends sessions and tokens")
    _add_db(p)
    p.add_argument("--user", required=True, metavar="LOGIN")
    p.set_defaults(run=cmd_perms_deactivate)


# --- tokens: API tokens for any user, without the Python shell ------------------------

def _expiry(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise TidepoolError(f"--expires must be a date YYYY-MM-DD, not {text!r}") from None
    # valid through that day in UTC: it ends when the next day begins
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


def cmd_tokens_create(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.manage import user_by_login
    from engine.permissions.tokens import create_token
    from engine.storage.database import write_transaction

    with _engine(args) as engine, write_transaction(engine) as conn:
        info, plaintext = create_token(conn, user_by_login(conn, args.user).id, name=args.name,
                                       expires_at=_expiry(args.expires))
    out.write(f"token {info.id} for {args.user} ({info.name}); it is shown only this once:\n"
              f"{plaintext}\n")
    return 0


def cmd_tokens_list(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.manage import user_by_login
    from engine.permissions.tokens import list_tokens

    with _engine(args) as engine, engine.connect() as conn:
        user = user_by_login(conn, args.user)
        tokens = list_tokens(conn, user.id)
    for info in tokens:
        state = "revoked" if info.revoked_at else (
            "expired" if info.expires_at and info.expires_at <= dt.datetime.now(dt.UTC)
            else "active")
        expiry = f"expires {info.expires_at:%Y-%m-%d %H:%M} UTC" if info.expires_at \
            else "no expiry"
        out.write(f"{info.id}\t{info.prefix}…\t{info.name}\t{state}\t{expiry}\n")
    if not tokens:
        out.write(f"{args.user} has no API tokens\n")
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, out: TextIO) -> int:
    from engine.permissions.tokens import revoke_token
    from engine.storage.database import write_transaction

    with _engine(args) as engine, write_transaction(engine) as conn:
        revoke_token(conn, args.id)
    out.write(f"token {args.id} is revoked\n")
    return 0


def _add_tokens(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tokens = sub.add_parser("tokens", help="API tokens of any user: create (shown once), "
                                           "list, revoke").add_subparsers(
        dest="tokens_command", required=True)
    p = tokens.add_parser("create", help="create a token for a user; prints it once")
    _add_db(p)
    p.add_argument("--user", required=True, metavar="LOGIN")
    p.add_argument("--name", required=True, help="what the token is for, e.g. 'ERP sync'")
    p.add_argument("--expires", metavar="YYYY-MM-DD", help="last day it works (default: never)")
    p.set_defaults(run=cmd_tokens_create)
    p = tokens.add_parser("list", help="a user's tokens (never the secrets)")
    _add_db(p)
    p.add_argument("--user", required=True, metavar="LOGIN")
    p.set_defaults(run=cmd_tokens_list)
    p = tokens.add_parser("revoke", help="revoke a token by its id, for good")
    _add_db(p)
    p.add_argument("id", type=int)
    p.set_defaults(run=cmd_tokens_revoke)


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


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from engine.demo import DEMO_PASSWORD, prepare_demo
    from ui.serve import serve

    url = database_url(args.db or "sqlite:///tidepool-demo.db")
    prepare_demo(url, apps=_app_paths(args), reset=args.reset, out=out)
    if args.no_serve:
        return 0
    serve(url, host=args.host, port=args.port, out=out,
          banner=M("Demo: sign in as %(logins)s... with the password %(password)s",
                   logins="admin, manager, sup_east, rep_east1", password=DEMO_PASSWORD))
    return 0


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from ui.serve import serve

    serve(database_url(args.db), host=args.host, port=args.port, out=out, workers=args.workers,
          rules_interval=args.rules_interval or None)
    return 0


def cmd_rules_run(args: argparse.Namespace, out: TextIO) -> int:
    from engine.runtime import open_runtime
    from engine.workflow.rule_report import write_report
    from engine.workflow.rule_runner import run_rules

    now = None
    if args.at is not None:
        if not args.dry_run:
            out.write("error: --at only previews (use it with --dry-run)\n")
            return 2
        try:
            now = dt.datetime.fromisoformat(args.at)
        except ValueError:
            out.write(f"error: --at {args.at!r} is not an ISO 8601 date-time\n")
            return 2
        now = now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)
    if args.batch is not None and args.batch < 1:
        out.write("error: --batch must be at least 1\n")
        return 2
    with _engine(args) as engine:
        runtime = open_runtime(database_url(args.db), engine=engine)
        report = run_rules(runtime.records, pool=args.pool, rule=args.rule,
                           dry_run=args.dry_run, batch=args.batch, now=now)
    write_report(report, out)
    return 0


def cmd_customisations_export(args: argparse.Namespace, out: TextIO) -> int:
    from engine.configure.export import export_package

    with _engine(args) as engine:
        written = export_package(engine, apps=_app_paths(args), out=Path(args.out),
                                 name=args.name)
    root = Path(args.out)
    out.writelines(f"{path.relative_to(root).as_posix()}\n" for path in written)
    out.write(f"exported {len(written) - 1} customisation(s) to {root} as app {args.name!r}\n")
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    from engine.actor import Actor
    from engine.runtime import open_runtime
    from engine.workflow.import_files import read_table
    from engine.workflow.imports import (
        ImportMode,
        error_report,
        match_columns,
        run_import,
        warning_report,
    )

    path = Path(args.file)
    table = read_table(path.read_bytes(), filename=path.name)
    with _engine(args) as engine:
        runtime = open_runtime(database_url(args.db), engine=engine)
        if args.entity not in runtime.registry.entities:
            out.write(f"error: no entity {args.entity!r}\n")
            return 2
        entity = runtime.registry.entity(args.entity)
        mapping = match_columns(entity, table.headers)
        unmapped = [h for h in table.headers if h not in mapping]
        out.write(f"{len(table.rows)} rows ({table.encoding}); columns: "
                  + ", ".join(f"{h} -> {f}" for h, f in mapping.items())
                  + (f"; ignored: {', '.join(unmapped)}" if unmapped else "") + "\n")

        def progress(report: Any) -> None:
            rate = report.done / report.seconds if report.seconds else 0.0
            width = 30
            filled = width * report.done // max(1, report.total)
            out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {report.done}/"
                      f"{report.total} rows  {rate:,.0f} rows/s")
            out.flush()

        report = run_import(runtime.records, Actor.system("import"), entity=entity.name,
                            table=table, mapping=mapping, mode=ImportMode(args.mode),
                            dry_run=args.dry_run, batch=args.batch, progress=progress)
    out.write("\n")
    verb = "would be " if args.dry_run else ""
    out.write(f"{report.created} {verb}created, {report.updated} {verb}updated, "
              f"{report.skipped} skipped, {len(report.rejected)} rejected of {report.total} "
              f"in {report.seconds:.1f}s ({report.done / max(report.seconds, 1e-9):,.0f} "
              f"rows/s)\n")
    if report.warned:
        warned = path.with_name(path.stem + ".warnings.csv")
        warned.write_bytes(warning_report(table, report))
        out.write(f"{len(report.warned)} created row(s) look like duplicates of stored "
                  f"records: {warned}\n")
    if report.rejected:
        errors = path.with_name(path.stem + ".errors.csv")
        errors.write_bytes(error_report(table, report))
        out.write(f"rejected rows and reasons: {errors}\n")
        return 1
    return 0


def _add_rules(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rules = sub.add_parser("rules", help="automatic pool rules"
                           ).add_subparsers(dest="action", required=True)
    p = rules.add_parser("run", help="run the pool rules once now (safe beside a running "
                                     "server: each rule runs in one process at a time)")
    _add_db(p)
    p.add_argument("--dry-run", action="store_true",
                   help="list the records that would move and why; change nothing")
    p.add_argument("--pool", help="only this pool's rules")
    p.add_argument("--rule", help="only the rule of this name")
    p.add_argument("--batch", type=int, default=None,
                   help="records moved per transaction (default: 1000 on SQLite, 20000 on "
                        "PostgreSQL)")
    p.add_argument("--at", metavar="DATETIME",
                   help="with --dry-run: what would move at this ISO 8601 time (UTC unless "
                        "it carries an offset), e.g. tomorrow")
    p.set_defaults(run=cmd_rules_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidepool", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate app packages; print every error as "
                                     "file:json-pointer: message")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("init", help="create the tables of the app packages in an empty "
                                    "database, and the first administrator")
    _add_db(p)
    _add_apps(p)
    p.add_argument("--admin-login", default="admin", help="the first administrator's login")
    p.add_argument("--admin-password",
                   help=f"their password (visible to other local users: prefer the prompt "
                        f"or ${ADMIN_PASSWORD_ENV})")
    p.set_defaults(run=cmd_init)

    p = sub.add_parser("migrate", help="bring the database to the app packages' metadata")
    _add_db(p)
    _add_apps(p)
    p.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    p.add_argument("--purge-archived", action="store_true",
                   help="drop archived columns of removed fields (their data is lost)")
    p.set_defaults(run=cmd_migrate)
    _add_perms(sub)
    add_pool_commands(sub)
    _add_tokens(sub)

    custom = sub.add_parser("customisations", help="what admins configured in the UI"
                            ).add_subparsers(dest="action", required=True)
    p = custom.add_parser("export", help="write the customisations as an app package folder "
                                         "(which `tidepool check` accepts)")
    _add_db(p)
    _add_apps(p)
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    p.add_argument("--name", default="site", help="the exported app's name (default: site)")
    p.set_defaults(run=cmd_customisations_export)

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

    from engine.reports.commands import add_commands as add_report_commands

    add_report_commands(sub, _add_db)

    p = sub.add_parser("serve", help="serve the web app (and the JSON API) under uvicorn")
    _add_db(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes (default: one per CPU)")
    p.add_argument("--rules-interval", type=float, default=300.0, metavar="SECONDS",
                   help="run the pool rules every SECONDS while serving (0: never; "
                        "default 300)")
    p.set_defaults(run=cmd_serve)
    _add_rules(sub)
    p = sub.add_parser("import", help="import a CSV or XLSX file into an entity (every row "
                                      "is created, updated, skipped or reported)")
    _add_db(p)
    p.add_argument("--entity", required=True)
    p.add_argument("--mode", choices=("insert", "upsert", "skip"), default="insert",
                   help="rows whose unique key exists: refuse (insert), update (upsert) or "
                        "skip")
    p.add_argument("--dry-run", action="store_true", help="check every row; write nothing")
    p.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    p.add_argument("file", help="a .csv (UTF-8, with or without BOM, or GB18030) or .xlsx")
    p.set_defaults(run=cmd_import)
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
