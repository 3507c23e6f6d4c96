"""The lean request path (issue 13): statements per request, the credential cache, and a
revocation seen by every app instance sharing the database within the stamp interval."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, event
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from engine.permissions.credentials import CredentialCache
from engine.permissions.identity import deactivate_user, set_password
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.tokens import revoke_token
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine, write_transaction
from tests.ui.api.conftest import API, seed
from ui.api import build_api

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Statements:
    """Every SQL statement an engine runs (transaction control left out)."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[str] = []
        self.control: list[str] = []  # BEGIN, COMMIT, ... as SQLAlchemy sends them
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(_CONTROL):
            self.seen.append(statement)
        else:
            self.control.append(statement)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        start = len(self.seen)
        found: list[str] = []
        yield found
        found.extend(self.seen[start:])


@dataclass
class Instance:
    """One app instance (as one worker process has): its own engine, caches and clock."""

    live: LiveRuntime
    client: TestClient
    clock: Clock
    statements: Statements

    def get(self, token: str, path: str) -> Any:
        return self.client.get(API + path, headers={"Authorization": f"Bearer {token}"})


def clocked_runtime(url: str, engine: Engine, clock: Clock) -> LiveRuntime:
    """A runtime whose registry, credential and policy caches all read ``clock``
    (moved by hand) for when their version stamps are due."""
    live = LiveRuntime(url, engine=engine, policy_factory=CasbinAccessPolicy,
                       check_interval=1.0, monotonic=clock)
    live.credentials = CredentialCache(engine, check_interval=0.5, monotonic=clock)
    policy = live.current().policy
    assert isinstance(policy, CasbinAccessPolicy)
    policy.cache.check_interval = 1.0
    policy.cache._monotonic = clock
    return live


@contextmanager
def instance(url: str) -> Iterator[Instance]:
    engine = make_engine(url)
    clock = Clock()
    live = clocked_runtime(url, engine, clock)
    statements = Statements(engine)
    app = Starlette(routes=[Mount(API, app=build_api(live))])
    try:
        with TestClient(app, base_url="https://crm.test") as client:
            yield Instance(live, client, clock, statements)
    finally:
        live.dispose()


@dataclass
class Seeded:
    url: str
    engine: Engine
    users: dict[str, int]
    tokens: dict[str, str]
    token_ids: dict[str, int]


@pytest.fixture
def seeded(db_url: str) -> Iterator[Seeded]:
    engine, _, users, tokens, token_ids = seed(db_url)
    try:
        yield Seeded(db_url, engine, users, tokens, token_ids)
    finally:
        engine.dispose()


def test_a_list_page_and_a_point_read_are_one_statement_each(seeded: Seeded) -> None:
    with instance(seeded.url) as app:
        token = seeded.tokens["rep1"]
        created = app.client.post(f"{API}/customer", json={"name": "Counted"},
                                  headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
        record_id = created.json()["id"]
        assert app.get(token, "/customer").status_code == 200  # warm: token, policy, plans
        for path in ("/customer?limit=50", f"/customer/{record_id}"):
            control = len(app.statements.control)
            with app.statements.counting() as found:
                response = app.get(token, path)
            assert response.status_code == 200, response.text
            # The page (or row) query alone: no token check, no stamp, no session work.
            assert len(found) == 1, found
            assert "customer" in found[0]
            # ... run on its own, without a transaction around one statement
            # (engine/storage/direct.py): no BEGIN / ROLLBACK on SQLite.
            assert app.statements.control[control:] == []
        # When every stamp is due, the request reads them besides its own query:
        # still the page query plus at most one statement per kind of cached state.
        app.clock.now += 5
        with app.statements.counting() as found:
            assert app.get(token, "/customer?limit=50").status_code == 200
        stamps = [s for s in found if "tp_policy_version" in s or "tp_metadata" in s]
        assert len(found) - len(stamps) == 1, found


def test_no_session_cookie_on_api_responses(seeded: Seeded) -> None:
    from ui.app import create_app

    live = LiveRuntime(seeded.url, policy_factory=CasbinAccessPolicy)
    app = create_app(live, secret_key=b"k" * 32, screen_modules=["ui.auth"])
    try:
        with TestClient(app, base_url="https://crm.test") as client:
            api = client.get(f"{API}/customer",
                             headers={"Authorization": f"Bearer {seeded.tokens['rep1']}"})
            assert api.status_code == 200
            assert "set-cookie" not in api.headers
            assert "tp_session" not in client.cookies
            # Screens still get their session (the sign-in form carries a CSRF token).
            assert "tp_session=" in client.get("/login").headers["set-cookie"]
    finally:
        live.dispose()


def test_cached_tokens_cost_no_database_work(seeded: Seeded) -> None:
    with instance(seeded.url) as app:
        token = seeded.tokens["rep1"]
        assert app.get(token, "/customer").status_code == 200
        misses = app.live.credentials.misses
        for _ in range(5):
            assert app.get(token, "/customer").status_code == 200
        assert app.live.credentials.misses == misses
        # Unknown tokens are never cached: each one is looked up (and refused).
        for _ in range(2):
            assert app.get(token + "x", "/customer").status_code == 401
        assert app.live.credentials.misses == misses + 2


@pytest.mark.parametrize("change", ["revoke", "deactivate", "password"])
def test_a_revocation_holds_in_every_instance_within_the_stamp_interval(
        seeded: Seeded, change: str) -> None:
    with instance(seeded.url) as one, instance(seeded.url) as two:
        token = seeded.tokens["rep1"]
        for app in (one, two):  # both instances have checked and cached the token
            assert app.get(token, "/customer").status_code == 200
            assert app.get(token, "/customer").status_code == 200
        # The change is made through a third connection, as an admin's process would.
        with write_transaction(seeded.engine) as conn:
            if change == "revoke":
                revoke_token(conn, seeded.token_ids["rep1"])
            elif change == "deactivate":
                deactivate_user(conn, seeded.users["rep1"])
            else:
                set_password(conn, seeded.users["rep1"], "a new password 123")
        for app in (one, two):
            app.clock.now += 0.5  # the credentials stamp interval: at most this long
            response = app.get(token, "/customer")
            # A password change revokes the user's tokens too (whoever knew the old
            # password may have made them): every change ends the token everywhere.
            assert response.status_code == 401, response.text
        # Other users' tokens keep working.
        assert one.get(seeded.tokens["rep2"], "/customer").status_code == 200


def test_an_expiring_token_stops_on_time_from_the_cache(seeded: Seeded) -> None:
    import datetime as dt

    from engine.permissions.tokens import create_token

    with write_transaction(seeded.engine) as conn:
        _, token = create_token(conn, seeded.users["rep2"], name="short",
                                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    with instance(seeded.url) as app:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        assert app.get(token, "/customer").status_code == 200
        app.live.credentials._clock = lambda: later  # time passes; no stamp moves
        body = app.get(token, "/customer")
        assert body.status_code == 401
        assert "expired" in body.json()["detail"]
