"""Hot reads straight on a pooled DBAPI cursor (engine/storage/direct.py), on both databases:
the same rows and values as ``Connection.execute``, the statement seen by cursor listeners,
timeouts and errors raised as through SQLAlchemy, and the pooled connection left as it was."""

from __future__ import annotations

import datetime as dt
import gc
import threading
import weakref
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from engine.errors import StatementTimeoutError
from engine.storage import direct
from engine.storage.database import make_engine
from engine.storage.direct import direct_rows, direct_values, through_connection
from engine.storage.system_tables import InstantType

META = MetaData()
THINGS = Table(
    "things", META,
    Column("id", BigInteger, primary_key=True),
    Column("name", String(50)),
    Column("amount", Numeric(12, 2)),
    Column("day", Date),
    Column("at", InstantType),
    Column("doc", JSON),
    Column("flag", Boolean),
)
AT = dt.datetime(2026, 11, 30, 8, 15, tzinfo=dt.UTC)


@pytest.fixture
def things(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, statement_timeout=0.3)
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(THINGS), [
            {"id": 1, "name": "one", "amount": Decimal("12.50"), "day": dt.date(2027, 1, 31),
             "at": AT, "doc": {"tags": ["vip"], "n": 1}, "flag": True},
            {"id": 2, "name": "two", "amount": None, "day": None, "at": None, "doc": None,
             "flag": False},
            {"id": 3, "name": "three", "amount": Decimal("0.01"), "day": dt.date(2026, 2, 1),
             "at": AT + dt.timedelta(hours=1), "doc": [1, 2], "flag": None},
        ])
    try:
        yield engine
    finally:
        engine.dispose()


