"""The demo database: the app packages' tables with sample rows, on SQLite.

``tidepool demo`` calls ``prepare_demo`` and then serves the UI. Sample rows are
generated from the metadata (engine/seeding.py), entities in reference order so
every generated reference points at a real row. Running it again keeps the
database (and what the user changed in it); ``reset`` starts over.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from engine.errors import TidepoolError
from engine.metadata.loader import load_packages
from engine.metadata.model import FieldType, Registry
from engine.seeding import seed_entity
from engine.storage.applied import applied_registry
from engine.storage.database import make_engine
from engine.storage.migrate import apply_migration, init_database
from engine.storage.tables import build_schema

#: Sample rows per entity: enough for pages, search and filters to mean something.
DEMO_ROWS = 120


def reference_order(registry: Registry) -> list[str]:
    """Entity names so that each comes after the entities it references.

    Self references and cycles cannot be ordered; such references are left for
    the seeder to fill from rows that already exist (or leave empty).
    """
    targets = {name: {f.target for f in e.fields if f.type is FieldType.REFERENCE
                      and f.target and f.target != name}
               for name, e in registry.entities.items()}
    ordered: list[str] = []
    pending = dict(targets)
    while pending:
        ready = sorted(n for n, deps in pending.items() if deps <= set(ordered))
        if not ready:  # a cycle: take them in name order
            ready = sorted(pending)[:1]
        for name in ready:
            ordered.append(name)
            del pending[name]
    return ordered


def _remove_sqlite_file(url: str) -> None:
    parsed = make_url(url)
    if not parsed.get_backend_name() == "sqlite" or not parsed.database:
        raise TidepoolError(f"--reset only removes a SQLite demo file, not {url}")
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.database + suffix).unlink(missing_ok=True)


def prepare_demo(url: str, *, apps: Sequence[Path], reset: bool = False,
                 out: TextIO, rows: int = DEMO_ROWS) -> Registry:
    """Initialise (or migrate) ``url`` to ``apps`` and fill empty entities with sample rows."""
    if reset:
        _remove_sqlite_file(url)
    registry = load_packages(apps)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            applied = applied_registry(conn)
        if applied is None:
            init_database(engine, target=registry, actor="demo")
            out.write(f"initialised {url}\n")
        elif applied.fingerprint != registry.fingerprint:
            apply_migration(engine, target=registry, actor="demo")
            out.write(f"migrated {url} to the app packages\n")
        schema = build_schema(registry)
        for name in reference_order(registry):
            with engine.connect() as conn:
                existing = conn.execute(
                    select(func.count()).select_from(schema.table(name))).scalar_one()
            if existing:
                continue
            created = seed_entity(engine, entity=name, rows=rows, registry=registry)
            out.write(f"  {created} sample {name} rows\n")
    finally:
        engine.dispose()
    return registry
