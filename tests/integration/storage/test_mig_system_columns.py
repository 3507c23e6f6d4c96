"""Engine tables that gained columns or appeared after a database was made: ``migrate``
adds them (nullable, nothing else touched), once; settings round-trip. SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from engine.errors import ValidationError
from engine.storage.migrate import apply_migration, init_database
from engine.storage.settings import (
    company_time_zone,
    get_setting,
    server_time_zone,
    set_company_time_zone,
    set_setting,
)
from tests.integration.storage._db import columns, tables
from tests.integration.storage._docs import entity, field, registry

V1 = registry(entity("account", field("name", "text")))


def test_missing_system_columns_and_tables_are_added_once(db_engine: Engine) -> None:
    init_database(db_engine, target=V1, actor="test")
    with db_engine.begin() as conn:  # as a database made by an older engine
        conn.execute(text("ALTER TABLE tp_user DROP COLUMN time_zone"))
        conn.execute(text("DROP TABLE tp_setting"))
    assert "time_zone" not in columns(db_engine, "tp_user")
    with db_engine.connect() as conn:
        assert company_time_zone(conn) == server_time_zone()  # no table yet: no error
    plan = apply_migration(db_engine, target=V1, actor="test")
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["create_system_tables", "add_system_columns"]
    assert "add columns time_zone to system table tp_user" in plan.describe()
    assert "time_zone" in columns(db_engine, "tp_user") and "tp_setting" in tables(db_engine)
    assert apply_migration(db_engine, target=V1, actor="test").is_empty


def test_settings_and_the_company_zone(db_engine: Engine) -> None:
    init_database(db_engine, target=V1, actor="test")
    with db_engine.begin() as conn:
        assert get_setting(conn, "time_zone") is None
        set_company_time_zone(conn, "America/New_York")
        set_setting(conn, "other", "x")
        set_setting(conn, "other", "y")  # replaced, not duplicated
    with db_engine.connect() as conn:
        assert company_time_zone(conn) == "America/New_York"
        assert get_setting(conn, "other") == "y"
    with db_engine.begin() as conn, pytest.raises(ValidationError):
        set_company_time_zone(conn, "Mars/Olympus")
    with db_engine.connect() as conn:
        assert company_time_zone(conn) == "America/New_York"
