"""Several pipelines on the kanban: one board per pipeline, cards moving in their own.

The CRM's opportunities pick their pipeline by business line: renewals follow
``opportunity_renewal``, everything else the default sales pipeline.
"""

from __future__ import annotations

import re

import pytest

from engine.actor import Actor
from tests.ui.conftest import DemoDB
from tests.ui.kanban.test_kanban_routes import BOARD, STAGES, Client, heads, move, new_deal

RENEWAL = ["renewal_review", "renewal_quote", "renewed", "churned"]


def test_each_pipeline_has_its_board_and_a_switcher(client_for: Client,
                                                    demo_db: DemoDB) -> None:
    renewal = new_deal(demo_db, "rep_east1", business_line="renewal")
    assert renewal["stage"] == "renewal_review"
    rep = client_for("rep_east1")
    default = rep.get(BOARD + "?lang=en")
    assert re.findall(r'data-column="([a-z_]+)"', default.text) == STAGES
    assert f'data-card="{renewal.id}"' not in default.text
    assert 'href="/e/opportunity/kanban?pipeline=opportunity_renewal"' in default.text
    page = rep.get(BOARD + "?pipeline=opportunity_renewal&lang=en")
    assert page.status_code == 200
    assert re.findall(r'data-column="([a-z_]+)"', page.text) == RENEWAL
    assert f'data-card="{renewal.id}"' in page.text and "Renewal review" in page.text
    assert 'name="pipeline" value="opportunity_renewal"' in page.text  # search keeps it
    assert heads(page.text)["renewal_review"] >= 1
    assert "续约评估" in rep.get(BOARD + "?pipeline=opportunity_renewal&lang=zh-CN").text


@pytest.mark.parametrize("bad", ["nowhere", "opportunity_sales%00", "x" * 300])
def test_an_unknown_pipeline_is_not_found(client_for: Client, bad: str) -> None:
    assert client_for("rep_east1").get(f"{BOARD}?pipeline={bad}").status_code == 404


def test_cards_move_in_their_own_pipeline(client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", business_line="renewal")
    rep = client_for("rep_east1")
    wrong = move(rep, deal, "offer")       # a stage of the sales pipeline
    assert wrong.status_code == 422
    assert "opportunity_sales" in wrong.text
    asked = move(rep, deal, "renewal_quote")
    assert asked.status_code == 422 and 'name="amount"' in asked.text
    done = move(rep, deal, "renewal_quote", amount="900", expected_close="2027-03-01")
    assert done.status_code == 200, done.text
    assert '<hx-partial hx-target="#cards-renewal_quote" hx-swap="afterbegin">' in done.text
    assert 'id="head-research"' not in done.text   # the heads of the renewal board only
    stored = demo_db.live.current().records.get(Actor.system(), "opportunity", deal.id)
    assert stored["stage"] == "renewal_quote"
