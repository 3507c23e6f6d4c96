"""Rollups kept by the in-transaction write hook equal the raw aggregate after random
sequences of creates, updates, stage moves, reassignments, deletes and restores, on
SQLite and PostgreSQL; a write that rolls back leaves the rollups untouched."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.errors import StageTransitionError, ValidationError
from engine.permissions.identity import create_user
from engine.records.service import RecordService
from engine.reports.catalog import catalog_of
from engine.reports.rollups import RollupKeeper
from engine.runtime import install_hooks
from engine.storage.database import write_transaction
from engine.storage.report_tables import ROLLUP_TABLE
from engine.storage.tables import build_schema
from tests.integration.permissions._crm_org import crm_registry
from tests.integration.permissions.conftest import module_db_url  # noqa: F401 (fixture)

ROOT = Actor.system("test")
FIRST, END = dt.date(2000, 1, 1), dt.date(2100, 1, 1)
CUSTOMER: list[int] = []
PHONES = itertools.count()


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[tuple[RecordService, RollupKeeper, list[int]]]:  # noqa: F811
    from sqlalchemy import create_engine

    engine: Engine = create_engine(module_db_url)
    registry = crm_registry()
    schema = build_schema(registry)
    schema.metadata.create_all(engine)
    with write_transaction(engine) as conn:
        users = [create_user(conn, login=f"u{i}", display_name=f"U{i}").id for i in range(3)]
    records = install_hooks(RecordService(engine=engine, schema=schema))
    CUSTOMER.append(records.create(ROOT, "customer", {"name": "Anchor"}).id)
    yield records, RollupKeeper(schema, registry), users
    engine.dispose()


def assert_rollups_equal_raw(records: RecordService, keeper: RollupKeeper) -> None:
    with records.engine.connect() as conn:
        for m in catalog_of(records.schema.registry).board_measures():
            raw = keeper.raw_totals(conn, records, m, first=FIRST, end=END)
            kept = keeper.rollup_totals(conn, m, first=FIRST, end=END)
            assert kept == raw, m.name


DAYS = st.dates(dt.date(2026, 1, 1), dt.date(2026, 1, 6))
AMOUNT = st.decimals(1, 5000, places=2)
STEP = st.one_of(
    st.tuples(st.just("opp"), st.integers(0, 2), st.sampled_from(["research", "won"]), AMOUNT,
              DAYS),
    st.tuples(st.just("amount"), st.integers(0, 30), AMOUNT),
    st.tuples(st.just("close"), st.integers(0, 30), DAYS),
    st.tuples(st.just("lose"), st.integers(0, 30)),
    st.tuples(st.just("reopen"), st.integers(0, 30)),
    st.tuples(st.just("assign"), st.integers(0, 30), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, 30)),
    st.tuples(st.just("restore"), st.integers(0, 30)),
    st.tuples(st.just("follow"), st.integers(0, 2), st.sampled_from(["call", "visit"]), DAYS),
    st.tuples(st.just("rekind"), st.integers(0, 30), st.sampled_from(["call", "visit"])),
    st.tuples(st.just("drop"), st.integers(0, 30)),
    st.tuples(st.just("leads"), st.integers(0, 2), st.integers(1, 3)),
    st.tuples(st.just("customer"), st.integers(0, 2)),
    st.tuples(st.just("give_back"), st.integers(0, 30)),
    st.tuples(st.just("claim"), st.integers(0, 30), st.integers(0, 2)),
)


def _pick(records: RecordService, entity: str, index: int, *, deleted: bool = False) -> Any:
    table = records.schema.table(entity)
    stmt = select(table.c.id, table.c.version).order_by(table.c.id)
    if "deleted_at" in table.c:
        stmt = stmt.where(table.c.deleted_at.is_not(None) if deleted
                          else table.c.deleted_at.is_(None))
    with records.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return rows[index % len(rows)] if rows else None


def run_step(records: RecordService, users: list[int], step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "opp":
        _, owner, stage, amount, close = step
        values: dict[str, Any] = {"name": "deal", "owner_id": users[owner],
                                  "customer": CUSTOMER[-1],
                                  "amount": {"amount": str(amount), "currency": "CNY"},
                                  "expected_close": close.isoformat(), "stage": stage}
        records.create(ROOT, "opportunity", values)
    elif kind == "follow":
        _, owner, what, day = step
        records.create(ROOT, "follow_up", {"kind": what, "owner_id": users[owner],
                                           "customer": CUSTOMER[-1], "content": "met",
                                           "happened_at": f"{day.isoformat()}T23:30:00+00:00"})
    elif kind == "leads":
        _, owner, n = step
        phones = [f"139{next(PHONES):08d}" for _ in range(n)]
        records.bulk_create(ROOT, "lead", [{"company_name": "shop", "owner_id": users[owner],
                                            "phone": p, "channel": "kol", "status": "new"}
                                           for p in phones])
    elif kind == "customer":
        records.create(ROOT, "customer", {"name": "shop", "owner_id": users[step[1]]})
    elif kind in ("give_back", "claim"):
        table = records.schema.table("customer")
        held = table.c.owner_id.is_not(None) if kind == "give_back" else \
            table.c.pool_id.is_not(None)
        with records.engine.connect() as conn:
            ids = conn.execute(select(table.c.id).where(held).order_by(table.c.id)).scalars()
            found = list(ids)
        if not found:
            return
        rid = found[step[1] % len(found)]
        with records.transaction(ROOT) as tx:
            if kind == "give_back":
                tx.reown("customer", [rid], owner_id=None, pool_id="customer_pool",
                         kind="return", action=None)
            else:
                tx.reown("customer", [rid], owner_id=users[step[2]], pool_id=None,
                         kind="claim", action=None)
    elif kind in ("rekind", "drop"):
        row = _pick(records, "follow_up", step[1])
        if row is None:
            return
        if kind == "rekind":
            records.update(ROOT, "follow_up", row.id, {"kind": step[2]}, version=row.version)
        else:
            records.delete(ROOT, "follow_up", row.id)
    else:
        row = _pick(records, "opportunity", step[1], deleted=kind == "restore")
        if row is None:
            return
        if kind == "amount":
            records.update(ROOT, "opportunity", row.id,
                           {"amount": {"amount": str(step[2]), "currency": "CNY"}},
                           version=row.version)
        elif kind == "close":
            records.update(ROOT, "opportunity", row.id, {"expected_close": step[2].isoformat()},
                           version=row.version)
        elif kind == "lose":
            records.move_stage(ROOT, "opportunity", row.id, to="lost", version=row.version,
                               values={"loss_reason": "price"})
        elif kind == "reopen":
            records.move_stage(ROOT, "opportunity", row.id, to="research", version=row.version)
        elif kind == "assign":
            owner = users[step[2]] if step[2] < len(users) else None
            records.assign(ROOT, "opportunity", row.id, owner)
        elif kind == "delete":
            records.delete(ROOT, "opportunity", row.id)
        else:
            records.restore(ROOT, "opportunity", row.id)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=12))
def test_rollups_equal_raw_aggregates_after_random_writes(
        world: tuple[RecordService, RollupKeeper, list[int]], steps: list[Any]) -> None:
    records, keeper, users = world
    for step in steps:
        try:
            run_step(records, users, step)
        except StageTransitionError:
            pass   # a refused move (e.g. won is terminal) writes nothing, rollups included
    assert_rollups_equal_raw(records, keeper)


def test_a_refused_write_leaves_the_rollups_as_they_were(
        world: tuple[RecordService, RollupKeeper, list[int]]) -> None:
    records, keeper, users = world
    table = records.schema.system[ROLLUP_TABLE]
    with records.engine.connect() as conn:
        before = sorted(conn.execute(select(table)).all())
    with pytest.raises(ValidationError):   # won needs an amount: nothing is written
        records.create(ROOT, "opportunity", {"name": "x", "owner_id": users[0],
                                             "customer": CUSTOMER[-1], "content": "met", "stage": "won"})
    with records.engine.connect() as conn:
        assert sorted(conn.execute(select(table)).all()) == before
    assert_rollups_equal_raw(records, keeper)


def test_a_won_deal_adds_its_amount_to_its_owner_on_its_close_day(
        world: tuple[RecordService, RollupKeeper, list[int]]) -> None:
    records, keeper, users = world
    m = catalog_of(records.schema.registry).board_measure("won_amount")
    assert m is not None
    day = dt.date(2031, 3, 3)
    records.create(ROOT, "opportunity", {"name": "big", "owner_id": users[2], "stage": "won",
                                         "customer": CUSTOMER[-1],
                                         "amount": {"amount": "777.70", "currency": "CNY"},
                                         "expected_close": day.isoformat()})
    with records.engine.connect() as conn:
        kept = keeper.rollup_totals(conn, m, first=day, end=day + dt.timedelta(days=1))
    assert kept == {users[2]: (1, Decimal("777.70"))}


def test_a_claim_counts_for_the_claimer_on_the_day_and_matches_the_ledger(
        world: tuple[RecordService, RollupKeeper, list[int]]) -> None:
    records, keeper, users = world
    m = catalog_of(records.schema.registry).board_measure("claims")
    assert m is not None and m.event == "claim"
    rid = records.create(ROOT, "customer", {"name": "to claim", "owner_id": users[0]}).id
    with records.transaction(ROOT) as tx:
        tx.reown("customer", [rid], owner_id=None, pool_id="customer_pool", kind="return",
                 action=None)
    today = dt.datetime.now(dt.UTC).date()
    with records.engine.connect() as conn:
        before = keeper.rollup_totals(conn, m, first=today, end=today + dt.timedelta(days=1))
    with records.transaction(ROOT) as tx:
        tx.reown("customer", [rid], owner_id=users[1], pool_id=None, kind="claim",
                 action=None)
    with records.engine.connect() as conn:
        after = keeper.rollup_totals(conn, m, first=today, end=today + dt.timedelta(days=1))
    n = before.get(users[1], (0, Decimal(0)))[0]
    assert after[users[1]][0] == n + 1
    assert_rollups_equal_raw(records, keeper)


def test_batches_moved_alike_keep_the_rollups_exact(
        world: tuple[RecordService, RollupKeeper, list[int]]) -> None:
    """Several records of several owners moved by one reown reach the keeper as batches
    (one per owner left): new customers leave their holders, claims count per record."""
    records, keeper, users = world
    ids = [records.create(ROOT, "customer", {"name": f"batch {i}",
                                             "owner_id": users[i % 2]}).id for i in range(5)]
    assert_rollups_equal_raw(records, keeper)
    with records.transaction(ROOT) as tx:
        tx.reown("customer", ids, owner_id=None, pool_id="customer_pool", kind="drop",
                 action=None)
    assert_rollups_equal_raw(records, keeper)
    m = catalog_of(records.schema.registry).board_measure("claims")
    assert m is not None
    today = dt.datetime.now(dt.UTC).date()
    with records.engine.connect() as conn:
        before = keeper.rollup_totals(conn, m, first=today, end=today + dt.timedelta(days=1))
    with records.transaction(ROOT) as tx:
        tx.reown("customer", ids, owner_id=users[2], pool_id=None, kind="claim", action=None)
    with records.engine.connect() as conn:
        after = keeper.rollup_totals(conn, m, first=today, end=today + dt.timedelta(days=1))
    assert after[users[2]][0] == before.get(users[2], (0, Decimal(0)))[0] + 5
    assert_rollups_equal_raw(records, keeper)


def test_a_bulk_create_counts_a_plain_measure_without_a_call_per_record(
        world: tuple[RecordService, RollupKeeper, list[int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """new_customers (a count, no filters) is counted inline: the records of a bulk create
    share their instant, so the day is worked out once (one ``_counted`` call), not once per
    record, and the rollups still equal the raw count."""
    from engine.reports import rollups

    records, keeper, users = world
    calls: list[str] = []
    counted = rollups._counted

    def counting(m: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(m.name)
        return counted(m, *args, **kwargs)

    monkeypatch.setattr(rollups, "_counted", counting)
    records.bulk_create(ROOT, "customer", [{"name": f"plain {i}", "owner_id": users[i % 3]}
                                          for i in range(40)])
    assert calls.count("new_customers") == 1
    assert_rollups_equal_raw(records, keeper)
