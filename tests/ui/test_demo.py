"""The demo database: sample rows, people of every role, idempotent preparation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine.actor import Actor
from engine.demo import prepare_demo, reference_order
from engine.metadata.loader import load_packages
from engine.runtime import NotInitialisedError, open_runtime
from tests.conftest import REPO_ROOT

CRM = REPO_ROOT / "apps" / "crm"


def test_reference_order_puts_targets_first() -> None:
    registry = load_packages([CRM])
    order = reference_order(registry)
    assert sorted(order) == sorted(registry.entities)
    for name, entity in registry.entities.items():
        for f in entity.fields:
            if f.target and f.target != name:
                assert order.index(f.target) < order.index(name), (name, f.name)


def test_demo_is_idempotent_and_reset_starts_over(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    out = io.StringIO()
    prepare_demo(url, apps=[CRM], out=out, rows=5)
    assert "initialised" in out.getvalue()
    again = io.StringIO()
    prepare_demo(url, apps=[CRM], out=again, rows=5)
    assert "sample" not in again.getvalue()  # rows are kept, not doubled
    runtime = open_runtime(url)
    assert runtime.records.count(Actor.system(), "customer") == 5
    runtime.engine.dispose()
    reset = io.StringIO()
    prepare_demo(url, apps=[CRM], out=reset, rows=3, reset=True)
    runtime = open_runtime(url)
    assert runtime.records.count(Actor.system(), "customer") == 3
    runtime.engine.dispose()


def test_reset_refuses_a_server_database() -> None:
    from engine.errors import TidepoolError

    with pytest.raises(TidepoolError, match="only removes a SQLite"):
        prepare_demo("postgresql+psycopg://x@127.0.0.1:1/none", apps=[CRM], reset=True,
                     out=io.StringIO())


def test_open_runtime_on_an_empty_database_says_to_init(tmp_path: Path) -> None:
    with pytest.raises(NotInitialisedError, match="tidepool init"):
        open_runtime(f"sqlite:///{tmp_path / 'empty.db'}")




def test_demo_has_an_org_tree_and_a_user_per_role_owning_the_rows(tmp_path: Path) -> None:
    from engine.demo import DEMO_USERS
    from engine.permissions.identity import find_user
    from engine.permissions.policy_store import bindings_of

    url = f"sqlite:///{tmp_path / 'd.db'}"
    out = io.StringIO()
    prepare_demo(url, apps=[CRM], out=out, rows=10)
    assert "password: tidepool-demo" in out.getvalue()
    runtime = open_runtime(url)
    with runtime.engine.connect() as conn:
        users = {login: find_user(conn, login) for login, *_ in DEMO_USERS}
        roles = {login: bindings_of(conn, u.id) for login, u in users.items() if u}
    assert roles["admin"] == [("admin", "org")]
    assert roles["rep_east1"] == [("rep", "org")]
    assert {r for rs in roles.values() for r, _ in rs} == {"admin", "manager", "supervisor", "rep"}
    reps = {users[n].id for n in ("rep_east1", "rep_east2", "rep_west1")}  # type: ignore[union-attr]
    rows = runtime.records.list(Actor.system(), "customer").rows
    owners = {r["owner_id"] for r in rows}
    assert owners <= reps | {None} and owners & reps
    assert any(r["owner_id"] is None and r["pool_id"] == "customer_pool" for r in rows)
    runtime.engine.dispose()
