"""POST /api/v1/{entity}/bulk: all or nothing, or a result per row; envelope errors,
forbidden callers, unique keys within the batch and against stored rows, activity."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.api.conftest import API, World
from ui.api.bulk import MAX_RECORDS

PROBLEM = "application/problem+json"
TAKEN = "110000000000001"  # licence numbers: 15 digits (or an 18-character credit code)
NEW = "110000000000002"


def _names(world: World, login: str) -> set[str]:
    return {r["name"] for r in world.get(login, "/customer", params={"limit": 100})
            .json()["items"]}


def test_atomic_bulk_creates_every_record_with_activity(world: World) -> None:
    rows = [{"name": f"Bulk {i}", "employees": i, "licence_no": f"91000000000000{i}"} for i in range(3)]
    response = world.post("rep1", "/customer/bulk", {"records": rows})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] == 3 and len(body["ids"]) == 3
    for i, record_id in enumerate(body["ids"]):  # in the order sent, owned by the creator
        record = world.get("rep1", f"/customer/{record_id}").json()
        assert record["name"] == f"Bulk {i}"
        assert record["owner_id"] == world.users["rep1"]
    feed = world.get("rep1", f"/customer/{body['ids'][0]}/activity").json()["items"]
    assert [e["kind"] for e in feed] == ["create"]
    assert {"Bulk 0", "Bulk 1", "Bulk 2"} <= _names(world, "rep1")
    assert _names(world, "rep3") == set()  # still scoped: another department sees none


def test_atomic_bulk_refuses_the_whole_batch_for_one_bad_row(world: World) -> None:
    world.create("rep1", "customer", {"name": "Stored", "licence_no": TAKEN})
    rows = [{"name": "Fine"}, {"name": "Bad", "employees": "many"},
            {"name": "Dup", "licence_no": TAKEN}]
    response = world.post("rep1", "/customer/bulk", {"records": rows})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:tidepool:problem:validation"
    assert "1.employees" in body["errors"]
    assert _names(world, "rep1") == {"Stored"}  # nothing written
    # Fields fixed: now the duplicate key is what refuses the batch.
    rows[1]["employees"] = 5
    again = world.post("rep1", "/customer/bulk", {"records": rows}).json()
    assert list(again["errors"]) == ["2.licence_no"]
    assert _names(world, "rep1") == {"Stored"}


def test_per_row_bulk_creates_the_valid_rows_and_reports_the_others(world: World) -> None:
    world.create("rep1", "customer", {"name": "Stored", "licence_no": TAKEN})
    rows = [{"name": "One"}, {"name": "Bad", "employees": "many"},
            {"name": "Dup", "licence_no": TAKEN}, {"name": "Two", "licence_no": NEW},
            {"name": "Twin", "licence_no": NEW}]
    response = world.post("rep1", "/customer/bulk", {"records": rows, "atomic": False})
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert "employees" in results[1]["errors"]
    assert "licence_no" in results[2]["errors"]
    # Within the batch, the second of two rows with one key is the duplicate.
    assert "id" in results[3] and "licence_no" in results[4]["errors"]
    assert body["created"] == 2 and body["failed"] == 3
    assert _names(world, "rep1") == {"Stored", "One", "Two"}
    assert world.get("rep1", f"/customer/{results[0]['id']}").status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({}, "records"),
    ({"records": []}, "records"),
    ({"records": {"name": "x"}}, "records"),
    ({"records": [{"name": "ok"}, "not an object"]}, "1"),
    ({"records": [{"name": "ok"}], "atomic": "yes"}, "atomic"),
    ({"records": [{"name": "ok"}], "extra": 1}, "extra"),
    ({"records": [{"name": "x"}] * (MAX_RECORDS + 1)}, "records"),
])
def test_a_bad_envelope_is_422_and_creates_nothing(sqlite_world: World, body: dict[str, Any],
                                                   field: str) -> None:
    response = sqlite_world.post("rep1", "/customer/bulk", body)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]
    assert _names(sqlite_world, "rep1") == set()


def test_bulk_needs_a_token_and_the_create_grant(sqlite_world: World) -> None:
    world = sqlite_world
    rows = {"records": [{"name": "Nope"}]}
    assert world.client.post(f"{API}/customer/bulk", json=rows).status_code == 401
    for atomic in (True, False):
        response = world.post("idle", "/customer/bulk", {**rows, "atomic": atomic})
        assert response.status_code == 403, response.text
    assert world.post("rep1", "/nothing/bulk", rows).status_code == 404
    assert _names(world, "admin") == set()


def test_bulk_is_in_the_openapi_document(sqlite_world: World) -> None:
    doc = sqlite_world.get("admin", "/openapi.json").json()
    operation = doc["paths"]["/customer/bulk"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["records"]["maxItems"] == MAX_RECORDS
    assert schema["properties"]["records"]["items"] == {"$ref": "#/components/schemas/customer.create"}
    assert {"200", "201", "403", "422"} <= set(operation["responses"])
