"""Merging through the JSON API (issue 10, deliverable 4), on SQLite and PostgreSQL.

One walk through the endpoints: bodies refused with 422, a rep without the
merge grant 403, an unknown id 404 (never 500), the merge, the merged id's 308
to the survivor, the merge's own document, its undo and a second undo's 409.
"""

from __future__ import annotations

from tests.ui.api.conftest import World


def test_merge_and_undo_through_the_api(world: World) -> None:
    keep = world.create("admin", "customer", {"name": "Acme"})
    twin = world.create("admin", "customer", {"name": "Acme Ltd", "phone": "13000000004"})
    path = "/customer/merge"
    for body, field in [({"survivor_id": keep["id"], "merged_ids": []}, "merged_ids"),
                        ({"survivor_id": keep["id"], "merged_ids": [keep["id"]]},
                         "merged_ids"),
                        ({"survivor_id": "1", "merged_ids": [twin["id"]]}, "survivor_id"),
                        ({"survivor_id": keep["id"], "merged_ids": [twin["id"]], "x": 1}, "x"),
                        ({"survivor_id": keep["id"], "merged_ids": [twin["id"]],
                          "values": {"name": {"v": 1}}}, "name")]:
        answer = world.post("admin", path, body)
        assert answer.status_code == 422, body
        assert field in answer.json()["errors"], body
    assert world.post("rep1", path, {"survivor_id": keep["id"],
                                     "merged_ids": [twin["id"]]}).status_code == 403
    assert world.post("admin", path, {"survivor_id": keep["id"],
                                      "merged_ids": [10**12]}).status_code == 404

    done = world.post("admin", path, {"survivor_id": keep["id"], "merged_ids": [twin["id"]],
                                      "values": {"name": twin["id"]}})
    assert done.status_code == 201, done.text
    merge = done.json()
    assert merge["survivor"]["name"] == "Acme Ltd"
    assert merge["survivor"]["phone"] == "13000000004"
    moved = world.get("admin", f"/customer/{twin['id']}", follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == f"/api/v1/customer/{keep['id']}"
    assert moved.json()["survivor_id"] == keep["id"]
    shown = world.get("admin", f"/customer/merges/{merge['id']}")
    assert shown.status_code == 200 and shown.json()["merged_ids"] == [twin["id"]]
    assert world.get("rep3", f"/customer/merges/{merge['id']}").status_code in (403, 404)
    assert world.post("rep1", merge["undo_url"].removeprefix("/api/v1")).status_code == 403

    undone = world.post("admin", merge["undo_url"].removeprefix("/api/v1"))
    assert undone.status_code == 200 and undone.json()["undone_at"] is not None
    assert world.get("admin", f"/customer/{twin['id']}").json()["phone"] == "13000000004"
    again = world.post("admin", merge["undo_url"].removeprefix("/api/v1"))
    assert again.status_code == 409 and "merge" in again.json()["errors"]
    assert world.post("admin", "/customer/merges/999999/undo").status_code == 404
    paths = world.get("admin", "/openapi.json").json()["paths"]
    assert {"/customer/merge", "/customer/merges/{merge_id}/undo"} <= set(paths)
