"""Rollup deltas: after any sequence of writes, the sum of the deltas equals the rollup
recomputed from the final rows (the property the in-transaction hook relies on)."""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.metadata.loader import load_packages
from engine.reports.rollups import RollupKeeper, contribution
from engine.storage.tables import build_schema
from tests.conftest import REPO_ROOT


@functools.cache
def keeper() -> RollupKeeper:
    registry = load_packages([REPO_ROOT / "apps" / "crm"])
    return RollupKeeper(build_schema(registry), registry)


@dataclass
class Event:
    entity: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


OWNERS = st.sampled_from([None, 1, 2, 3])
STAGES = st.sampled_from(["research", "quote", "won", "lost"])
DAYS = st.one_of(st.none(), st.dates(dt.date(2026, 1, 1), dt.date(2026, 1, 10)))
AMOUNTS = st.one_of(st.none(), st.decimals(0, 10_000, places=2))
ROW = st.fixed_dictionaries({"owner_id": OWNERS, "stage": STAGES, "expected_close": DAYS,
                             "amount": AMOUNTS,
                             "created_at": st.datetimes(dt.datetime(2026, 1, 1),
                                                        dt.datetime(2026, 1, 5),
                                                        timezones=st.just(dt.UTC))})
OPS = st.lists(st.tuples(st.sampled_from(["create", "update", "delete", "restore"]),
                         st.integers(0, 5), ROW), max_size=40)


def totals(rows: list[dict[str, Any]]) -> dict[tuple[str, dt.date, int], tuple[int, Decimal]]:
    out: dict[tuple[str, dt.date, int], tuple[int, Decimal]] = defaultdict(
        lambda: (0, Decimal(0)))
    for measures in keeper().measures.values():
        for m in measures:
            if m.entity != "opportunity":
                continue
            for row in rows:
                got = contribution(m, row, keeper().amount_column(m))
                if got is not None:
                    n, t = out[(m.name, got[1], got[0])]
                    out[(m.name, got[1], got[0])] = (n + 1, t + got[2])
    return {k: v for k, v in out.items() if v != (0, Decimal(0))}


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_deltas_add_up_to_the_rollup_of_the_final_rows(ops: list[Any]) -> None:
    rows: dict[int, dict[str, Any]] = {}
    kept: dict[tuple[str, dt.date, int], tuple[int, Decimal]] = defaultdict(
        lambda: (0, Decimal(0)))
    for op, index, values in ops:
        before = rows.get(index)
        if op == "create" and before is None:
            after: dict[str, Any] | None = {**values, "deleted_at": None}
        elif op == "update" and before is not None and before["deleted_at"] is None:
            after = {**before, **{k: v for k, v in values.items() if k != "created_at"}}
        elif op == "delete" and before is not None:
            after = {**before, "deleted_at": dt.datetime(2026, 2, 1, tzinfo=dt.UTC)}
        elif op == "restore" and before is not None:
            after = {**before, "deleted_at": None}
        else:
            continue
        rows[index] = after
        for key, delta in keeper().deltas([Event("opportunity", before, after)]).items():
            n, t = kept[key]
            kept[key] = (n + delta.count, t + delta.total)
    expected = totals(list(rows.values()))
    assert {k: v for k, v in kept.items() if v != (0, Decimal(0))} == expected


def test_a_won_deal_counts_on_its_close_day_for_its_owner() -> None:
    m = next(m for ms in keeper().measures.values() for m in ms if m.name == "won_amount")
    row = {"owner_id": 7, "stage": "won", "expected_close": dt.date(2026, 3, 4),
           "amount": Decimal("12.50"), "deleted_at": None}
    assert contribution(m, row, "amount") == (7, dt.date(2026, 3, 4), Decimal("12.50"))
    assert contribution(m, {**row, "stage": "quote"}, "amount") is None
    assert contribution(m, {**row, "owner_id": None}, "amount") is None
    assert contribution(m, {**row, "deleted_at": dt.datetime(2026, 3, 5)}, "amount") is None
