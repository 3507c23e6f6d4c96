"""Conversions over the JSON API: preview, convert (201 + Location), 409 on a second run,
404 for an unknown conversion or the wrong entity, 422 for a bad body, the OpenAPI path."""

from __future__ import annotations

from tests.ui.api.conftest import World

PATH = "/lead/{id}/convert/lead_to_customer"


def _lead(world: World, login: str = "rep1", phone: str = "13912345678") -> int:
    lead = world.create(login, "lead", {"company_name": "Lin's Shop", "contact_name": "Ms Lin",
                                        "phone": phone, "channel": "street",
                                        "status": "qualified"})
    return int(lead["id"])


def test_preview_convert_and_refuse_a_second_time(world: World) -> None:
    lead_id = _lead(world)
    path = PATH.format(id=lead_id)
    preview = world.get("rep1", path)
    assert preview.status_code == 200, preview.text
    targets = {t["name"]: t for t in preview.json()["targets"]}
    assert targets["customer"]["values"]["name"] == "Lin's Shop"
    assert targets["opportunity"]["optional"] and not targets["opportunity"]["selected"]
    done = world.post("rep1", path, {"targets": {
        "opportunity": {"include": True},
        "contact": {"values": {"name": "Lin Mei", "phone": "13912345678"}}}})
    assert done.status_code == 201, done.text
    body = done.json()
    customer_id = body["main"]["id"]
    assert body["main"]["entity"] == "customer" and not body["main"]["attached"]
    assert done.headers["location"] == f"/api/v1/customer/{customer_id}"
    contact = world.get("rep1", f"/contact/{body['targets']['contact']['id']}").json()
    assert (contact["name"], contact["customer"]) == ("Lin Mei", customer_id)
    assert world.get("rep1", f"/customer/{customer_id}").json()["source_lead"] == lead_id
    assert world.get("rep1", f"/lead/{lead_id}").json()["status"] == "converted"
    again = world.post("rep1", path)
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "urn:tidepool:problem:conversion"
    assert again.json()["reason"] == "converted"


def test_refusals(sqlite_world: World) -> None:
    world = sqlite_world
    lead_id = _lead(world)
    path = PATH.format(id=lead_id)
    assert world.post("idle", path).status_code == 403
    assert world.post("rep3", path).status_code == 404          # outside rep3's scope
    assert world.post("rep1", f"/lead/{lead_id}/convert/nope").status_code == 404
    customer = world.create("rep1", "customer", {"name": "Other"})
    assert world.post("rep1", f"/customer/{customer['id']}/convert/lead_to_customer"
                      ).status_code == 404
    for bad in ({"targetz": {}}, {"targets": []}, {"targets": {"contact": {"include": "y"}}},
                {"targets": {"customer": {"attach_to": "5"}}},
                {"targets": {"contact": {"colour": 1}}}):
        response = world.post("rep1", path, bad)
        assert response.status_code == 422, (bad, response.text)
    # A duplicate the user did not confirm to attach to: 409 duplicate, nothing written.
    dup = _lead(world, phone="13800001111")
    world.create("rep1", "customer", {"name": "Twin", "phone": "+86 138 0000 1111"})
    refused = world.post("rep1", PATH.format(id=dup))
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:tidepool:problem:duplicate"
    assert world.get("rep1", f"/lead/{dup}").json()["status"] == "qualified"
    assert world.get("rep1", PATH.format(id=lead_id)).status_code == 200


def test_openapi_lists_the_conversion(sqlite_world: World) -> None:
    document = sqlite_world.get("rep1", "/openapi.json").json()
    path = document["paths"]["/lead/{record_id}/convert/lead_to_customer"]
    assert path["post"]["operationId"] == "convert_lead_to_customer"
    assert "201" in path["post"]["responses"] and "409" in path["post"]["responses"]
    assert "/customer/{record_id}/convert/lead_to_customer" not in document["paths"]
