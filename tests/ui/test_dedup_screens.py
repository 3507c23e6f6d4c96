"""Possible duplicates on the screens: the form's "save anyway" step, the candidates
screen (grouped, counted, scoped, linking to merge) and who may open it."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]


def test_create_form_warns_then_saves_anyway(client_for: Client, demo_db: DemoDB) -> None:
    mine = make_record(demo_db, "customer", {"name": "杭州 Dedup 科技有限公司"},
                       owner="rep_east1")
    make_record(demo_db, "customer", {"name": "杭州Dedup科技公司"}, owner="rep_west1")
    rep = client_for("rep_east1", lang="zh-CN")
    token = csrf(rep)
    first = rep.post("/e/customer/new", data={"csrf_token": token, "name": "杭州 DEDUP 科技"},
                     follow_redirects=False)
    assert first.status_code == 200  # not saved: the form asks first
    page = html.unescape(first.text)
    assert "已有名称相近的客户。" in page and f'href="/e/customer/{mine}"' in page
    # rep_west1's twin is outside rep_east1's scope: counted, neither named nor linked.
    assert "杭州Dedup科技公司" not in page and "（共 2 条匹配）" in page
    confirm = re.search(r'name="dedup_confirm" value="(\w+)"', page)
    assert confirm is not None
    # Changing the checked value checks again; the same value with the confirmation saves.
    again = rep.post("/e/customer/new", data={"csrf_token": token, "name": "杭州 dedup 科技 Ltd",
                                              "dedup_confirm": "0" * 32},
                     follow_redirects=False)
    assert again.status_code == 200 and "dedup_confirm" in again.text
    saved = rep.post("/e/customer/new", data={"csrf_token": token, "name": "杭州 DEDUP 科技",
                                              "dedup_confirm": confirm.group(1)},
                     follow_redirects=False)
    assert saved.status_code == 303, saved.text[:300]


def test_candidates_screen_groups_within_scope_and_links_to_merge(
        client_for: Client, demo_db: DemoDB) -> None:
    a = make_record(demo_db, "customer", {"name": "Groupable Trading Co., Ltd."},
                    owner="rep_east1")
    b = make_record(demo_db, "customer", {"name": "GROUPABLE trading"}, owner="rep_east2")
    make_record(demo_db, "customer", {"name": "Groupable Trading Inc"}, owner="rep_west1")
    for owner in ("rep_east1", "rep_east2"):  # a second group, for a second page
        make_record(demo_db, "customer", {"name": "Zweite Gruppe GmbH"}, owner=owner)
    sup = client_for("sup_east")
    page = sup.get("/e/customer/duplicates?limit=100")
    assert page.status_code == 200
    text = html.unescape(page.text)
    # The east supervisor merges in their department only: the west twin is not counted.
    assert f'href="/e/customer/merge?ids={a},{b}"' in text
    admin = html.unescape(client_for("admin").get("/e/customer/duplicates?limit=100").text)
    assert re.search(rf'merge\?ids={a},{b},\d+"', admin)
    # Keyset pages: a limit of 1 offers a next page that continues after the first group.
    first = sup.get("/e/customer/duplicates?limit=1").text
    assert 'rel="next"' in first
    # The list offers the screen to mergers only.
    assert 'href="/e/customer/duplicates"' in sup.get("/e/customer").text
    assert 'href="/e/customer/duplicates"' not in client_for("rep_east1").get("/e/customer").text
    # Reps have no merge grant; an unknown rule is a bad request.
    assert client_for("rep_east1").get("/e/customer/duplicates").status_code == 403
    assert sup.get("/e/customer/duplicates?rule=nope").status_code == 400


def test_returning_to_the_pool_warns_about_twins(client_for: Client, demo_db: DemoDB) -> None:
    held = make_record(demo_db, "customer", {"name": "Pool Twin Co"}, owner="rep_east1")
    twin = make_record(demo_db, "customer", {"name": "pool twin"}, owner="rep_east1")
    page = client_for("rep_east1").get(f"/e/customer/{held}/return")
    assert page.status_code == 200
    assert "consider merging" in page.text and f'href="/e/customer/{twin}"' in page.text


def test_edit_checks_only_a_changed_name_and_never_matches_itself(client_for: Client,
                                                                  demo_db: DemoDB) -> None:
    own = make_record(demo_db, "customer", {"name": "Edit Self Co"}, owner="rep_east1")
    other = make_record(demo_db, "customer", {"name": "Other Edit Ltd"}, owner="rep_east1")
    rep = client_for("rep_east1")
    token = csrf(rep)
    same = rep.post(f"/e/customer/{own}/edit", data={
        "csrf_token": token, "version": "1", "name": "EDIT SELF", "employees": "5"},
        follow_redirects=False)
    assert same.status_code == 303, same.text[:300]  # its own stem is no duplicate
    clash = rep.post(f"/e/customer/{own}/edit", data={
        "csrf_token": token, "version": "2", "name": "other edit"}, follow_redirects=False)
    assert clash.status_code == 200 and f'href="/e/customer/{other}"' in clash.text
    assert 'name="version" value="2"' in clash.text


def test_leaving_a_checked_field_warns_before_submit(client_for: Client,
                                                      demo_db: DemoDB) -> None:
    mine = make_record(demo_db, "customer", {"name": "Live Twin Trading Co"}, owner="rep_east1")
    hidden = make_record(demo_db, "customer", {"name": "Quiet Twin GmbH"}, owner="rep_west1")
    rep = client_for("rep_east1")
    form = rep.get("/e/customer/new").text
    # The name input (a similar_name rule reads it) asks as the user leaves it.
    assert re.search(r'<input id="w-name" name="name"[^>]* hx-post="/e/customer/new/similar"'
                     r' hx-trigger="change" hx-target="#dedup-live"', form)
    assert 'id="w-phone"' in form and 'hx-post="/e/customer/new/similar"' not in re.search(
        r'<input id="w-phone"[^>]*>', form).group(0)  # type: ignore[union-attr]
    token = csrf(rep)
    live = rep.post("/e/customer/new/similar", data={"csrf_token": token,
                                                      "name": "LIVE TWIN trading"},
                    headers={"HX-Request": "true"})
    assert live.status_code == 200
    assert f'href="/e/customer/{mine}"' in live.text and "<form" not in live.text
    confirm = re.search(r'name="dedup_confirm" value="(\w+)"', live.text)
    assert confirm is not None
    # The warned values save with one submit: the slot carried the fingerprint.
    saved = rep.post("/e/customer/new", data={"csrf_token": token, "name": "LIVE TWIN trading",
                                              "dedup_confirm": confirm.group(1)},
                     follow_redirects=False)
    assert saved.status_code == 303, saved.text[:300]
    # No match: the slot is emptied. A twin the rep cannot read is counted, not named.
    clear = rep.post("/e/customer/new/similar", data={"csrf_token": token, "name": "Unique Co"})
    assert clear.status_code == 200 and clear.text.strip() == ""
    quiet = html.unescape(rep.post("/e/customer/new/similar",
                                   data={"csrf_token": token, "name": "quiet twin"}).text)
    assert f"/e/customer/{hidden}" not in quiet and "Quiet Twin GmbH" not in quiet
    assert "A record you cannot see matches" in quiet


def test_live_check_on_edit_skips_itself_and_keeps_scope(client_for: Client,
                                                          demo_db: DemoDB) -> None:
    own = make_record(demo_db, "customer", {"name": "Edit Live Self Co"}, owner="rep_east1")
    other = make_record(demo_db, "customer", {"name": "Edit Live Other Ltd"},
                        owner="rep_east1")
    west = make_record(demo_db, "customer", {"name": "Edit Live West"}, owner="rep_west1")
    rep = client_for("rep_east1")
    token = csrf(rep)
    url = f"/e/customer/{own}/edit/similar"
    assert f'hx-post="{url}"' in rep.get(f"/e/customer/{own}/edit").text
    unchanged = rep.post(url, data={"csrf_token": token, "name": "Edit Live Self Co"})
    assert unchanged.status_code == 200 and unchanged.text.strip() == ""
    itself = rep.post(url, data={"csrf_token": token, "name": "EDIT LIVE SELF"})
    assert itself.text.strip() == ""  # a record never matches itself
    clash = rep.post(url, data={"csrf_token": token, "name": "edit live other"})
    assert f'href="/e/customer/{other}"' in clash.text
    # Someone else's record: not found, as reading it is; no token: refused; signed out: no.
    assert rep.post(f"/e/customer/{west}/edit/similar",
                    data={"csrf_token": token, "name": "x"}).status_code == 404
    assert rep.post(url, data={"name": "edit live other"}).status_code == 403
    anonymous = client_for(None).post(url, data={"name": "x"}, follow_redirects=False)
    assert anonymous.status_code in (303, 401, 403)
