"""Rollups rebuilt from the base tables equal the raw aggregate and plain Python; the
leaderboard ranks from them, always shows the reader; targets are set top-down only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from engine.errors import ForbiddenError, QueryError, ValidationError
from engine.reports.catalog import catalog_of
from engine.reports.leaderboard import board
from engine.reports.periods import custom_window
from engine.reports.rollups import RollupKeeper
from engine.reports.targets import assignee_key, set_target
from engine.storage.database import write_transaction
from tests.integration.permissions._crm_org import INACTIVE, USERS, CrmOrg

FIRST, END = dt.date(2000, 1, 1), dt.date(2100, 1, 1)
NOW = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def rebuilt(org: CrmOrg) -> CrmOrg:
    keeper = RollupKeeper(org.schema, org.registry)
    with write_transaction(org.engine) as conn:
        keeper.rebuild(conn, org.records)
    return org


def test_rollups_equal_the_raw_aggregate_and_plain_python(rebuilt: CrmOrg) -> None:
    org = rebuilt
    keeper = RollupKeeper(org.schema, org.registry)
    with org.engine.connect() as conn:
        for m in catalog_of(org.registry).board_measures():
            raw = keeper.raw_totals(conn, org.records, m, first=FIRST, end=END)
            kept = keeper.rollup_totals(conn, m, first=FIRST, end=END)
            assert kept == raw, m.name
            if m.event is not None:   # counts pool events: the seed made none
                assert kept == {}
                continue
            expected: dict[int, int] = {}
            for (entity, _), fact in org.facts.items():
                if entity != m.entity or fact.deleted or fact.owner is None:
                    continue
                if any(fact.values.get(c.field) != c.value for c in m.filters):
                    continue
                if m.date_field != "created_at" and fact.values.get(m.date_field) is None:
                    continue
                uid = org.users[fact.owner]
                expected[uid] = expected.get(uid, 0) + 1
            assert {u: n for u, (n, _) in kept.items()} == expected, m.name


def test_won_amount_ranks_reps_and_ties_share_a_rank(rebuilt: CrmOrg) -> None:
    # The seeded won deals (r1 1200, r3 800) have no close date: give them one.
    org = rebuilt
    opp = org.schema.table("opportunity")
    day = dt.date(2030, 5, 20)
    with write_transaction(org.engine) as conn:
        conn.execute(opp.update().where(opp.c.stage == "won").values(expected_close=day))
        RollupKeeper(org.schema, org.registry).rebuild(conn, org.records, ["won_amount"])
    window = custom_window(dt.date(2030, 5, 1), dt.date(2030, 5, 31))
    everyone = board(org.records, org.registry, org.actor("r4"), measure="won_amount",
                     window=window, scope="all")
    top = [(s.name, s.value, s.rank) for s in everyone.standings[:2]]
    assert top == [("R1", Decimal(1200), 1), ("R3", Decimal(800), 2)]
    assert {s.rank for s in everyone.standings[2:]} == {3}    # the rest tie on zero
    assert everyone.mine is not None and everyone.mine.name == "R4"
    active = [u for u in USERS if u not in INACTIVE]
    assert everyone.people == len(active)
    team = board(org.records, org.registry, org.actor("r1"), measure="won_amount",
                 window=window, scope="team")
    north = {u.upper() for u, (d, _, _) in USERS.items() if d in ("north", "north_key")
             and u not in INACTIVE}
    assert {s.name for s in team.standings} == north
    assert team.mine is not None and team.mine.rank == 1


def test_the_leaderboard_refuses_unknown_measures_and_unbounded_periods(
        rebuilt: CrmOrg) -> None:
    window = custom_window(dt.date(2030, 5, 1), dt.date(2030, 5, 31))
    with pytest.raises(QueryError):
        board(rebuilt.records, rebuilt.registry, rebuilt.actor("r1"), measure="nope",
              window=window)
    with pytest.raises(QueryError):
        board(rebuilt.records, rebuilt.registry, rebuilt.actor("r1"), measure="won_amount",
              window=window, scope="galaxy")  # type: ignore[arg-type]
    with pytest.raises(ForbiddenError):     # "n" holds no role: no read on opportunities
        board(rebuilt.records, rebuilt.registry, rebuilt.actor("n"), measure="won_amount",
              window=window)


def test_targets_are_set_top_down_and_show_attainment(rebuilt: CrmOrg) -> None:
    org = rebuilt
    first, end = dt.date(2030, 5, 1), dt.date(2030, 6, 1)
    r1 = assignee_key(user_id=org.users["r1"])
    with pytest.raises(ForbiddenError):   # a rep may not set targets at all
        set_target(org.records, org.registry, org.actor("r2"), measure="won_amount",
                   first=first, end=end, assignee=r1, value="1000", now=NOW)
    with pytest.raises(ForbiddenError):   # the south supervisor does not manage r1
        set_target(org.records, org.registry, org.actor("ss"), measure="won_amount",
                   first=first, end=end, assignee=r1, value="1000", now=NOW)
    with pytest.raises(ValidationError):
        set_target(org.records, org.registry, org.actor("m"), measure="won_amount",
                   first=first, end=end, assignee=r1, value="-3", now=NOW)
    with pytest.raises(ValidationError):
        set_target(org.records, org.registry, org.actor("m"), measure="nope",
                   first=first, end=end, assignee=r1, value="3", now=NOW)
    set_target(org.records, org.registry, org.actor("m"), measure="won_amount",
               first=first, end=end, assignee=r1, value="1000", now=NOW)
    set_target(org.records, org.registry, org.actor("m"), measure="won_amount",
               first=first, end=end, assignee=r1, value="2400", now=NOW)  # replaces
    window = custom_window(first, end - dt.timedelta(days=1))
    ranked = board(org.records, org.registry, org.actor("r1"), measure="won_amount",
                   window=window, scope="team")
    assert ranked.mine is not None
    assert ranked.mine.target == Decimal(2400)
    assert ranked.mine.attainment == Decimal("0.5")
