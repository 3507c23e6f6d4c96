"""API tokens and permissions through the API: 401 with a challenge for every bad token,
no cookies, IDOR answered with 404, forbidden actions with 403, hidden fields nowhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from engine.permissions import _tables as t
from engine.permissions.tokens import revoke_token
from engine.storage.database import write_transaction
from tests.ui.api.conftest import API, World

PROBLEM = "application/problem+json"


def _status(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _unauthorised(response: Any, error: str | None) -> dict[str, Any]:
    body = _status(response, 401)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="tidepool"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
    return body


@pytest.mark.parametrize("path", ["/customer", "/customer/1", "/no_such_entity",
                                  "/openapi.json", "/customer/1/activity"])
def test_no_token_is_401_before_anything_else(sqlite_world: World, path: str) -> None:
    _unauthorised(sqlite_world.client.get(API + path), None)


def test_bad_tokens_are_401_with_a_challenge(sqlite_world: World) -> None:
    world = sqlite_world
    client = world.client
    _unauthorised(client.get(f"{API}/customer", headers={"Authorization": "Basic YTpi"}),
                  "invalid_request")
    _unauthorised(client.get(f"{API}/customer", headers={"Authorization": "Bearer"}),
                  "invalid_request")
    for token in ("tpk_not-a-real-token", "garbage", world.tokens["admin"] + "x"):
        _unauthorised(client.get(f"{API}/customer",
                                 headers={"Authorization": f"Bearer {token}"}), "invalid_token")
    # The scheme is case-insensitive (RFC 9110); the token itself is not.
    ok = client.get(f"{API}/customer",
                    headers={"Authorization": f"bearer {world.tokens['admin']}"})
    assert ok.status_code == 200


def test_revoked_expired_and_deactivated_tokens_are_refused(world: World) -> None:
    assert world.get("rep1", "/customer").status_code == 200
    with write_transaction(world.engine) as conn:
        revoke_token(conn, world.token_ids["rep1"])
    body = _unauthorised(world.get("rep1", "/customer"), "invalid_token")
    assert "revoked" in body["detail"]

    assert world.get("rep2", "/customer").status_code == 200
    with write_transaction(world.engine) as conn:  # time passes: the token's end is behind us
        conn.execute(update(t.api_token).where(t.api_token.c.id == world.token_ids["rep2"])
                     .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert "expired" in _unauthorised(world.get("rep2", "/customer"), "invalid_token")["detail"]

    # "gone" was an admin: a deactivated account's token opens nothing.
    body = _unauthorised(world.get("gone", "/customer"), "invalid_token")
    assert "deactivated" in body["detail"]
    _unauthorised(world.post("gone", "/customer", {"name": "Sneaky"}), "invalid_token")
    assert world.get("admin", "/customer").json()["items"] == []


def test_cookies_are_not_credentials(sqlite_world: World) -> None:
    world = sqlite_world
    world.client.cookies.set("session", world.tokens["admin"])
    try:
        _unauthorised(world.client.get(f"{API}/customer"), None)
        _unauthorised(world.client.post(f"{API}/customer", json={"name": "CSRF"}), None)
    finally:
        world.client.cookies.clear()
    assert world.get("admin", "/customer").json()["items"] == []


def test_a_user_without_roles_is_forbidden(sqlite_world: World) -> None:
    world = sqlite_world
    _status(world.get("idle", "/customer"), 403)
    _status(world.post("idle", "/customer", {"name": "Nope"}), 403)
    assert world.get("admin", "/customer").json()["items"] == []


def test_another_reps_private_record_is_404_for_every_verb(world: World) -> None:
    private = world.create("rep1", "customer", {"name": "Rep One's", "employees": 3})
    path = f"/customer/{private['id']}"
    _status(world.get("rep2", path), 404)
    _status(world.get("rep2", path, params={"include_deleted": "true"}), 404)
    _status(world.get("rep2", f"{path}/activity"), 404)
    _status(world.patch("rep2", path, {"version": 1, "employees": 99}), 404)
    _status(world.patch("rep2", path, {"employees": 99}, headers={"If-Match": '"1"'}), 404)
    assert world.get("rep2", "/customer").json()["items"] == []
    assert world.get("rep2", "/customer", params={"filter[id]": str(private["id"])}) \
        .json()["items"] == []
    # The same 404 whether the record exists or not: ids cannot be probed.
    missing = world.get("rep2", "/customer/999999").json()
    assert _status(world.get("rep2", path), 404)["detail"] == \
        missing["detail"].replace("999999", str(private["id"]))
    # Deleting: a supervisor of another department cannot see it either.
    theirs = world.create("rep3", "customer", {"name": "West's"})
    _status(world.delete("sup_east", f"/customer/{theirs['id']}"), 404)
    _status(world.post("sup_east", f"/customer/{theirs['id']}/restore"), 404)
    # ... while the supervisor of rep1's department may.
    assert world.get("sup_east", path).status_code == 200
    unchanged = world.get("rep1", path).json()
    assert unchanged["version"] == 1 and unchanged["employees"] == 3
    assert world.get("rep3", f"/customer/{theirs['id']}").json()["deleted_at"] is None


def test_visible_but_forbidden_actions_are_403(world: World) -> None:
    mine = world.create("rep1", "customer", {"name": "Mine"})
    # The role grants no delete on the entity at all.
    _status(world.delete("rep1", f"/customer/{mine['id']}"), 403)
    # A pool record is readable by pool members, not updatable (update is "own" only).
    pooled = world.create("admin", "customer", {"name": "In the pool"})
    world.put_in_pool("customer", pooled["id"], "customer_pool")
    seen = world.get("rep1", f"/customer/{pooled['id']}")
    assert seen.status_code == 200 and seen.json()["pool_id"] == "customer_pool"
    refused = world.patch("rep1", f"/customer/{pooled['id']}", {"version": 2, "employees": 1})
    assert "outside what you may update" in _status(refused, 403)["detail"]
    # A manager reads the feed entries of the subtree but may not change them.
    note = world.create("rep1", "follow_up", {"kind": "visit", "content": "site visit",
                                              "happened_at": "2026-03-02T10:00:00Z"})
    assert world.get("boss", f"/follow_up/{note['id']}").status_code == 200
    _status(world.patch("boss", f"/follow_up/{note['id']}", {"version": 1, "content": "x"}), 403)
    assert world.get("admin", f"/customer/{mine['id']}").json()["deleted_at"] is None
    assert world.get("admin", f"/follow_up/{note['id']}").json()["content"] == "site visit"


def test_hidden_fields_are_absent_from_list_get_and_activity(world: World) -> None:
    rep1 = world.users["rep1"]
    record = world.create("admin", "customer", {
        "name": "Secretive", "owner_id": rep1, "employees": 10,
        "annual_revenue": {"amount": "5000000", "currency": "CNY"}})
    changed = world.patch("admin", f"/customer/{record['id']}",
                          {"version": 1, "employees": 11,
                           "annual_revenue": {"amount": "6000000", "currency": "CNY"}})
    assert changed.status_code == 200
    path = f"/customer/{record['id']}"

    got = world.get("rep1", path).json()
    assert "annual_revenue" not in got and got["employees"] == 11
    listed = world.get("rep1", "/customer").json()["items"]
    assert [r["id"] for r in listed] == [record["id"]] and "annual_revenue" not in listed[0]
    feed = world.get("rep1", f"{path}/activity")
    assert feed.status_code == 200
    assert "annual_revenue" not in feed.text and "6000000" not in feed.text
    assert [c["field"] for c in feed.json()["items"][0]["changes"]] == ["employees"]
    # Nor can it be probed through a filter or a sort.
    probe = world.get("rep1", "/customer", params={"filter[annual_revenue][gt]": "1"})
    assert _status(probe, 400)["errors"] == {"annual_revenue": "unknown field for a filter"}

    # The admin sees it everywhere.
    assert world.get("admin", path).json()["annual_revenue"]["amount"] == "6000000.00"
    admin_feed = world.get("admin", f"{path}/activity").json()["items"][0]["changes"]
    revenue = next(c for c in admin_feed if c["field"] == "annual_revenue")
    assert revenue["old"] == {"amount": "5000000.00", "currency": "CNY"}
    assert revenue["new"]["amount"] in ("6000000", "6000000.00")
