"""Pool operations over the JSON API: claim, return, recycle, move, lock, unlock; the 409
pool-limit problem; the OpenAPI paths."""

from __future__ import annotations

from tests.ui.api.conftest import World


def _pooled(world: World, name: str = "Open lead") -> int:
    record = world.create("admin", "customer", {"name": name})
    world.put_in_pool("customer", record["id"], "customer_pool")
    return int(record["id"])


def test_claim_then_return_with_a_reason(world: World) -> None:
    record_id = _pooled(world)
    path = f"/customer/{record_id}"
    claimed = world.post("rep1", f"{path}/claim")  # no body at all: no reason
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["owner_id"] == world.users["rep1"]
    assert claimed.json()["pool_id"] is None and claimed.headers["etag"]
    again = world.post("sup_east", f"{path}/claim", {"reason": "mine"})
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "urn:tidepool:problem:pool-limit"
    assert again.json()["limit"] == "taken"
    no_reason = world.post("rep1", f"{path}/return", {})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"] == {"reason": "is required"}
    assert world.post("rep1", f"{path}/return", {"reason": "x", "owner": 1}).status_code == 422
    assert world.post("rep1", f"{path}/return", {"reason": 5}).status_code == 422
    back = world.post("rep1", f"{path}/return", {"reason": "wrong industry"})
    assert back.status_code == 200, back.text
    assert (back.json()["owner_id"], back.json()["pool_id"]) == (None, "customer_pool")
    feed = world.get("admin", f"{path}/activity").json()["items"]
    assert [(e["kind"], e["body"]) for e in feed[:2]] == [("return", "wrong industry"),
                                                          ("claim", None)]
    assert "via" in feed[0]


def test_forbidden_pool_operations(world: World) -> None:
    record_id = _pooled(world)
    path = f"/customer/{record_id}"
    assert world.post("idle", f"{path}/claim").status_code == 403
    assert world.post("rep1", f"{path}/claim").status_code == 200
    # rep3 (West) cannot see rep1's record; a rep cannot recycle at all.
    assert world.post("rep3", f"{path}/return", {"reason": "no"}).status_code == 404
    assert world.post("rep1", f"{path}/recycle", {"reason": "no"}).status_code == 403
    recycled = world.post("sup_east", f"{path}/recycle", {"reason": "idle for weeks"})
    assert recycled.status_code == 200, recycled.text
    assert world.post("rep1", f"{path}/move", {"to_pool": "customer_pool"}).status_code == 403
    assert world.post("admin", f"{path}/move", {"to_pool": "nope"}).status_code == 422
    assert world.post("rep1", "/contact/1/claim").status_code in (404,)
    assert world.post("rep1", "/customer/999999/claim").status_code == 404


def test_lock_and_unlock_a_held_record(world: World) -> None:
    record = world.create("rep1", "customer", {"name": "Mine"})
    path = f"/customer/{record['id']}"
    locked = world.post("rep1", f"{path}/lock", {"reason": "contract next week"})
    assert locked.status_code == 200, locked.text
    again = world.post("rep1", f"{path}/lock")
    assert (again.status_code, again.json()["limit"]) == (409, "locked")
    assert world.post("rep3", f"{path}/lock").status_code == 404
    assert world.post("rep1", f"{path}/unlock").status_code == 200
    twice = world.post("rep1", f"{path}/unlock")
    assert (twice.status_code, twice.json()["limit"]) == (409, "not_locked")
    kinds = [e["kind"] for e in world.get("rep1", f"{path}/activity").json()["items"][:2]]
    assert kinds == ["unlock", "lock"]


def test_openapi_lists_the_pool_operations_of_pooled_entities(world: World) -> None:
    document = world.get("admin", "/openapi.json").json()
    paths = document["paths"]
    for op in ("claim", "return", "recycle", "move", "lock", "unlock"):
        post = paths[f"/customer/{{record_id}}/{op}"]["post"]
        assert post["operationId"] == f"{op}_customer"
        assert "409" in post["responses"]
    assert paths["/customer/{record_id}/return"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["required"] == ["reason"]
    assert "/contact/{record_id}/claim" not in paths
