"""The "about to drop" tile: the records a rep (or a supervisor's team) holds that a drop
rule takes back within N days, soonest first, on SQLite and PostgreSQL. A rep's tile never
names another rep's record, not even one shared with the rep; the team version covers the
supervisor's department subtree and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from engine.errors import QueryError
from engine.reports.dashboard import fill
from engine.reports.dropping import about_to_drop
from tests.integration.permissions._crm_org import CrmOrg


def _now(org: CrmOrg) -> dt.datetime:
    """13 days after the newest customer was made: untouched_7d (14 days for grade B,
    as seeded) drops them within a day; grade A is exempt."""
    table = org.schema.table("customer")
    with org.engine.connect() as conn:
        newest = conn.execute(select(func.max(table.c.created_at))).scalar_one()
    newest = newest if newest.tzinfo else newest.replace(tzinfo=dt.UTC)
    return newest + dt.timedelta(days=13)


def keys(org: CrmOrg, login: str, *, team: bool, now: dt.datetime, days: int = 3) -> list[str]:
    found = about_to_drop(org.records, org.actor(login), entity="customer", days=days,
                          team=team, now=now)
    assert all(f.due_at <= now + dt.timedelta(days=days) for _, f in found.rows)
    assert [f.due_at for _, f in found.rows] == sorted(f.due_at for _, f in found.rows)
    return sorted(org.facts[("customer", r.id)].key for r, _ in found.rows)


def test_a_rep_sees_only_the_records_they_hold(org: CrmOrg) -> None:
    now = _now(org)
    # r1 may read r3's customer (shared) and held a deleted one: neither is on the tile
    assert org.records.get(org.actor("r1"), "customer", org.id("customer", "r3"))
    assert keys(org, "r1", team=False, now=now) == ["r1"]
    assert keys(org, "r3", team=False, now=now) == ["r3"]
    # r2's customer is grade A: exempt from the rule, so nothing drops
    assert keys(org, "r2", team=False, now=now) == []
    # asking for the team does not widen a rep's reach beyond their own row scope
    assert set(keys(org, "r1", team=True, now=now)) <= {"r1"} | {
        org.facts[("customer", i)].key for i in org.all_ids("customer")
        if org.facts[("customer", i)].owner == "r1"}


def test_the_supervisor_sees_the_team_and_no_other(org: CrmOrg) -> None:
    now = _now(org)
    assert keys(org, "sn", team=True, now=now) == ["n", "r1", "r5", "sn"]
    assert keys(org, "ss", team=True, now=now) == ["d", "r3", "r4", "ss"]
    assert keys(org, "sn", team=False, now=now) == ["sn"]


def test_nothing_is_about_to_drop_far_from_the_rule(org: CrmOrg) -> None:
    now = _now(org) - dt.timedelta(days=13)
    assert keys(org, "sn", team=True, now=now) == []
    assert keys(org, "sn", team=True, now=now, days=15) == ["n", "r1", "r5", "sn"]


@pytest.mark.parametrize("days", [0, 91, -1, True])
def test_days_out_of_range_are_refused(org: CrmOrg, days: int) -> None:
    with pytest.raises(QueryError):
        about_to_drop(org.records, org.actor("r1"), entity="customer", days=days, team=False,
                      now=_now(org))


def test_the_rep_and_supervisor_dashboards_carry_the_tile(org: CrmOrg) -> None:
    for login, team in (("r1", False), ("sn", True)):
        filled = fill(org.records, org.registry, org.actor(login))
        assert filled is not None
        (tile,) = [t for t in filled.tiles if t.tile.kind == "about_to_drop"]
        assert tile.dropping is not None and tile.dropping.team is team
        owners = {r.get("owner_id") for r, _ in tile.dropping.rows}
        if not team:
            assert owners <= {org.users["r1"]}
