"""Pool work on the screens: tabs, owner and pool columns, claim from the list and the
record page, return with a reason, recycle by a leader, refusals, zh-CN."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import update
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, make_record


def _pooled(db: DemoDB, name: str) -> int:
    record_id = make_record(db, "customer", {"name": name})
    table = db.live.current().schema.table("customer")
    with db.live.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(owner_id=None, pool_id="customer_pool"))
    return record_id


def test_list_of_a_pooled_entity_has_tabs_columns_and_claim_buttons(
        demo_db: DemoDB, client_for: Callable[..., TestClient]) -> None:
    record_id = _pooled(demo_db, "Pool list pick")
    rep = client_for("rep_east1")
    page = rep.get("/e/customer?f.pool_id.not_empty=1&cols=name&cols=owner_id&cols=pool_id")
    assert page.status_code == 200, page.text[:300]
    assert 'class="tabs"' in page.text
    assert re.search(r'<a href="/e/customer\?f.pool_id.not_empty=1"[^>]*aria-current="page"',
                     page.text)
    assert f'formaction="/e/customer/{record_id}/claim"' in page.text
    assert "Customer pool" in page.text  # the pool column shows the pool's label
    assert ">Team<" not in page.text  # reps have no team tab
    assert ">Team<" in client_for("sup_east").get("/e/customer").text
    assert 'class="tabs"' not in rep.get("/e/contact").text  # contacts have no pools
    zh = client_for("rep_east1", lang="zh-CN").get("/e/customer").text
    assert "我的" in zh and "公海" in zh


def test_claim_from_the_list_then_return_with_a_reason(
        demo_db: DemoDB, client_for: Callable[..., TestClient]) -> None:
    record_id = _pooled(demo_db, "Claim me")
    rep = client_for("rep_east1")
    token = csrf(rep)
    claimed = rep.post(f"/e/customer/{record_id}/claim",
                       data={"csrf_token": token, "next": "list"}, follow_redirects=False)
    assert claimed.status_code == 303 and claimed.headers["location"] == "/e/customer"
    detail = rep.get(f"/e/customer/{record_id}").text
    assert f'action="/e/customer/{record_id}/return"' in detail or \
        f'href="/e/customer/{record_id}/return"' in detail
    assert "claimed" in detail
    form = rep.get(f"/e/customer/{record_id}/return")
    assert form.status_code == 200 and 'name="reason"' in form.text
    missing = rep.post(f"/e/customer/{record_id}/return", data={"csrf_token": token,
                                                                 "reason": "  "})
    assert missing.status_code == 422 and "A reason is required." in missing.text
    back = rep.post(f"/e/customer/{record_id}/return",
                    data={"csrf_token": token, "reason": "closed the shop"},
                    follow_redirects=False)
    assert back.status_code == 303
    feed = client_for("admin").get(f"/e/customer/{record_id}").text
    assert "returned it to the pool" in feed and "closed the shop" in feed


def test_refusals_on_the_screens(demo_db: DemoDB,
                                 client_for: Callable[..., TestClient]) -> None:
    record_id = _pooled(demo_db, "Contested")
    first, second = client_for("rep_east1"), client_for("sup_east")
    assert first.post(f"/e/customer/{record_id}/claim", data={"csrf_token": csrf(first)},
                      follow_redirects=False).status_code == 303
    taken = second.post(f"/e/customer/{record_id}/claim", data={"csrf_token": csrf(second)})
    assert taken.status_code == 409
    assert "Someone else took this record first." in taken.text
    # A rep cannot recycle; a POST without the CSRF token is refused before anything runs.
    assert first.post(f"/e/customer/{record_id}/recycle",
                      data={"csrf_token": csrf(first), "reason": "x"}).status_code == 403
    assert first.post(f"/e/customer/{record_id}/return",
                      data={"reason": "no token"}).status_code == 403
    assert first.get(f"/e/customer/{record_id}/frobnicate").status_code == 404
    recycled = second.post(f"/e/customer/{record_id}/recycle",
                           data={"csrf_token": csrf(second), "reason": "idle"},
                           follow_redirects=False)
    assert recycled.status_code == 303
    zh = client_for("rep_east2", lang="zh-CN")
    page = zh.get(f"/e/customer/{record_id}")
    assert page.status_code == 200 and "领取" in page.text


def test_bulk_claim_and_bulk_recycle_from_the_list(
        demo_db: DemoDB, client_for: Callable[..., TestClient]) -> None:
    first, second = _pooled(demo_db, "Bulk one"), _pooled(demo_db, "Bulk two")
    rep = client_for("rep_east2")
    token = csrf(rep)
    page = rep.post("/e/customer/bulk", data={"csrf_token": token, "action": "claim",
                                              "ids": [str(first), str(second)]})
    assert page.status_code == 200, page.text[:300]
    assert "2 of 2 records changed." in page.text
    sup = client_for("sup_east")
    assert 'value="recycle"' in sup.get("/e/customer").text
    assert 'value="recycle"' not in rep.get("/e/customer").text
    no_reason = sup.post("/e/customer/bulk", data={"csrf_token": csrf(sup), "action": "recycle",
                                                   "ids": [str(first)], "value": " "})
    assert no_reason.status_code == 422
    done = sup.post("/e/customer/bulk", data={"csrf_token": csrf(sup), "action": "recycle",
                                              "ids": [str(first), str(second)],
                                              "value": "rebalancing the team"})
    assert "2 of 2 records changed." in done.text
    refused = rep.post("/e/customer/bulk", data={"csrf_token": token, "action": "recycle",
                                                 "ids": [str(first)], "value": "x"})
    assert refused.status_code == 403
