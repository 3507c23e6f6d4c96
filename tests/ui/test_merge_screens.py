"""The merge screens (issue 10, deliverable 4): choose the survivor and each field's value,
CSRF, the result page with Undo, a merged record's page sending its reader to the
survivor, the list's bulk action, zh-CN, and refusals for users without the grant."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]


def test_merge_choose_result_redirect_and_undo(client_for: Client, demo_db: DemoDB) -> None:
    keep = make_record(demo_db, "customer", {"name": "Merge Keep Co"}, owner="rep_east1")
    twin = make_record(demo_db, "customer", {"name": "Merge Twin Co",
                                             "phone": "+86 139 5555 0001"}, owner="rep_east1")
    boss = client_for("manager", lang="zh-CN")
    page = boss.get(f"/e/customer/merge?ids={twin},{keep}")
    assert page.status_code == 200
    assert "合并" in page.text
    assert re.search(rf'name="survivor" value="{keep}" checked', page.text)  # the oldest stays
    assert re.search(rf'name="f.phone" value="{twin}" checked', page.text)  # the non-empty
    assert re.search(rf'name="f.name" value="{twin}" checked', page.text)  # the newest

    form = {"ids": [str(keep), str(twin)], "survivor": str(keep), "f.name": str(keep)}
    assert boss.post("/e/customer/merge", data=form).status_code == 403   # no CSRF token
    done = boss.post("/e/customer/merge", data={**form, "csrf_token": csrf(boss)},
                     follow_redirects=False)
    assert done.status_code == 303, done.text
    result_url = done.headers["location"]
    result = boss.get(result_url)
    assert f"#{twin}" in result.text and "撤销合并" in result.text

    moved = boss.get(f"/e/customer/{twin}", follow_redirects=False)
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/e/customer/{keep}?merged_from={twin}"
    survivor = boss.get(moved.headers["location"])
    assert f"记录 #{twin} 已合并到此记录。" in survivor.text
    assert "139 5555 0001" in survivor.text

    undone = boss.post(result_url + "/undo", data={"csrf_token": csrf(boss)},
                       follow_redirects=False)
    assert undone.status_code == 303
    assert "合并已撤销" in boss.get(undone.headers["location"]).text
    assert boss.get(f"/e/customer/{twin}").status_code == 200
    again = boss.post(result_url + "/undo", data={"csrf_token": csrf(boss)})
    assert again.status_code == 409


def test_merge_refusals_and_the_bulk_action(client_for: Client, demo_db: DemoDB) -> None:
    one = make_record(demo_db, "customer", {"name": "Bulk Merge A"}, owner="rep_east1")
    two = make_record(demo_db, "customer", {"name": "Bulk Merge B"}, owner="rep_east1")
    rep = client_for("rep_east1")
    assert rep.get(f"/e/customer/merge?ids={one},{two}").status_code == 403
    assert 'value="merge"' not in rep.get("/e/customer").text
    boss = client_for("manager", lang="en")
    assert 'value="merge"' in boss.get("/e/customer").text
    bulk = boss.post("/e/customer/bulk", data={"csrf_token": csrf(boss), "action": "merge",
                                               "ids": [str(one), str(two)]},
                     follow_redirects=False)
    assert bulk.headers["location"] == f"/e/customer/merge?ids={one},{two}"
    assert boss.get(f"/e/customer/merge?ids={one}").status_code == 422
    assert boss.get("/e/customer/merge?ids=x,99999999999999999999").status_code == 422
    bad = boss.post("/e/customer/merge", data={"csrf_token": csrf(boss),
                                               "ids": [str(one), str(two)], "survivor": "7"})
    assert bad.status_code == 422 and "Choose the record that stays." in bad.text
    assert boss.get("/e/customer/merges/999999").status_code == 404
