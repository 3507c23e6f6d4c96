"""The databases a benchmark runs on: a SQLite file, or a throwaway PostgreSQL cluster
started from the installed binaries (the same one the tests use)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, func, insert, literal, select, text

from engine.runtime import Runtime


@contextmanager
def database(backend: str, workdir: Path, *, name: str = "bench",
             sqlite_file: Path | None = None) -> Iterator[str]:
    """The URL of an empty database on ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        yield f"sqlite:///{sqlite_file or workdir / f'{name}.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}: sqlite or postgresql")
    from tests.support.pgcluster import start_cluster

    cluster = start_cluster()
    try:
        admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        yield cluster.url(name)
    finally:
        cluster.stop()


def copy_rows_until(runtime: Runtime, entity: str, size: int) -> int:
    """Copy ``entity``'s rows with ``INSERT ... SELECT`` until it holds ``size`` (unique
    columns left empty; owners and pools kept), then refresh the planner's statistics.

    Loading is not what the benchmarks measure. Returns the row count reached.
    """
    table = runtime.schema.table(entity)
    definition = runtime.registry.entity(entity)
    unique = {f for key in definition.unique_keys for f in key.fields} | {
        f.name for f in definition.fields if f.unique}
    columns = [c for c in table.c if c.name != "id"]
    # Match-key columns (engine/storage/matchkeys.py) are unique too.
    source = [literal(None, c.type).label(c.name) if c.name in unique or "key_of" in c.info
              else c for c in columns]
    while True:
        with runtime.engine.connect() as conn:
            count = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        if count >= size:
            break
        with runtime.engine.begin() as conn:
            conn.execute(insert(table).from_select(
                columns, select(*source).order_by(table.c.id).limit(size - count)))
    if runtime.engine.dialect.name == "postgresql":
        # VACUUM too: fresh rows have no visibility map, and autovacuum kicking in
        # mid-measurement made the PostgreSQL timings noisy.
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with runtime.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return count
