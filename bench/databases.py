"""The databases a benchmark runs on: a SQLite file, or a throwaway PostgreSQL cluster
started from the installed binaries (the same one the tests use)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text


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
