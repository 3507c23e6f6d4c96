"""Apply metadata to a database: plan, refuse or execute, record — in one transaction.

``apply_migration`` reads the applied metadata, plans, and executes the plan on
the same connection and in the same transaction that records the new version,
so a migration is applied whole or not at all (PostgreSQL and SQLite both have
transactional DDL; ``make_engine`` makes SQLite BEGIN before DDL too).

The transaction is ``write_transaction``'s, with two additions:

* PostgreSQL: an advisory lock, so two concurrent ``migrate`` runs queue and the
  second one plans against what the first one applied;
* SQLite: ``PRAGMA foreign_keys`` is turned off before BEGIN (it is a no-op
  inside a transaction) because rebuilding a table in batch mode drops it, and
  with foreign keys on, dropping a referenced table deletes — or cascades into —
  the rows that reference it. ``PRAGMA foreign_key_check`` runs before commit,
  so the database never commits a broken reference; then foreign keys go back on.
  This is SQLite's own documented procedure for schema changes
  (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table
  Schema Changes").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, text

from engine.errors import MigrationError
from engine.metadata.model import Registry
from engine.storage.applied import applied_registry, record_version
from engine.storage.database import WRITE_OPTION
from engine.storage.ddl import Executor
from engine.storage.plan import MigrationPlan
from engine.storage.planner import EMPTY_REGISTRY, plan_migration
from engine.storage.tables import build_schema

#: pg_advisory_xact_lock key shared by every migration ("tidepool" in ASCII, truncated).
MIGRATION_LOCK_KEY = 0x7469646570


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction fit for DDL on both databases (see the module docstring)."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # On the driver connection: SQLAlchemy would BEGIN first, and inside a
            # transaction SQLite ignores this pragma.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if not sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": MIGRATION_LOCK_KEY})
                yield conn
                if sqlite:
                    _check_foreign_keys(conn)
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({f"{row[0]} -> {row[2]}" for row in broken})
        raise MigrationError([(f"{len(broken)} rows would reference missing records "
                              f"({', '.join(tables)})")])


def apply_migration(engine: Engine, *, target: Registry, actor: str = "system",
                    dry_run: bool = False, purge_archived: bool = False) -> MigrationPlan:
    """Bring the database to ``target`` and record it as the applied metadata.

    Returns the plan. With ``dry_run`` nothing is written (the plan may carry
    blocking problems: show them). Otherwise a plan with problems raises
    ``MigrationError`` listing all of them, before any DDL; an empty plan writes
    nothing; any failure while executing rolls the whole migration back.
    ``purge_archived`` also drops what earlier migrations archived.
    """
    if dry_run:
        with engine.connect() as conn, conn.begin():
            applied = applied_registry(conn)
            return plan_migration(conn, applied=applied, target=target,
                                  purge_archived=purge_archived)
    with migration_transaction(engine) as conn:
        return migrate_in(conn, target=target, actor=actor, purge_archived=purge_archived)


def migrate_in(conn: Connection, *, target: Registry, actor: str = "system",
               purge_archived: bool = False,
               note: Mapping[str, Any] | None = None) -> MigrationPlan:
    """``apply_migration``'s work on a connection inside ``migration_transaction``.

    For callers that write more in the same transaction (the admin's
    configuration service stores its customisation row first), so the rows,
    the DDL and the new version commit or roll back together. ``note`` is kept
    with the version's plan (under ``"note"``), e.g. who changed what and why.
    """
    applied = applied_registry(conn)
    plan = plan_migration(conn, applied=applied, target=target, purge_archived=purge_archived)
    if plan.problems:
        raise MigrationError(plan.problems)
    if plan.is_empty:
        return plan
    before = applied or EMPTY_REGISTRY
    Executor(conn=conn, applied=before, applied_schema=build_schema(before),
             target_schema=build_schema(target), actor=actor).run(plan.steps)
    if applied is None or plan.applied_fingerprint != plan.target_fingerprint \
            or plan.schema_steps:
        recorded = plan.to_json() if note is None else {**plan.to_json(), "note": dict(note)}
        record_version(conn, registry=target, plan=recorded, actor=actor)
    return plan


def init_database(engine: Engine, *, target: Registry, actor: str = "system") -> MigrationPlan:
    """Create every table of ``target`` on an empty database.

    On a database that already holds the same metadata this does nothing; one
    initialised with other metadata is refused: changing it is ``migrate``'s job,
    which shows the plan first.
    """
    with engine.connect() as conn, conn.begin():
        applied = applied_registry(conn)
    if applied is not None and applied.fingerprint != target.fingerprint:
        raise MigrationError([
            (f"the database is already initialised with other metadata (version "
            f"{applied.fingerprint[:12]}); run `tidepool migrate --dry-run` to see the "
            f"changes, then `tidepool migrate` to apply them")])
    return apply_migration(engine, target=target, actor=actor)
