"""The API's write path on SQLite and PostgreSQL: create, get, update with versions, delete,
restore, and every refusal with its problem-details status. Nothing is written on bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.api.conftest import API, World

PROBLEM = "application/problem+json"


def _problem(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["title"] and body["detail"]
    assert body["type"] == (f"urn:tidepool:problem:{kind}" if kind else "about:blank")
    return body


def _count(world: World, entity: str, **params: str) -> int:
    response = world.get("admin", f"/{entity}", params={"limit": "200", **params})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


CUSTOMER = {
    "name": "Acme Trading", "licence_no": "91310000MA1FL1234X", "industry": "retail",
    "annual_revenue": {"amount": "1200000.50", "currency": "CNY"},
    "location": {"lat": 31.2304, "lng": 121.4737}, "tags": ["chain", "vip"],
    "employees": 40, "address": {"city": "Shanghai", "street": "1 Bund"},
}


def test_crud_round_trip(world: World) -> None:
    rep1 = world.users["rep1"]
    created = world.post("admin", "/customer", {**CUSTOMER, "owner_id": rep1})
    assert created.status_code == 201, created.text
    body = created.json()
    record_id = body["id"]
    assert created.headers["location"] == f"{API}/customer/{record_id}"
    assert created.headers["etag"] == '"1"'
    assert body["version"] == 1 and body["owner_id"] == rep1
    assert body["created_by"] == world.users["admin"]
    # Values come back in their JSON shapes: decimals as strings, exactly as sent.
    assert body["annual_revenue"] == {"amount": "1200000.50", "currency": "CNY"}
    assert body["location"] == {"lat": 31.2304, "lng": 121.4737}
    assert body["tags"] == ["chain", "vip"] and body["employees"] == 40
    assert body["deleted_at"] is None and body["pool_id"] is None

    got = world.get("admin", f"/customer/{record_id}")
    assert got.status_code == 200 and got.json() == body and got.headers["etag"] == '"1"'

    changed = world.patch("admin", f"/customer/{record_id}", {"employees": 41, "grade": "A"},
                          headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    assert changed.json()["version"] == 2 and changed.json()["employees"] == 41

    # The version may also travel in the body.
    again = world.patch("admin", f"/customer/{record_id}", {"version": 2, "notes": "met CFO"})
    assert again.status_code == 200 and again.json()["version"] == 3

    gone = world.delete("admin", f"/customer/{record_id}", headers={"If-Match": '"3"'})
    assert gone.status_code == 204 and gone.content == b""
    _problem(world.get("admin", f"/customer/{record_id}"), 404)
    binned = world.get("admin", f"/customer/{record_id}", params={"include_deleted": "true"})
    assert binned.status_code == 200 and binned.json()["deleted_at"] is not None
    assert _count(world, "customer") == 0
    assert _count(world, "customer", only_deleted="true") == 1

    restored = world.post("admin", f"/customer/{record_id}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None and restored.json()["version"] == 5
    assert world.get("admin", f"/customer/{record_id}").status_code == 200

    feed = world.get("admin", f"/customer/{record_id}/activity").json()["items"]
    assert [e["kind"] for e in feed] == ["restore", "delete", "update", "update", "create"]
    assert {"field": "employees", "old": 40, "new": 41} in feed[3]["changes"]
    assert all(e["actor_id"] == world.users["admin"] for e in feed)


def test_hard_delete_where_the_entity_has_no_recycle_bin(world: World) -> None:
    made = world.create("rep1", "follow_up", {"kind": "call", "content": "intro call",
                                              "happened_at": "2026-03-01T09:30:00+08:00"})
    assert made["happened_at"] == "2026-03-01T01:30:00+00:00"  # instants are UTC
    assert made["code"]  # numbered automatically
    assert world.delete("rep1", f"/follow_up/{made['id']}").status_code == 403  # no delete grant
    assert world.delete("admin", f"/follow_up/{made['id']}").status_code == 204
    _problem(world.get("admin", f"/follow_up/{made['id']}", params={"include_deleted": "1"}), 404)
    _problem(world.post("admin", f"/follow_up/{made['id']}/restore"), 404)


def test_stale_versions_conflict_and_write_nothing(world: World) -> None:
    record = world.create("admin", "customer", {"name": "Stale Co"})
    path = f"/customer/{record['id']}"
    assert world.patch("admin", path, {"version": 1, "employees": 5}).status_code == 200

    stale_header = world.patch("admin", path, {"employees": 6}, headers={"If-Match": '"1"'})
    body = _problem(stale_header, 412, "stale-version")
    assert body["current_version"] == 2
    stale_body = world.patch("admin", path, {"version": 1, "employees": 7})
    assert _problem(stale_body, 409, "stale-version")["current_version"] == 2
    stale_delete = world.delete("admin", path, headers={"If-Match": '"1"'})
    assert _problem(stale_delete, 412, "stale-version")["current_version"] == 2

    now = world.get("admin", path).json()
    assert now["version"] == 2 and now["employees"] == 5 and now["deleted_at"] is None


@pytest.mark.parametrize("headers,body,status,kind", [
    ({}, {"employees": 1}, 428, "precondition-required"),
    ({"If-Match": "*"}, {"employees": 1}, 428, "bad-precondition"),
    ({"If-Match": 'W/"1"'}, {"employees": 1}, 400, "bad-precondition"),
    ({"If-Match": '"1", "2"'}, {"employees": 1}, 400, "bad-precondition"),
    ({"If-Match": '"1"'}, {"version": 2, "employees": 1}, 400, "bad-precondition"),
    ({}, {"version": "1", "employees": 1}, 422, "validation"),
    ({}, {"version": True, "employees": 1}, 422, "validation"),
])
def test_updates_say_which_version_they_change(sqlite_world: World, headers: dict[str, str],
                                               body: dict[str, Any], status: int,
                                               kind: str) -> None:
    world = sqlite_world
    record = world.create("admin", "customer", {"name": "Versioned"})
    _problem(world.patch("admin", f"/customer/{record['id']}", body, headers=headers),
             status, kind)
    assert world.get("admin", f"/customer/{record['id']}").json()["version"] == 1


def test_validation_errors_name_each_field_and_write_nothing(world: World) -> None:
    body = _problem(world.post("admin", "/customer", {}), 422, "validation")
    assert body["errors"] == {"name": "is required"}
    bad = world.post("admin", "/customer", {
        "name": "Bad Values", "employees": "many", "industry": "mining", "website": "nope",
        "location": {"lat": 100, "lng": 0}, "bogus": 1, "id": 5, "version": 3})
    errors = _problem(bad, 422, "validation")["errors"]
    assert set(errors) == {"employees", "industry", "website", "location", "bogus", "id",
                           "version"}
    assert "mining" in errors["industry"] and "bogus" in errors["bogus"]
    assert errors["id"] == "is set by the system"
    record = world.create("admin", "customer", {"name": "Fine"})
    update = world.patch("admin", f"/customer/{record['id']}",
                         {"version": 1, "name": None, "owner_id": world.users["rep1"]})
    assert _problem(update, 422, "validation")["errors"] == {
        "name": "is required", "owner_id": "is set by the system"}
    assert _count(world, "customer") == 1
    assert world.get("admin", f"/customer/{record['id']}").json()["version"] == 1


def test_read_only_fields_are_refused_with_422(world: World) -> None:
    mine = world.create("rep1", "customer", {"name": "Mine"})
    refused = world.patch("rep1", f"/customer/{mine['id']}", {"version": 1, "grade": "A"})
    assert _problem(refused, 422, "validation")["errors"] == {"grade": "is read-only for you"}
    # A field the role hides cannot be written either, on create or update.
    hidden = world.post("rep1", "/customer", {"name": "X", "annual_revenue": {"amount": 1}})
    assert _problem(hidden, 422, "validation")["errors"] == {
        "annual_revenue": "is read-only for you"}
    deal = world.post("rep1", "/opportunity", {"name": "Deal", "customer": mine["id"],
                                               "probability": 50})
    assert _problem(deal, 422, "validation")["errors"] == {"probability": "is read-only for you"}
    assert world.get("rep1", f"/customer/{mine['id']}").json()["grade"] is None
    assert _count(world, "customer") == 1 and _count(world, "opportunity") == 0


def test_duplicates_name_the_existing_record(world: World) -> None:
    first = world.create("admin", "customer", {"name": "One", "licence_no": "91310000MA1FL0001A"})
    again = world.post("admin", "/customer", {"name": "Two", "licence_no": "91310000MA1FL0001A"})
    body = _problem(again, 409, "duplicate")
    assert body["existing_id"] == first["id"] and body["key"] == "licence_no"
    assert str(first["id"]) in body["errors"]["licence_no"]
    other = world.create("admin", "customer", {"name": "Three"})
    clash = world.patch("admin", f"/customer/{other['id']}",
                        {"version": 1, "licence_no": "91310000MA1FL0001A"})
    assert _problem(clash, 409, "duplicate")["existing_id"] == first["id"]
    assert _count(world, "customer") == 2


@pytest.mark.parametrize("content,content_type,status,kind", [
    (b"{not json", "application/json", 400, "bad-body"),
    (b"[1, 2]", "application/json", 400, "bad-body"),
    (b'{"name": "a", "name": "b"}', "application/json", 400, "bad-body"),
    (b'{"name": "a", "employees": NaN}', "application/json", 400, "bad-body"),
    (b"\xff\xfe{}", "application/json", 400, "bad-body"),
    (b"name=a", "application/x-www-form-urlencoded", 415, None),
    (b'{"name": "a"}', "text/plain", 415, None),
    (b"", None, 415, None),
])
def test_bodies_must_be_json_objects(sqlite_world: World, content: bytes,
                                     content_type: str | None, status: int,
                                     kind: str | None) -> None:
    world = sqlite_world
    headers = world.auth("admin")
    if content_type:
        headers["Content-Type"] = content_type
    response = world.client.post(f"{API}/customer", content=content, headers=headers)
    _problem(response, status, kind)
    assert _count(world, "customer") == 0


def test_json_media_types_with_parameters_and_suffixes_are_json(sqlite_world: World) -> None:
    world = sqlite_world
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = world.client.post(f"{API}/customer", content=b'{"name": "Typed"}',
                                     headers={**world.auth("admin"),
                                              "Content-Type": content_type})
        assert response.status_code == 201, response.text


def test_oversized_bodies_are_413_whether_declared_or_streamed(world: World) -> None:
    big = b'{"name": "' + b"x" * 70_000 + b'"}'  # the fixture caps bodies at 64 000 bytes
    headers = {**world.auth("admin"), "Content-Type": "application/json"}
    _problem(world.client.post(f"{API}/customer", content=big, headers=headers), 413)

    def chunks() -> Any:  # no Content-Length: counted while reading
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    _problem(world.client.post(f"{API}/customer", content=chunks(), headers=headers), 413)
    assert _count(world, "customer") == 0


def test_routing_errors_are_problems_too(world: World) -> None:
    record = world.create("admin", "customer", {"name": "Routed"})
    put = world.client.put(f"{API}/customer/{record['id']}", json={}, headers=world.auth("admin"))
    _problem(put, 405)
    assert set(put.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    _problem(world.client.delete(f"{API}/customer", headers=world.auth("admin")), 405)
    _problem(world.get("admin", "/no_such_entity"), 404)
    _problem(world.get("admin", "/customer/999999"), 404)
    _problem(world.get("admin", "/customer/abc"), 404)
    _problem(world.get("admin", f"/customer/{2**70}"), 404)
    _problem(world.patch("admin", "/customer/999999", {"version": 1}), 404)
    _problem(world.delete("admin", "/customer/999999"), 404)
    _problem(world.get("admin", "/customer/999999/activity"), 404)
    _problem(world.get("admin", "/customer/1/2/3"), 404)
