"""Fuzzy dedup rules in the API: a create answers 201 as always, with ``_warnings`` when
stored records look like duplicates; bulk answers carry ``warnings`` by row; a matched
record is named only to a caller who may read it."""

from __future__ import annotations

from tests.ui.api.conftest import World


def test_create_warns_about_similar_names_and_hides_unreadable_ones(world: World) -> None:
    first = world.create("rep1", "customer", {"name": "上海 ABC 贸易有限公司"})
    assert "_warnings" not in first  # no match: the answer is as it always was
    again = world.create("rep2", "customer", {"name": "上海ABC贸易公司"})
    [warning] = again["_warnings"]
    # rep2 (same department, rep scope) may not read rep1's record: no id, whom to ask.
    assert warning["rule"] == "similar_name" and "existing_id" not in warning
    assert warning["ask"] == "an administrator" and "title" not in warning
    boss = world.create("boss", "customer", {"name": "上海 abc 贸易"})
    assert {w["existing_id"] for w in boss["_warnings"]} <= {first["id"], again["id"]}
    assert boss["_warnings"][0]["title"]


def test_bulk_create_warns_per_row(world: World) -> None:
    customer = world.create("admin", "customer", {"name": "Phone Co", "phone": "13987654321"})
    response = world.post("admin", "/lead/bulk", {"records": [
        {"company_name": "A", "phone": "13900000001", "channel": "other"},
        {"company_name": "B", "phone": "+86 139 8765 4321", "channel": "other"}]})
    assert response.status_code == 201, response.text
    [warning] = response.json()["warnings"]
    assert (warning["index"], warning["rule"], warning["entity"], warning["existing_id"]) == (
        1, "customer_phone", "customer", customer["id"])


def test_update_warns_when_a_changed_value_matches_another_record(world: World) -> None:
    first = world.create("boss", "customer", {"name": "Patch Twin Trading Co"})
    second = world.create("boss", "customer", {"name": "Patch Other Co"})
    path = f"/customer/{second['id']}"
    # A field no rule reads: the answer is as it always was.
    quiet = world.patch("boss", path, {"employees": 7}, headers={"If-Match": f'"{1}"'})
    assert quiet.status_code == 200, quiet.text
    assert "_warnings" not in quiet.json()
    renamed = world.patch("boss", path, {"name": "patch twin trading"},
                          headers={"If-Match": f'"{quiet.json()["version"]}"'})
    assert renamed.status_code == 200, renamed.text
    [warning] = renamed.json()["_warnings"]
    assert (warning["rule"], warning["existing_id"]) == ("similar_name", first["id"])
    assert renamed.json()["name"] == "patch twin trading"  # saved all the same
    # Resending the unchanged name with another change is no news: no warning again.
    resent = world.patch("boss", path, {"name": "patch twin trading", "employees": 8},
                         headers={"If-Match": f'"{renamed.json()["version"]}"'})
    assert resent.status_code == 200 and "_warnings" not in resent.json()
    # A record does not match itself.
    again = world.patch("boss", f"/customer/{first['id']}", {"name": "PATCH TWIN TRADING CO."},
                        headers={"If-Match": f'"{first["version"]}"'})
    assert again.status_code == 200 and all(
        w["existing_id"] != first["id"] for w in again.json().get("_warnings", []))
