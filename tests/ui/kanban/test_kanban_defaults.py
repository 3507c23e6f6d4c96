"""The kanban's "Move to" offers the next stage (never a previous one), and the win
probability takes the stage's on entry unless the same write gives one."""

from __future__ import annotations

import re
from decimal import Decimal

from engine.actor import Actor
from engine.records.stages import StageRules
from tests.ui.conftest import DemoDB
from tests.ui.kanban.test_kanban_routes import (  # noqa: F401  (module-scoped app fixture)
    BOARD,
    Client,
    app,
    move,
    new_deal,
)


def _selected(html: str, deal_id: int) -> str:
    card = html[html.index(f'id="card-{deal_id}"'):]
    card = card[:card.index("</article>")]
    found = re.search(r'<option value="([a-z_]+)" selected', card)
    assert found, card
    return found.group(1)


def test_move_to_defaults_to_the_next_stage(client_for: Client, demo_db: DemoDB) -> None:
    deal = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    rep = client_for("rep_east1")
    assert _selected(rep.get(BOARD).text, deal.id) == "offer"
    moved = move(rep, deal, "offer")
    assert moved.status_code == 200, moved.text
    # offer may go back to research, on to quote, or to lost: the default is quote
    assert _selected(rep.get(BOARD).text, deal.id) == "quote"


def test_forward_never_picks_an_earlier_stage(demo_db: DemoDB) -> None:
    from ui.kanban.board import Board

    runtime = demo_db.live.current()
    pipeline = runtime.registry.pipeline_for("opportunity")
    assert pipeline is not None
    board = Board.__new__(Board)
    board.rules = StageRules(pipeline)
    assert board.forward("closing", ["quote", "signed", "lost"]) == "signed"
    assert board.forward("lost", ["research"]) == "research"  # the only way out
    assert board.forward("won", []) == ""


def test_probability_follows_the_stage_on_entry(demo_db: DemoDB) -> None:
    records = demo_db.live.current().records
    deal = new_deal(demo_db, "rep_east1", expected_close="2027-01-31")
    assert deal["probability"] == Decimal(10)  # research
    moved = records.move_stage(Actor.system(), "opportunity", deal.id, to="offer",
                               version=deal.version)
    assert moved["probability"] == Decimal(30)
    # the rep's own estimate given with the move wins
    own = records.move_stage(Actor.system(), "opportunity", deal.id, to="quote",
                             version=moved.version,
                             values={"amount": "CNY 1000", "probability": 45})
    assert own["probability"] == Decimal(45)
    # an edit that does not move keeps the estimate
    edited = records.update(Actor.system(), "opportunity", deal.id, {"notes": "x"},
                            version=own.version)
    assert edited["probability"] == Decimal(45)
    given = records.create(Actor.system(), "opportunity", {
        "name": "Own", "customer": deal["customer"], "probability": 5})
    assert given["probability"] == Decimal(5)
