"""Engines for SQLite and PostgreSQL with the settings the engine relies on."""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event

from engine.errors import StatementTimeoutError
from engine.scoped import ScopedValue

DEFAULT_DATABASE_URL = "sqlite:///tidepool.db"
DATABASE_URL_ENV = "TIDEPOOL_DATABASE_URL"
#: Seconds one SQL statement of a served request may run (0 = no bound).
STATEMENT_TIMEOUT_ENV = "TIDEPOOL_STATEMENT_TIMEOUT"
DEFAULT_STATEMENT_TIMEOUT = 30.0
#: SQLite calls the progress handler every this many virtual-machine steps (~0.1 ms).
_PROGRESS_STEPS = 10_000
#: Connections each process keeps open, and how many more it may open under a burst
#: (docs/scaling.md: a PostgreSQL server needs workers x (size + overflow) connections).
POOL_SIZE_ENV = "TIDEPOOL_DB_POOL_SIZE"
MAX_OVERFLOW_ENV = "TIDEPOOL_DB_MAX_OVERFLOW"
DEFAULT_POOL_SIZE = 10
DEFAULT_MAX_OVERFLOW = 20
#: Page cache of each SQLite connection, in MiB. SQLite's default (2 MiB) is smaller
#: than the index pages one bulk batch touches (a new CRM customer goes into the table
#: and 11 indexes, its activity entry into two b-trees more): a 5,000-row batch spilled
#: and re-read pages, and 8-16 MiB took ~2 µs off each row's ~25 µs of SQLite work
#: (bench/RESULTS.md,
#: "Bulk create in process (issue 13, h-bulk, session 5)"). It is a ceiling, filled
#: only by pages a connection reads or writes, so a process holds at most
#: (pool size + overflow) x this; docs/scaling.md says how to size it.
SQLITE_CACHE_ENV = "TIDEPOOL_SQLITE_CACHE_MIB"
DEFAULT_SQLITE_CACHE_MIB = 16


def database_url(explicit: str | None = None) -> str:
    """``--db`` wins, then TIDEPOOL_DATABASE_URL, then a SQLite file in the working directory."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def normalise_url(url: str) -> str:
    """Let users write postgresql:// and still get the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def statement_timeout_setting(explicit: float | None = None) -> float:
    """The server's statement timeout in seconds: ``explicit``, else
    $TIDEPOOL_STATEMENT_TIMEOUT, else ``DEFAULT_STATEMENT_TIMEOUT``; 0 turns it off."""
    if explicit is not None:
        return explicit
    raw = os.environ.get(STATEMENT_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_STATEMENT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{STATEMENT_TIMEOUT_ENV} must be a number of seconds, "
                         f"not {raw!r}") from None
    if not 0 <= value < 86_400:
        raise ValueError(f"{STATEMENT_TIMEOUT_ENV} must be between 0 and 86400 seconds")
    return value


def is_timeout(error: BaseException | None) -> bool:
    """Whether a DBAPI error is the statement timeout firing (either database)."""
    if error is None:
        return False
    if type(error).__name__ == "QueryCanceled":  # psycopg: statement_timeout fired
        return True
    return isinstance(error, sqlite3.OperationalError) and str(error) == "interrupted"


#: A tighter bound than the engine's statement timeout for statements run in this context.
_budget: ContextVar[float | None] = ContextVar("tidepool_statement_budget", default=None)


def statement_budget(seconds: float) -> ScopedValue[float | None]:
    """Within the block, SQLite statements of bounded engines stop after ``seconds``
    (or the engine's own timeout, if shorter) with ``StatementTimeoutError``.

    For work that must not hold its thread long (the API's reads run on the event
    loop, ``ui/inline.py``); the caller catches the error and runs the work again
    under the full timeout. Only SQLite's progress handler honours it: a PostgreSQL
    statement's bound is set per connection, so callers use this on SQLite only
    (``budget_applies``).
    """
    return ScopedValue(_budget, seconds)


def budget_applies(engine: Engine) -> bool:
    """Whether ``statement_budget`` bounds ``engine``'s statements (a bounded SQLite engine)."""
    return engine.dialect.name == "sqlite" and bool(statement_timeout_of(engine))