def _both(engine: Engine, stmt: Any, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    direct = direct_rows(engine, stmt, params)
    with through_connection():
        through = direct_rows(engine, stmt, params)
    return direct, through


def test_rows_and_values_are_those_of_connection_execute(things: Engine) -> None:
    stmt = select(THINGS).where(THINGS.c.at < bindparam("before")).order_by(THINGS.c.id)
    for before in (AT + dt.timedelta(hours=2), AT + dt.timedelta(minutes=1)):
        direct, through = _both(things, stmt, {"before": before})  # a bound instant
        assert direct == through and direct
        with things.connect() as conn:
            assert direct == [tuple(r) for r in conn.execute(stmt, {"before": before}).all()]
    first = direct_rows(things, select(THINGS).order_by(THINGS.c.id), {})[0]
    assert first == (1, "one", Decimal("12.50"), dt.date(2027, 1, 31), AT,
                     {"tags": ["vip"], "n": 1}, True)
    assert first[4].tzinfo is not None  # instants come back aware, in UTC


def test_cursor_listeners_see_the_statement_and_no_transaction(things: Engine) -> None:
    seen: list[str] = []

    def grab(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    stmt = select(THINGS.c.name).where(THINGS.c.id == bindparam("id"))
    direct_rows(things, stmt, {"id": 1})  # compiled and cached before counting
    event.listen(things, "before_cursor_execute", grab)
    try:
        assert direct_rows(things, stmt, {"id": 3}) == [("three",)]
    finally:
        event.remove(things, "before_cursor_execute", grab)
    # One statement; no BEGIN / ROLLBACK around it (it is atomic by itself).
    assert len(seen) == 1 and "things" in seen[0], seen


def test_expanding_parameters_take_sqlalchemys_path(things: Engine) -> None:
    stmt = select(THINGS.c.id).where(THINGS.c.id.in_(bindparam("ids", expanding=True))) \
        .order_by(THINGS.c.id)
    assert direct_rows(things, stmt, {"ids": [1, 3]}) == [(1,), (3,)]
    assert direct_rows(things, stmt, {"ids": [2]}) == [(2,)]


def test_fixed_parameters_are_made_once_and_computed_binds_every_time(
        things: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement whose values are all in it (an instant through its bind processor
    included) sends the same parameters on every call without any of the call's own; a
    bind computed at execution (``callable_``) is computed on every call."""
    fixed = select(THINGS.c.id).where(THINGS.c.at < AT + dt.timedelta(minutes=30),
                                      THINGS.c.name != "x").order_by(THINGS.c.id)
    assert _both(things, fixed, {}) == ([(1,)], [(1,)])
    built = []
    real = direct.SQLCompiler.construct_params

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(direct.SQLCompiler, "construct_params", counted)
    for _ in range(3):
        assert direct_rows(things, fixed, {}) == [(1,)]
    positional = things.dialect.paramstyle in ("qmark", "numeric", "format")
    assert len(built) == (0 if positional else 3)  # made once (before counting) on SQLite
    # With the call's own parameters: built for that call, as before.
    assert direct_rows(things, select(THINGS.c.id).where(THINGS.c.id == bindparam("id"))
                       .where(THINGS.c.name != "x"), {"id": 3}) == [(3,)]
    limit = [AT + dt.timedelta(minutes=30)]
    computed = select(THINGS.c.id).where(
        THINGS.c.at < bindparam("before", callable_=lambda: limit[0], type_=InstantType)
    ).order_by(THINGS.c.id)
    assert direct_rows(things, computed, {}) == [(1,)]
    limit[0] = AT + dt.timedelta(hours=2)
    assert direct_rows(things, computed, {}) == [(1,), (3,)]


class _NameShape:
    """A row as ``{"id": ..., "name": ...}`` (``engine.records._plan.RowShape``'s protocol)."""

    def source(self, column: Any) -> str:
        return f"'id': {column(0)}, 'name': {column(1)}"


def test_an_expanding_statement_is_compiled_once_across_calls(
        things: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # A department scope's ``owner.in_(listed)`` on a page statement reused across pages:
    # the "not direct" answer and the row shape's function are remembered, not redone.
    stmt = select(THINGS.c.id, THINGS.c.name) \
        .where(THINGS.c.id.in_(bindparam("ids", expanding=True))).order_by(THINGS.c.id)
    compiles: list[Any] = []  # each one compiled here (SQLAlchemy's path has its own cache)

    class Counted(direct._Compiled):
        def __init__(self, statement: Any, *args: Any, **kw: Any) -> None:
            if statement is stmt:
                compiles.append(statement)
            super().__init__(statement, *args, **kw)

    shapes: list[str] = []
    real_shape = direct._compile

    def counted_shape(source: str, namespace: dict[str, Any]) -> Any:
        shapes.append(source)
        return real_shape(source, namespace)

    monkeypatch.setattr(direct, "_Compiled", Counted)
    monkeypatch.setattr(direct, "_compile", counted_shape)
    shape = _NameShape()
    for _ in range(2):
        assert direct_rows(things, stmt, {"ids": [1, 3]}) == [(1, "one"), (3, "three")]
        assert direct_values(things, stmt, {"ids": [2, 3]}, shape) == [
            {"id": 2, "name": "two"}, {"id": 3, "name": "three"}]
    assert len(compiles) == 1 and len(shapes) == 1, (compiles, shapes)
    with through_connection():  # the same values on SQLAlchemy's own path
        assert direct_values(things, stmt, {"ids": [1]}, shape) == [{"id": 1, "name": "one"}]
    assert len(compiles) == 1 and len(shapes) == 1


def _left_clean(engine: Engine) -> None:
    """Every pooled connection works and (PostgreSQL) is back out of autocommit."""
    for _ in range(3):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            if engine.dialect.name == "postgresql":
                assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
    assert direct_rows(engine, select(func.count()).select_from(THINGS), {}) == [(3,)]


def test_a_statement_past_the_timeout_is_stopped(things: Engine) -> None:
    if things.dialect.name == "postgresql":
        slow = select(func.pg_sleep(600))
    else:
        slow = select(func.count()).select_from(text(
            "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 5000000000) SELECT x FROM c)"))
    with pytest.raises(StatementTimeoutError) as err:
        direct_rows(things, slow, {})
    assert "longer than 0.3 seconds" in str(err.value)
    _left_clean(things)


def test_a_database_error_is_sqlalchemys_and_leaves_the_pool_clean(things: Engine) -> None:
    missing = Table("no_such_table", MetaData(), Column("id", BigInteger))
    with pytest.raises(DBAPIError):
        direct_rows(things, select(missing.c.id), {})
    _left_clean(things)


def test_a_dropped_engine_is_not_kept_by_the_readers(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url, statement_timeout=1.0)
    assert direct_rows(engine, select(func.abs(-2)), {}) == [(2,)]
    gone = weakref.ref(engine)
    engine.dispose()
    del engine
    gc.collect()
    assert gone() is None  # its pool (and connections) go with it


def test_a_kept_connection_serves_one_thread_and_is_given_back_after_an_error(
        sqlite_url: str) -> None:
    """``kept_connection`` (the API's reads on SQLite's event loop): one pooled connection
    stays with the thread between reads, without a transaction; an error gives it back,
    and a disposed pool's connection is not reused."""
    engine = make_engine(sqlite_url, statement_timeout=0.3)
    META.create_all(engine)
    one = select(func.abs(-2))
    seen: list[Any] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, *_: seen.append(conn.dbapi_connection))
    try:
        with direct.kept_connection():
            assert direct_rows(engine, one, {}) == [(2,)]
            assert direct_rows(engine, one, {}) == [(2,)]
            assert seen[0] is seen[1] and engine.pool.checkedout() == 1  # type: ignore[attr-defined]
            assert not seen[0].in_transaction
            with pytest.raises(DBAPIError):
                direct_rows(engine, select(Table("nothing", MetaData(),
                                                 Column("id", BigInteger)).c.id), {})
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            assert direct_rows(engine, one, {}) == [(2,)]
            engine.dispose()
            assert direct_rows(engine, one, {}) == [(2,)]
            assert seen[-1] is not seen[-2]  # a connection of the new pool
        assert direct_rows(engine, one, {}) == [(2,)]  # outside: checked out and back
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]  # still kept
    finally:
        engine.dispose()


def test_release_kept_gives_back_every_threads_kept_connection(sqlite_url: str) -> None:
    """At shutdown ``release_kept`` (called from any thread) gives back the connections
    live threads keep between reads; a thread's next kept read takes a fresh one."""
    engine = make_engine(sqlite_url, statement_timeout=0.3)
    one = select(func.abs(-2))
    read_again, stop = threading.Event(), threading.Event()
    reads = threading.Semaphore(0)

    def reader() -> None:
        with direct.kept_connection():
            assert direct_rows(engine, one, {}) == [(2,)]
            reads.release()
            read_again.wait(10)
            assert direct_rows(engine, one, {}) == [(2,)]
            reads.release()
            stop.wait(10)  # alive, so its kept connection is not the collector's to find

    threads = [threading.Thread(target=reader) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for _ in threads:
            assert reads.acquire(timeout=10)
        assert engine.pool.checkedout() == 2  # type: ignore[attr-defined]  # one per thread
        assert direct.release_kept(engine) == 2
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert direct.release_kept(engine) == 0  # nothing kept twice
        read_again.set()
        for _ in threads:
            assert reads.acquire(timeout=10)
        assert engine.pool.checkedout() == 2  # type: ignore[attr-defined]  # fresh ones
        assert direct.release_kept(engine) == 2
    finally:
        read_again.set()
        stop.set()
        for t in threads:
            t.join()
        engine.dispose()
    assert direct.release_kept(make_engine(sqlite_url)) == 0  # an engine never read


def test_inlined_processors_read_as_their_functions(sqlite_url: str) -> None:
    """The instant and JSON processors written into the converters (``inline``) give what
    the processors themselves give through ``Connection.execute``: None, text, numbers."""
    from engine.storage.system_tables import JsonType

    docs = Table("docs", MetaData(), Column("id", BigInteger, primary_key=True),
                 Column("at", InstantType), Column("doc", JsonType))
    engine = make_engine(sqlite_url)
    try:
        docs.create(engine)
        with engine.begin() as conn:
            conn.execute(insert(docs), [{"id": 1, "at": AT, "doc": {"a": [1, "二"]}},
                                        {"id": 2, "at": None, "doc": None}])
            conn.execute(text("INSERT INTO docs (id, at, doc) VALUES (3, NULL, 7)"))
        read, through = _both(engine, select(docs).order_by(docs.c.id), {})
        assert read == through == [(1, AT, {"a": [1, "二"]}), (2, None, None), (3, None, 7)]
        compiled = direct._reader(engine)._cache.values()  # type: ignore[attr-defined]
        assert any("_loads2" in c.convert.__code__.co_names for c in compiled if c.convert)
    finally:
        engine.dispose()


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/Los_Angeles", "UTC"])
def test_instants_in_any_zone_are_stored_and_compared_as_the_same_instant(
        things: Engine, zone: str) -> None:
    """An aware value in another zone (midnight in a pool's zone, say) is the instant it
    names on both databases: SQLite's own processor kept its wall time as if it were
    UTC, hours off, so a "since local midnight" filter missed the claims of the
    morning (in Shanghai, 00:00-08:00 local)."""
    local = AT.astimezone(ZoneInfo(zone))
    with things.begin() as conn:
        conn.execute(insert(THINGS), [{"id": 4, "name": "four", "at": local}])
        stored = conn.execute(select(THINGS.c.at).where(THINGS.c.id == 4)).scalar_one()
        assert stored == AT and stored.utcoffset() == dt.timedelta(0)
        # Compared as the same instant: just before it finds both rows at AT, just after none.
        since = (AT - dt.timedelta(seconds=1)).astimezone(ZoneInfo(zone))
        found = conn.execute(select(THINGS.c.id).where(THINGS.c.at >= since,
                                                       THINGS.c.at <= AT)).scalars().all()
        assert sorted(found) == [1, 4]
        later = (AT + dt.timedelta(seconds=1)).astimezone(ZoneInfo(zone))
        assert conn.execute(select(THINGS.c.id).where(
            THINGS.c.at >= later, THINGS.c.at < AT + dt.timedelta(minutes=1))).all() == []
