"""Beyond CRUD: pipeline stage moves through PATCH, comments, and assigning an owner."""

from __future__ import annotations

from typing import Any

from tests.ui.api.conftest import World


def _deal(world: World, login: str = "rep1", **values: Any) -> dict[str, Any]:
    customer = world.create(login, "customer", {"name": f"Buyer of {login}"})
    return world.create(login, "opportunity", {"name": "Deal", "customer": customer["id"],
                                               **values})


def test_stage_moves_follow_the_pipeline(world: World) -> None:
    deal = _deal(world)
    path = f"/opportunity/{deal['id']}"
    assert deal["stage"] == "research"
    # Not a next stage of research: 409 naming the stages that may follow.
    jump = world.patch("rep1", path, {"version": 1, "stage": "won"})
    assert jump.status_code == 409, jump.text
    body = jump.json()
    assert body["type"] == "urn:tidepool:problem:stage-transition"
    assert body["from_stage"] == "research" and body["to_stage"] == "won"
    assert set(body["allowed"]) == {"offer", "lost"} and "stage" in body["errors"]
    # offer needs expected_close: 422 on that field, nothing written.
    missing = world.patch("rep1", path, {"version": 1, "stage": "offer"})
    assert missing.status_code == 422 and "expected_close" in missing.json()["errors"]
    unknown = world.patch("rep1", path, {"version": 1, "stage": "nowhere"})
    assert unknown.status_code == 422 and "stage" in unknown.json()["errors"]
    assert world.get("rep1", path).json()["stage"] == "research"
    moved = world.patch("rep1", path, {"stage": "offer", "expected_close": "2026-12-01"},
                        headers={"If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage"] == "offer" and moved.headers["etag"] == '"2"'
    # Another rep cannot move it.
    assert world.patch("rep2", path, {"version": 2, "stage": "research"}).status_code == 404
    # A create may start in a later stage, with the fields that stage requires.
    early = world.post("rep1", "/opportunity", {"name": "Skip", "customer": deal["customer"],
                                                "stage": "won"})
    assert early.status_code == 422 and early.json()["errors"] == {
        "amount": "is required to enter stage Won"}
    later = world.create("rep1", "opportunity", {"name": "Late", "customer": deal["customer"],
                                                 "stage": "quote", "expected_close": "2026-12-01",
                                                 "amount": {"amount": 10, "currency": "CNY"}})
    assert later["stage"] == "quote"
    feed = world.get("rep1", f"{path}/activity").json()["items"]
    assert any(c["field"] == "stage" and c["new"] == "offer" for c in feed[0]["changes"])


def test_each_deal_follows_its_business_lines_pipeline(world: World) -> None:
    renewal = _deal(world, business_line="renewal")
    path = f"/opportunity/{renewal['id']}"
    assert renewal["stage"] == "renewal_review" and float(renewal["probability"]) == 40
    # A sales stage is no stage of the renewal pipeline: 422 on stage, nothing written.
    other = world.patch("rep1", path, {"version": 1, "stage": "offer",
                                       "expected_close": "2026-12-01"})
    assert other.status_code == 422, other.text
    assert "opportunity_sales" in other.json()["errors"]["stage"]
    jump = world.patch("rep1", path, {"version": 1, "stage": "renewed"})
    assert jump.status_code == 409 and set(jump.json()["allowed"]) == {"renewal_quote",
                                                                         "churned"}
    # Back to new business: the deal enters the sales pipeline's initial stage.
    back = world.patch("rep1", path, {"version": 1, "business_line": "new_business"})
    assert back.status_code == 200, back.text
    assert back.json()["stage"] == "research"
    feed = world.get("rep1", f"{path}/activity").json()["items"]
    assert {"field": "stage", "old": "renewal_review", "new": "research"} in \
        [{k: c[k] for k in ("field", "old", "new")} for c in feed[0]["changes"]]
    bad = world.patch("rep1", path, {"version": 2, "business_line": "nonsense"})
    assert bad.status_code == 422 and "business_line" in bad.json()["errors"]


def test_comments_land_in_the_feed(world: World) -> None:
    record = world.create("rep1", "customer", {"name": "Chatty"})
    path = f"/customer/{record['id']}"
    said = world.post("rep1", f"{path}/comments", {"body": "called, call back Monday"})
    assert said.status_code == 204, said.text
    feed = world.get("rep1", f"{path}/activity").json()["items"]
    assert feed[0]["kind"] == "comment" and feed[0]["body"] == "called, call back Monday"
    assert world.post("rep1", f"{path}/comments", {"body": "  "}).status_code == 422
    assert world.post("rep1", f"{path}/comments", {"body": "x", "to": 1}).status_code == 422
    assert world.post("rep2", f"{path}/comments", {"body": "peek"}).status_code == 404
    person = world.create("rep1", "contact", {"customer": record["id"], "name": "Wang"})
    assert world.post("rep1", f"/contact/{person['id']}/comments",
                      {"body": "ok"}).status_code == 204
    assert world.get("rep2", f"{path}/activity").status_code == 404


def test_assigning_needs_the_assign_grant(world: World) -> None:
    record = world.create("rep1", "customer", {"name": "Handed over"})
    path = f"/customer/{record['id']}"
    assert world.post("rep1", f"{path}/assign",
                      {"owner_id": world.users["rep2"]}).status_code == 403
    given = world.post("sup_east", f"{path}/assign", {"owner_id": world.users["rep2"]},
                       headers={"If-Match": '"1"'})
    assert given.status_code == 200, given.text
    assert given.json()["owner_id"] == world.users["rep2"] and given.headers["etag"] == '"2"'
    assert world.get("rep1", path).status_code == 404
    assert world.get("rep2", path).status_code == 200
    stale = world.post("sup_east", f"{path}/assign", {"owner_id": world.users["rep1"]},
                       headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    for body in ({}, {"owner_id": "rep1"}, {"owner_id": 999999}, {"owner_id": 1, "x": 1}):
        refused = world.post("sup_east", f"{path}/assign", body)
        assert refused.status_code == 422, (body, refused.text)
        assert "owner_id" in refused.json()["errors"] or "x" in refused.json()["errors"]
    west = world.create("rep3", "customer", {"name": "West"})
    assert world.post("sup_east", f"/customer/{west['id']}/assign",
                      {"owner_id": world.users["rep1"]}).status_code == 404