#: Each bounded engine's statement timeout (seconds), for paths that report it themselves.
_TIMEOUTS: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def statement_timeout_of(engine: Engine) -> float | None:
    """The statement timeout ``make_engine`` gave ``engine`` (None: unbounded)."""
    return _TIMEOUTS.get(engine)


def _bound_statements(engine: Engine, seconds: float, *, sqlite: bool) -> None:
    """Turn a statement that outlives ``seconds`` into ``StatementTimeoutError``.

    PostgreSQL enforces it itself (``statement_timeout``, set per connection);
    SQLite has no such setting, so a progress handler interrupts a statement
    past its deadline (set before each statement, cleared after it).
    """
    _TIMEOUTS[engine] = seconds
    if sqlite:
        @event.listens_for(engine, "connect")
        def _progress(dbapi_connection: Any, record: Any) -> None:
            deadline: list[float | None] = [None]
            record.info["tp_deadline"] = deadline

            def expired() -> int:
                due = deadline[0]
                return 1 if due is not None and time.monotonic() > due else 0

            dbapi_connection.set_progress_handler(expired, _PROGRESS_STEPS)

        @event.listens_for(engine, "before_cursor_execute")
        def _start(conn: Any, *_: Any) -> None:
            deadline = conn.info.get("tp_deadline")
            if deadline is not None:
                budget = _budget.get()
                deadline[0] = time.monotonic() + (
                    seconds if budget is None else min(seconds, budget))

        @event.listens_for(engine, "after_cursor_execute")
        def _stop(conn: Any, *_: Any) -> None:
            deadline = conn.info.get("tp_deadline")
            if deadline is not None:
                deadline[0] = None

    @event.listens_for(engine, "handle_error")
    def _timeout(context: Any) -> None:
        if sqlite:
            deadline = context.connection.info.get("tp_deadline") \
                if context.connection is not None else None
            if deadline is not None:
                deadline[0] = None
        if is_timeout(context.original_exception):
            raise StatementTimeoutError(seconds) from context.original_exception


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


#: None's adapter for the SQLite driver: a C function that returns None for any value.
_NO_VALUE: dict[Any, None] = {}


def bind_nulls_directly() -> None:
    """Let the SQLite driver bind None as NULL without its adapter search.

    The driver (CPython 3.11's ``_sqlite``) binds int, float and str at once but looks
    an adapter up for any other value, None included: a tuple key, a miss in the
    adapter registry, then an ``AttributeError`` for the protocol type, formatted and
    dropped -- ~0.25 µs per NULL, and a bulk-created row binds several (bench/RESULTS.md,
    "Bulk create in process: NULLs bound without the driver's adapter search").
    With None's own adapter registered the search stops at the registry, and the
    adapter (``{}.get``, C) returns None, which is bound as NULL as before. Process-wide
    (the registry is the driver's) and idempotent; the stored value does not change.
    """
    sqlite3.register_adapter(type(None), _NO_VALUE.get)


def make_engine(url: str, *, statement_timeout: float | None = None, **kwargs: Any) -> Engine:
    """Create an engine; on SQLite turn on foreign keys, WAL and real transactions.

    ``statement_timeout`` (seconds; None or 0: none) bounds every statement, so
    that one request cannot hold a connection and the database for minutes:
    the server passes ``statement_timeout_setting()``; the command line (migrations,
    imports, seeding) runs unbounded. A statement past it raises
    ``StatementTimeoutError``.

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
        if statement_timeout:
            options += f" -c statement_timeout={max(int(statement_timeout * 1000), 1)}"
        connect_args.setdefault("options", options)
        pg_engine = create_engine(url, connect_args=connect_args, **kwargs)
        if statement_timeout:
            _bound_statements(pg_engine, statement_timeout, sqlite=False)
        return pg_engine
    engine = create_engine(url, **kwargs)
    if statement_timeout:
        _bound_statements(engine, statement_timeout, sqlite=True)
    bind_nulls_directly()
    cache_kib = _env_int(SQLITE_CACHE_ENV, DEFAULT_SQLITE_CACHE_MIB) * 1024

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if ":memory:" not in url and "mode=memory" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        if cache_kib:  # negative: a size in KiB, not in pages (see SQLITE_CACHE_ENV)
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")  # an int, not input
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
