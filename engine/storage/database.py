"""Engines for SQLite and PostgreSQL with the settings the engine relies on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event

DEFAULT_DATABASE_URL = "sqlite:///tidepool.db"
DATABASE_URL_ENV = "TIDEPOOL_DATABASE_URL"
#: Connections each process keeps open, and how many more it may open under a burst
#: (docs/scaling.md: a PostgreSQL server needs workers x (size + overflow) connections).
POOL_SIZE_ENV = "TIDEPOOL_DB_POOL_SIZE"
MAX_OVERFLOW_ENV = "TIDEPOOL_DB_MAX_OVERFLOW"
#: PostgreSQL only: a statement running longer is cancelled (milliseconds; unset = none).
STATEMENT_TIMEOUT_ENV = "TIDEPOOL_STATEMENT_TIMEOUT_MS"
DEFAULT_POOL_SIZE = 10
DEFAULT_MAX_OVERFLOW = 20


def database_url(explicit: str | None = None) -> str:
    """``--db`` wins, then TIDEPOOL_DATABASE_URL, then a SQLite file in the working directory."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def normalise_url(url: str) -> str:
    """Let users write postgresql:// and still get the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _env_int(name: str, default: int) -> int:
    """A non-negative integer setting from the environment; a bad value is an error."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; on SQLite turn on foreign keys, WAL and real transactions.

    pysqlite's own transaction handling does not BEGIN before DDL, which would
    make a migration half-applied on error. We take over: the driver runs in
    autocommit mode and SQLAlchemy's begin() emits BEGIN (the documented recipe,
    "Serializable isolation / Savepoints / Transactional DDL" in the SQLite dialect docs).
    """
    url = normalise_url(url)
    # JSON columns (activity changes, addresses, multi-selects) are encoded and
    # decoded on every bulk insert and list page; orjson does it several times
    # faster than the standard library (bench/bench_records.py).
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    in_memory = ":memory:" in url or "mode=memory" in url or url.rstrip("/") == "sqlite:"
    if not in_memory and "poolclass" not in kwargs:
        # SQLAlchemy's default (5 + 10) made a server with 8 clients open and close
        # connections all the time; one request holds one connection (issue 13).
        kwargs.setdefault("pool_size", _env_int(POOL_SIZE_ENV, DEFAULT_POOL_SIZE))
        kwargs.setdefault("max_overflow", _env_int(MAX_OVERFLOW_ENV, DEFAULT_MAX_OVERFLOW))
    if not url.startswith("sqlite"):
        # Sessions in UTC: instants come back aware in UTC on both databases, so
        # readers need no per-value conversion.
        connect_args = kwargs.pop("connect_args", {})
        options = "-c timezone=UTC"
        timeout = _env_int(STATEMENT_TIMEOUT_ENV, 0)
        if timeout > 0:
            options += f" -c statement_timeout={timeout}"
        connect_args.setdefault("options", options)
        return create_engine(url, connect_args=connect_args, **kwargs)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if ":memory:" not in url and "mode=memory" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writing transaction takes the write lock at once (IMMEDIATE) so two
        # writers queue on busy_timeout instead of one failing with "database is
        # locked" when it upgrades from read to write; readers stay DEFERRED.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


#: Execution option that marks a connection as about to write (see ``write_transaction``).
WRITE_OPTION = "tidepool_write"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for a read-then-write unit of work; commits on success, rolls back on error."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn
