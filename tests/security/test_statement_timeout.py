"""A statement that outlives the statement timeout is stopped, on both databases, and a
request that ran it gets a clear 503 (never a 500): no request can hold the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.errors import StatementTimeoutError
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import LiveRuntime
from engine.storage.database import (
    DEFAULT_STATEMENT_TIMEOUT,
    STATEMENT_TIMEOUT_ENV,
    make_engine,
    statement_timeout_setting,
    write_transaction,
)
from tests.ui.api.conftest import API, seed
from tests.ui.conftest import SECRET, make_demo, sign_in
from ui.api import build_api
from ui.app import create_app

#: A statement that runs far longer than any timeout used here (minutes), on each database.
SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "WHERE x < 5000000000) SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(600)",
}


@pytest.fixture
def bounded(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, statement_timeout=0.3)
    try:
        yield engine
    finally:
        engine.dispose()


def test_a_long_statement_is_stopped_and_the_connection_stays_usable(bounded: Engine) -> None:
    slow = SLOW[bounded.dialect.name]
    with bounded.connect() as conn:
        with pytest.raises(StatementTimeoutError) as err:
            conn.execute(text(slow))
        assert "longer than 0.3 seconds" in str(err.value)
    for _ in range(3):  # the pool hands the same connection back, healthy
        with bounded.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_stopped_statement_writes_nothing(bounded: Engine) -> None:
    with bounded.connect() as conn:
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        conn.commit()
    with pytest.raises(StatementTimeoutError), write_transaction(bounded) as conn:
        conn.execute(text("INSERT INTO probe VALUES (1)"))
        conn.execute(text(SLOW[bounded.dialect.name]))
    with bounded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM probe")).scalar() == 0


def test_without_a_timeout_statements_are_unbounded(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            if engine.dialect.name == "postgresql":
                assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
    finally:
        engine.dispose()


def test_the_postgresql_setting_is_per_connection(pg_url: str) -> None:
    engine = make_engine(pg_url, statement_timeout=2.5)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "2500ms"
    finally:
        engine.dispose()


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STATEMENT_TIMEOUT_ENV, raising=False)
    assert statement_timeout_setting() == DEFAULT_STATEMENT_TIMEOUT
    monkeypatch.setenv(STATEMENT_TIMEOUT_ENV, "12.5")
    assert statement_timeout_setting() == 12.5
    assert statement_timeout_setting(3.0) == 3.0
    monkeypatch.setenv(STATEMENT_TIMEOUT_ENV, "0")
    assert statement_timeout_setting() == 0
    for bad in ("soon", "-1", "1e9"):
        monkeypatch.setenv(STATEMENT_TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=STATEMENT_TIMEOUT_ENV):
            statement_timeout_setting()


def test_a_request_whose_statement_is_stopped_gets_503(sqlite_url: str) -> None:
    # A timeout of a microsecond stops every statement that runs long enough for SQLite to
    # call its progress handler (10,000 steps): token checks pass, a search over rows does not.
    engine, _, _, tokens, _ = seed(sqlite_url)
    live = LiveRuntime(sqlite_url, engine=engine, policy_factory=CasbinAccessPolicy,
                       check_interval=3600)
    live.current().records.bulk_create(Actor.system("test"), "customer",
                                       [{"name": f"Row {i}"} for i in range(3000)])
    slow_engine = make_engine(sqlite_url, statement_timeout=1e-6)
    slow_live = LiveRuntime(sqlite_url, engine=slow_engine, policy_factory=CasbinAccessPolicy,
                            check_interval=3600)
    app = Starlette(routes=[Mount(API, app=build_api(slow_live))])
    try:
        with TestClient(app) as client:
            response = client.get(f"{API}/customer?q=nothing-matches",
                                  headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert response.status_code == 503, response.text
        assert response.json()["type"] == "urn:tidepool:problem:statement-timeout"
        assert "narrow the filter" in response.json()["detail"]
        assert "SELECT" not in response.text and "Traceback" not in response.text
    finally:
        slow_live.dispose()
        live.dispose()


def test_the_screens_show_a_503_page(tmp_path: Path) -> None:
    demo = make_demo(tmp_path)
    demo.live.current().records.bulk_create(Actor.system("test"), "customer",
                                            [{"name": f"Row {i}"} for i in range(3000)])
    slow_live = LiveRuntime(demo.url, engine=make_engine(demo.url, statement_timeout=1e-6),
                            policy_factory=CasbinAccessPolicy, check_interval=3600)
    app = create_app(slow_live, secret_key=SECRET)
    try:
        with TestClient(app) as client:
            sign_in(client, "admin")
            response = client.get("/e/customer?q=nothing-matches")
        assert response.status_code == 503
        assert "took too long" in response.text and "SELECT" not in response.text
    finally:
        slow_live.dispose()
        demo.live.dispose()
