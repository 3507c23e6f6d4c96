"""Kanban routes on the CRM demo: the board, column pages, moves and their refusals.

Each test makes its own opportunities (owned by a demo rep) so the sample rows'
values do not matter. Moves are posted as htmx posts them (``HX-Request``,
``X-CSRF-Token``) unless the test is about the plain-form path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.permissions.shares import share_record
from engine.records import Filter, ListQuery, Record
from engine.storage.database import write_transaction
from tests.ui.conftest import SECRET, DemoDB, csrf
from ui.app import create_app

Client = Callable[[str | None], TestClient]
BOARD = "/e/opportunity/kanban"
STAGES = ["research", "offer", "quote", "closing", "signed", "won", "lost"]


@pytest.fixture(scope="module")
def app(demo_db: DemoDB):  # type: ignore[no-untyped-def]
    # Only the areas these tests need: other screens may be half-built in the same tree.
    return create_app(demo_db.live, secret_key=SECRET, api_module=None,
                      screen_modules=["ui.auth", "ui.screens.home", "ui.kanban.routes"])


def actor(demo_db: DemoDB, login: str) -> Actor:
    runtime = demo_db.live.current()
    return runtime.policy.actor_for(demo_db.user_id(login), login=login)  # type: ignore[attr-defined]


def new_deal(demo_db: DemoDB, login: str, **values: Any) -> Record:
    who = actor(demo_db, login)
    records = demo_db.live.current().records
    customer = records.list(who, "customer", ListQuery(limit=1)).rows[0]
    return records.create(who, "opportunity", {"name": "Deal", "customer": customer.id,
                                               **values})


def htmx(client: TestClient) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": csrf(client)}


def move(client: TestClient, deal: Record, to: str, *, version: int | None = None,
         **values: str) -> Any:
    data = {"to": to, "version": str(deal.version if version is None else version), **values}
    return client.post(f"{BOARD}/{deal.id}/move?lang=en", data=data, headers=htmx(client))


def heads(html: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'id="head-([a-z_]+)">.*?class="kb-count"[^>]*>(\d+)<', html, re.DOTALL)}


def test_board_has_a_column_per_stage_counting_only_what_the_viewer_sees(
        client_for: Client, demo_db: DemoDB) -> None:
    new_deal(demo_db, "rep_east1", amount={"amount": "1000", "currency": "CNY"})
    rep = client_for("rep_east1")
    page = rep.get(BOARD + "?lang=en")
    assert page.status_code == 200
    assert re.findall(r'data-column="([a-z_]+)"', page.text) == STAGES
    records = demo_db.live.current().records
    who = actor(demo_db, "rep_east1")
    expected = {g.key: g.count for g in records.group_counts(who, "opportunity", "stage")
                if g.key in STAGES}   # renewals have a board of their own
    shown = heads(page.text)
    assert {k: v for k, v in shown.items() if v} == expected
    cards = {int(i) for i in re.findall(r'data-card="(\d+)"', page.text)}
    mine = {r.id for r in records.list(who, "opportunity", ListQuery(limit=200)).rows}
    assert cards and cards <= mine
    manager = client_for("manager").get(BOARD + "?lang=en")
    assert sum(heads(manager.text).values()) > sum(shown.values())
    assert "Background research" in page.text and "CNY" in page.text
    assert "背景调研" in rep.get(BOARD + "?lang=zh-CN").text


def test_unknown_or_unpipelined_entities_have_no_board(client_for: Client) -> None:
    rep = client_for("rep_east1")
    assert rep.get("/e/customer/kanban").status_code == 404
    assert rep.get("/e/nothing/kanban").status_code == 404
    assert rep.get(f"{BOARD}/column/nowhere").status_code == 404
    assert client_for(None).get(BOARD, follow_redirects=False).status_code == 303


def test_an_allowed_move_moves_the_card_and_refreshes_the_heads(
        client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    rep = client_for("rep_east1")
    before = heads(rep.get(BOARD).text)
    done = move(rep, deal, "offer")
    assert done.status_code == 200, done.text
    assert f'<hx-partial hx-target="#card-{deal.id}" hx-swap="delete">' in done.text
    assert '<hx-partial hx-target="#cards-offer" hx-swap="afterbegin">' in done.text
    after = heads(done.text)
    assert after["research"] == before["research"] - 1
    assert after["offer"] == before["offer"] + 1
    moved = demo_db.live.current().records.get(Actor.system(), "opportunity", deal.id)
    assert moved["stage"] == "offer" and moved.version == deal.version + 1
    assert f'name="version" value="{moved.version}"' in done.text


def test_a_refused_transition_returns_the_card_saying_why(client_for: Client,
                                                          demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", amount={"amount": "5", "currency": "CNY"},
                    expected_close="2027-01-31")
    rep = client_for("rep_east1")
    refused = move(rep, deal, "quote")
    assert refused.status_code == 409
    assert f'id="card-{deal.id}"' in refused.text and "hx-partial" not in refused.text
    assert "Cannot move from Background research to Quote. Allowed: Offer, Lost." \
        in refused.text
    assert 'data-at="research"' in refused.text
    assert demo_db.live.current().records.get(Actor.system(), "opportunity",
                                              deal.id)["stage"] == "research"
    bogus = move(rep, deal, "nowhere")
    assert bogus.status_code == 422
    chinese = rep.post(f"{BOARD}/{deal.id}/move?lang=zh-CN", headers=htmx(rep),
                       data={"to": "quote", "version": str(deal.version)})
    assert "不能从背景调研移到报价。可移到：方案提供, 输单。" in chinese.text


def test_missing_fields_are_asked_for_and_count_when_given(client_for: Client,
                                                           demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1")
    rep = client_for("rep_east1")
    refused = move(rep, deal, "offer")
    assert refused.status_code == 422
    assert "To enter Offer, fill in: Expected close." in refused.text
    assert 'name="expected_close"' in refused.text and 'type="date"' in refused.text
    done = move(rep, deal, "offer", expected_close="2027-02-28")
    assert done.status_code == 200
    stored = demo_db.live.current().records.get(Actor.system(), "opportunity", deal.id)
    assert (stored["stage"], str(stored["expected_close"])) == ("offer", "2027-02-28")
    # Fields the target stage does not ask for are not written by a move.
    again = move(rep, stored, "research", name="Renamed")
    assert again.status_code == 200
    assert demo_db.live.current().records.get(Actor.system(), "opportunity",
                                              deal.id)["name"] == "Deal"


def test_lost_asks_for_the_reason_as_a_select(client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1")
    rep = client_for("rep_east1")
    refused = move(rep, deal, "lost")
    assert refused.status_code == 422
    assert '<select name="loss_reason" required>' in refused.text
    assert move(rep, deal, "lost", loss_reason="price").status_code == 200


def test_stale_version_is_a_conflict(client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    demo_db.live.current().records.update(Actor.system(), "opportunity", deal.id,
                                          {"notes": "changed"}, version=deal.version)
    rep = client_for("rep_east1")
    stale = move(rep, deal, "offer")
    assert stale.status_code == 409
    assert f'name="version" value="{deal.version + 1}"' in stale.text


def test_another_reps_card_is_not_found_and_a_read_share_is_forbidden(
        client_for: Client, demo_db: DemoDB) -> None:
    theirs = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    other = client_for("rep_east2")
    gone = move(other, theirs, "offer")
    assert gone.status_code == 404
    assert "no longer yours to see" in gone.text and "kb-move" not in gone.text
    runtime = demo_db.live.current()
    with write_transaction(runtime.engine) as conn:
        share_record(conn, runtime.schema.table("opportunity"), theirs.id, access="read",
                     user_id=demo_db.user_id("rep_east2"))
    forbidden = move(other, theirs, "offer")
    assert forbidden.status_code == 403
    assert "You may not move this record." in forbidden.text
    assert runtime.records.get(Actor.system(), "opportunity", theirs.id)["stage"] == "research"


def test_moves_need_the_csrf_token_and_a_version(client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    rep = client_for("rep_east1")
    no_token = rep.post(f"{BOARD}/{deal.id}/move", data={"to": "offer", "version": "1"},
                        headers={"HX-Request": "true"})
    assert no_token.status_code == 403
    no_version = rep.post(f"{BOARD}/{deal.id}/move", data={"to": "offer"}, headers=htmx(rep))
    assert no_version.status_code == 400
    assert demo_db.live.current().records.get(Actor.system(), "opportunity",
                                              deal.id)["stage"] == "research"


def test_plain_form_posts_redirect_or_show_the_card_on_a_page(
        client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    rep = client_for("rep_east1")
    token = csrf(rep)
    refused = rep.post(f"{BOARD}/{deal.id}/move",
                       data={"to": "quote", "version": "1", "csrf_token": token})
    assert refused.status_code == 409
    assert "<html" in refused.text and "Back to the board" in refused.text
    done = rep.post(f"{BOARD}/{deal.id}/move",
                    data={"to": "offer", "version": "1", "csrf_token": token,
                          "next": f"/e/opportunity/{deal.id}"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/e/opportunity/{deal.id}"
    evil = rep.post(f"{BOARD}/{deal.id}/move",
                    data={"to": "research", "version": "2", "csrf_token": token,
                          "next": "//evil.example/"}, follow_redirects=False)
    assert evil.status_code == 303 and evil.headers["location"] == "/"


def test_the_stage_page_asks_for_what_the_target_needs(client_for: Client,
                                                       demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1")
    rep = client_for("rep_east1")
    page = rep.get(f"/e/opportunity/{deal.id}/stage?to=offer&lang=en")
    assert page.status_code == 200
    assert 'name="expected_close"' in page.text
    assert f'name="next" value="/e/opportunity/{deal.id}"' in page.text
    assert rep.get(f"/e/opportunity/{deal.id}/stage?to=quote").status_code == 200
    assert client_for("rep_east2").get(f"/e/opportunity/{deal.id}/stage?to=offer") \
        .status_code == 404


def test_a_column_pages_on_with_keyset_tokens(client_for: Client, demo_db: DemoDB) -> None:
    records = demo_db.live.current().records
    who = actor(demo_db, "rep_west1")
    customer = records.list(who, "customer", ListQuery(limit=1)).rows[0]
    records.bulk_create(who, "opportunity", [
        {"name": f"bulk {i}", "customer": customer.id, "stage": "lost", "loss_reason": "other"}
        for i in range(45)])
    rep = client_for("rep_west1")
    board = rep.get(BOARD)
    more = re.search(r'hx-get="(/e/opportunity/kanban/column/lost\?after=[^"]+)"', board.text)
    assert more, "the lost column should offer more"
    seen = set(re.findall(r'data-card="(\d+)" data-at="lost"', board.text))
    url: str | None = more.group(1).replace("&amp;", "&")
    pages = 0
    while url:
        page = rep.get(url, headers={"HX-Request": "true"})
        assert page.status_code == 200
        assert '<hx-partial hx-target="#cards-lost" hx-swap="beforeend">' in page.text
        ids = set(re.findall(r'data-card="(\d+)"', page.text))
        assert ids and not ids & seen
        seen |= ids
        nxt = re.search(r'hx-get="([^"]+)"', page.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        pages += 1
    expected = records.count(who, "opportunity", [Filter("stage", "eq", "lost")])
    assert len(seen) == expected and pages >= 2
    assert rep.get(f"{BOARD}/column/lost?after=garbage").status_code == 400


@pytest.mark.parametrize("login", ["rep_east1", "manager"])
def test_board_link_in_the_menu(client_for: Client, login: str) -> None:
    page = client_for(login).get("/?lang=en")
    assert f'href="{BOARD}"' in page.text
