"""Every new SQLite connection gets the engine's settings, the page cache among them
(engine/storage/database.py): a pooled connection opened later must not fall back
to SQLite's 2 MiB default, and a bad setting is refused when the engine is made."""

from __future__ import annotations

import pytest

from engine.storage.database import DEFAULT_SQLITE_CACHE_MIB, SQLITE_CACHE_ENV, make_engine


def _settings(conn: object) -> tuple[int, int, int]:
    cursor = conn.cursor()  # type: ignore[attr-defined]
    found = tuple(cursor.execute(f"PRAGMA {name}").fetchone()[0]
                  for name in ("cache_size", "foreign_keys", "busy_timeout"))
    cursor.close()
    return found  # type: ignore[return-value]


def test_every_pooled_connection_has_the_page_cache(sqlite_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SQLITE_CACHE_ENV, raising=False)
    engine = make_engine(sqlite_url)
    try:
        held = [engine.raw_connection() for _ in range(3)]  # three distinct connections
        assert {_settings(c) for c in held} == {(-DEFAULT_SQLITE_CACHE_MIB * 1024, 1, 10000)}
        for c in held:
            c.close()
    finally:
        engine.dispose()


def test_the_page_cache_follows_the_environment(sqlite_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SQLITE_CACHE_ENV, "3")
    engine = make_engine(sqlite_url)
    try:
        conn = engine.raw_connection()
        assert _settings(conn)[0] == -3 * 1024
        conn.close()
    finally:
        engine.dispose()
    monkeypatch.setenv(SQLITE_CACHE_ENV, "0")  # 0: SQLite's own default
    engine = make_engine(sqlite_url)
    try:
        conn = engine.raw_connection()
        assert _settings(conn)[0] == -2000
        conn.close()
    finally:
        engine.dispose()
    monkeypatch.setenv(SQLITE_CACHE_ENV, "lots")
    with pytest.raises(ValueError, match=SQLITE_CACHE_ENV):
        make_engine(sqlite_url)


def test_none_is_bound_as_null_through_its_own_adapter(sqlite_url: str) -> None:
    """A SQLite engine registers None's adapter (the driver's adapter search cost
    ~0.25 µs per NULL); a None parameter is still stored as SQL NULL, next to values
    of every other kind."""
    import sqlite3

    engine = make_engine(sqlite_url)
    try:
        adapter = sqlite3.adapters.get((type(None), sqlite3.PrepareProtocol))
        assert adapter is not None and adapter(None) is None
        conn = engine.raw_connection()
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE nulls (a, b, c)")
        cursor.executemany("INSERT INTO nulls VALUES (?, ?, ?)",
                           [(None, 1, "x"), (2.5, None, None), (None, None, b"\x00")])
        assert cursor.execute("SELECT typeof(a), typeof(b), typeof(c) FROM nulls").fetchall() \
            == [("null", "integer", "text"), ("real", "null", "null"),
                ("null", "null", "blob")]
        assert cursor.execute("SELECT count(*) FROM nulls WHERE a IS NULL").fetchone() == (2,)
        cursor.close()
        conn.close()
    finally:
        engine.dispose()
