"""A record entering a stage takes the stage's probability unless set by hand (both DBs)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from tests.integration.workflow._rules_world import World


def test_probability_follows_the_stage_unless_set_by_hand(
        make_rules_world: Callable[..., World]) -> None:
    w = make_rules_world()
    plain = w.item("a1")
    guessed = w.item("a1", chance=35)
    assert (w.row(plain).chance, w.row(guessed).chance) == (Decimal(10), Decimal(35))
    for item_id in (plain, guessed):
        record = w.records.get(w.system, "item", item_id)
        w.records.move_stage(w.system, "item", item_id, to="talk", version=record.version)
    assert (w.row(plain).chance, w.row(guessed).chance) == (Decimal(60), Decimal(60))
    record = w.records.get(w.system, "item", plain)
    w.records.move_stage(w.system, "item", plain, to="new", version=record.version,
                         values={"chance": 42})          # the rep's own judgement wins
    assert w.row(plain).chance == Decimal(42)
    record = w.records.get(w.system, "item", plain)
    w.records.move_stage(w.system, "item", plain, to="won", version=record.version)
    assert w.row(plain).chance == Decimal(42)            # "won" declares no probability
