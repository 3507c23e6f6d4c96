"""The API's list pages and point reads on the event loop (ui/inline.py): the same
answers and permissions as through a request thread, one statement each, and a read
that cannot stay short (a statement past the budget, a stamp due, a token to check
or touch) finished in a request thread instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from engine.permissions.tokens import revoke_token
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine, write_transaction
from tests.ui.api.conftest import API
from tests.ui.api.test_api_request_path import (  # noqa: F401
    Clock,
    Seeded,
    Statements,
    clocked_runtime,
    seeded,
)
from ui import inline
from ui.api import app as api_app
from ui.api import build_api
from ui.inline import InlineReads


@dataclass
class Server:
    live: LiveRuntime
    client: TestClient
    clock: Clock
    statements: Statements
    inline: InlineReads
    threads: list[str]  # the reads that went to a request thread (their function names)

    def get(self, token: str, path: str) -> Any:
        return self.client.get(API + path, headers={"Authorization": f"Bearer {token}"})


@contextmanager
def server(url: str, monkeypatch: pytest.MonkeyPatch, *, timeout: float = 5.0) -> Iterator[Server]:
    """The API as ``tidepool serve`` builds it: statements bounded, caches on a clock."""
    engine = make_engine(url, statement_timeout=timeout)
    clock = Clock()
    live = clocked_runtime(url, engine, clock)
    threads: list[str] = []
    hop = inline.in_thread

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(func.__name__)
        return await hop(func, *args, **kwargs)

    # Every hop the API makes, whether from the inline path or the endpoint's own.
    monkeypatch.setattr(inline, "in_thread", counted)
    monkeypatch.setattr(api_app, "in_thread", counted)
    api = build_api(live)
    app = Starlette(routes=[Mount(API, app=api)])
    try:
        with TestClient(app, base_url="https://crm.test") as client:
            yield Server(live, client, clock, Statements(engine), api.state.inline, threads)
    finally:
        live.dispose()


def _create(app: Server, token: str, name: str) -> int:
    response = app.client.post(f"{API}/customer", json={"name": name},
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_reads_run_on_the_loop_on_sqlite_only_with_the_same_answers_and_scope(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    with server(seeded.url, monkeypatch) as app:
        on_sqlite = seeded.url.startswith("sqlite")
        assert app.inline.enabled is on_sqlite  # PostgreSQL's statements wait on the network
        rep1, rep3 = seeded.tokens["rep1"], seeded.tokens["rep3"]
        mine = _create(app, rep1, "Mine")
        theirs = _create(app, rep3, "Theirs")
        assert app.get(rep1, "/customer").status_code == 200  # warm: token, policy, plans
        app.threads.clear()
        listed = app.get(rep1, "/customer?limit=50")
        read = app.get(rep1, f"/customer/{mine}")
        assert listed.status_code == 200 and read.status_code == 200, listed.text
        # The row scope holds on the loop: rep1 sees its own record, not rep3's.
        assert [item["id"] for item in listed.json()["items"]] == [mine]
        assert read.json() == listed.json()["items"][0]
        assert read.headers["etag"]
        refused = app.get(rep1, f"/customer/{theirs}")
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert app.get(rep1, "/nothing").status_code == 404
        assert app.get(rep1, "/customer?limit=0").status_code == 400
        assert app.get(rep1 + "x", "/customer").status_code == 401  # unknown: not from memory
        # On SQLite none hopped to a thread but the unknown token's check; on PostgreSQL
        # every read did.
        assert app.threads == ["run"] * (1 if on_sqlite else 6)
        assert app.inline.retries == 0


def test_a_statement_past_the_budget_finishes_in_a_thread(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.ui.api.conftest import seed

    engine, _, _, tokens, _ = seed(sqlite_url)
    engine.dispose()
    # A budget already spent when the statement starts: SQLite's progress handler stops
    # it at its first check (every 10,000 steps), which a search of 1,500 rows reaches.
    monkeypatch.setattr(inline, "INLINE_BUDGET", 1e-9)
    with server(sqlite_url, monkeypatch) as app:
        token = tokens["rep1"]
        live = app.live.current()
        actor = live.policy.actor_for(app.live.credentials.token(token).user.id)  # type: ignore[attr-defined]
        live.records.bulk_create(actor, "customer",
                                 [{"name": f"Shop {n}"} for n in range(1_500)])
        assert app.get(token, "/customer/1").status_code == 200  # warm
        app.threads.clear()
        before = app.inline.retries
        with app.statements.counting() as found:
            response = app.get(token, "/customer?q=Shop%201499&limit=5")
        assert response.status_code == 200, response.text
        assert [item["name"] for item in response.json()["items"]] == ["Shop 1499"]
        assert app.inline.retries == before + 1 and app.threads == ["run"]
        # Stopped on the loop, run again under the full timeout: nothing else ran.
        assert len(found) == 2 and found[0] == found[1]


def test_due_stamps_and_revocations_are_read_in_a_thread(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    with server(seeded.url, monkeypatch) as app:
        token = seeded.tokens["rep1"]
        assert app.get(token, "/customer").status_code == 200
        assert app.get(token, "/customer").status_code == 200
        app.threads.clear()
        # Every stamp due: refused on the loop before any statement, read in a thread,
        # still the page query plus one statement for all the stamps.
        app.clock.now += 5
        with app.statements.counting() as found:
            assert app.get(token, "/customer?limit=50").status_code == 200
        stamps = [s for s in found if "tp_policy_version" in s or "tp_metadata" in s]
        assert len(stamps) == 1 and len(found) == 2, found
        assert app.threads == ["run"]
        # A revoked token: the next read after the stamp interval refuses it.
        with write_transaction(seeded.engine) as conn:
            revoke_token(conn, seeded.token_ids["rep1"])
        assert app.get(token, "/customer").status_code == 200  # within the interval
        app.clock.now += 0.5
        response = app.get(token, "/customer")
        assert response.status_code == 401, response.text
        assert "www-authenticate" in response.headers
