"""Kanban column heads at scale: counts stop at a cap ("N+", no total), exact on request.

The cap is set small through ``TIDEPOOL_KANBAN_COUNT_CAP`` so a handful of rows
shows the behaviour that 1M rows would (bench/bench_kanban.py measures that).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from engine.errors import QueryError
from engine.records import ListQuery
from tests.ui.conftest import SECRET, DemoDB
from tests.ui.kanban.test_kanban_routes import actor, new_deal
from ui.app import create_app
from ui.kanban.board import DEFAULT_COUNT_CAP
from ui.kanban.routes import count_cap

Client = Callable[[str | None], TestClient]
BOARD = "/e/opportunity/kanban"


@pytest.fixture(scope="module")
def app(demo_db: DemoDB):  # type: ignore[no-untyped-def]
    return create_app(demo_db.live, secret_key=SECRET, api_module=None,
                      screen_modules=["ui.auth", "ui.screens.home", "ui.kanban.routes"])


def head(html: str, stage: str) -> tuple[str, str]:
    """(count as shown, total as shown) of one column head."""
    found = re.search(rf'id="head-{stage}">.*?class="kb-count"[^>]*>([^<]*)<(.*?)</header>',
                      html, re.DOTALL)
    assert found is not None, stage
    total = re.search(r'class="kb-total">([^<]*)<', found.group(2))
    return found.group(1), total.group(1) if total else ""


def research_count(demo_db: DemoDB, login: str) -> int:
    records = demo_db.live.current().records
    groups = records.group_counts(actor(demo_db, login), "opportunity", "stage")
    return next((g.count for g in groups if g.key == "research"), 0)


def test_a_column_past_the_cap_says_n_plus_without_a_total_and_exact_is_one_click_away(
        client_for: Client, demo_db: DemoDB, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        new_deal(demo_db, "rep_east1", amount={"amount": "10", "currency": "CNY"})
    visible = research_count(demo_db, "rep_east1")
    monkeypatch.setenv("TIDEPOOL_KANBAN_COUNT_CAP", str(visible - 1))
    rep = client_for("rep_east1")
    page = rep.get(BOARD + "?lang=en")
    assert page.status_code == 200
    assert head(page.text, "research") == (f"{visible - 1:,}+", "")
    assert f"More than {visible - 1:,} records" in page.text
    link = re.search(r'href="([^"]*exact=1[^"]*)"', page.text)
    assert link is not None and "Show exact counts and totals" in page.text
    exact = rep.get(link.group(1).replace("&amp;", "&"))
    count, total = head(exact.text, "research")
    assert count == f"{visible:,}" and "CNY" in total
    assert "exact=1" not in exact.text
    zh = client_for("rep_east1").get(BOARD + "?lang=zh-CN")
    assert head(zh.text, "research")[0] == f"{visible - 1:,}+"
    assert "显示精确的数量和合计" in zh.text


def test_a_column_below_the_cap_is_exact_with_its_total(
        client_for: Client, demo_db: DemoDB, monkeypatch: pytest.MonkeyPatch) -> None:
    new_deal(demo_db, "rep_east1", amount={"amount": "10", "currency": "CNY"})
    visible = research_count(demo_db, "rep_east1")
    monkeypatch.setenv("TIDEPOOL_KANBAN_COUNT_CAP", str(visible))  # exactly at the cap: exact
    page = client_for("rep_east1").get(BOARD + "?lang=en")
    count, total = head(page.text, "research")
    assert count == f"{visible:,}" and "CNY" in total
    assert "exact=1" not in page.text


def test_a_reps_capped_counts_never_include_another_teams_rows(demo_db: DemoDB) -> None:
    records = demo_db.live.current().records
    east, west = actor(demo_db, "rep_east1"), actor(demo_db, "rep_west1")
    keys = ["research", "offer", "won"]
    before = records.capped_group_counts(east, "opportunity", "stage", keys, cap=10_000,
                                         sum_field="amount")
    theirs = [new_deal(demo_db, "rep_west1", amount={"amount": "7", "currency": "USD"})
              for _ in range(3)]
    after = records.capped_group_counts(east, "opportunity", "stage", keys, cap=10_000,
                                        sum_field="amount")
    assert after == before  # west's new deals are nowhere in east's heads
    mine = {r.id for r in records.list(east, "opportunity", ListQuery(limit=200)).rows}
    assert not mine & {d.id for d in theirs}
    exact = {g.key: g.count for g in records.group_counts(east, "opportunity", "stage")}
    assert {g.key: g.count for g in after if g.count} == {k: exact[k] for k in keys if k in exact}
    west_research = records.capped_group_counts(west, "opportunity", "stage", ["research"],
                                                cap=1)
    assert west_research[0].capped and west_research[0].count == 1


def test_bad_caps_are_refused_or_ignored(demo_db: DemoDB,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    records = demo_db.live.current().records
    east = actor(demo_db, "rep_east1")
    for bad in (0, -5):
        with pytest.raises(QueryError):
            records.capped_group_counts(east, "opportunity", "stage", ["research"], cap=bad)
    with pytest.raises(QueryError):  # not a field one may group by
        records.capped_group_counts(east, "opportunity", "nothing", ["x"], cap=5)
    for setting in ("", "0", "-1", "abc", "1e3", "²"):
        monkeypatch.setenv("TIDEPOOL_KANBAN_COUNT_CAP", setting)
        assert count_cap() == DEFAULT_COUNT_CAP
    monkeypatch.setenv("TIDEPOOL_KANBAN_COUNT_CAP", "250")
    assert count_cap() == 250
