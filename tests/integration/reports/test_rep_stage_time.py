"""Time in stage from the stage history: average and median days per stage and per rep
equal plain Python over the moves made, and only readable records count."""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import Decimal

from sqlalchemy import Engine

from engine.actor import Actor
from engine.permissions.identity import create_user
from engine.records.service import RecordService
from engine.reports.catalog import report_of
from engine.reports.compiler import ReportRunner
from engine.reports.periods import window
from engine.reports.result import StayDrill
from engine.storage.database import write_transaction
from engine.storage.tables import build_schema
from tests.integration.permissions._crm_org import crm_registry

ROOT = Actor.system("test")
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def test_average_and_median_days_per_stage_and_rep(db_engine: Engine) -> None:
    registry = crm_registry()
    schema = build_schema(registry)
    schema.metadata.create_all(db_engine)
    with write_transaction(db_engine) as conn:
        a, b = (create_user(conn, login=x, display_name=x.upper()).id for x in ("a", "b"))
    clock = Clock()
    records = RecordService(engine=db_engine, schema=schema, clock=clock)
    customer = records.create(ROOT, "customer", {"name": "C"}).id
    # (owner, days in research before moving to offer, days in offer until "now")
    plans = [(a, 1.0, 2.0), (a, 4.0, 1.0), (b, 2.5, 0.5)]
    ids = []
    for owner, _, _ in plans:
        clock.now = T0
        ids.append(records.create(ROOT, "opportunity", {"name": "o", "customer": customer,
                                                        "owner_id": owner}).id)
    end = T0 + dt.timedelta(days=10)
    research: dict[int, list[float]] = {a: [], b: []}
    offer: dict[int, list[float]] = {a: [], b: []}
    for rid, (owner, first, _) in zip(ids, plans, strict=True):
        clock.now = T0 + dt.timedelta(days=first)
        version = records.get(ROOT, "opportunity", rid)["version"]
        records.move_stage(ROOT, "opportunity", rid, to="offer", version=version,
                           values={"expected_close": "2026-04-01"})
        research[owner].append(first)
        offer[owner].append((end - clock.now).total_seconds() / 86400)
    runner = ReportRunner(records, registry)
    # The open stays in "offer" count until the report runs: freeze "now" by subtracting.
    result = runner.run(ROOT, report_of(registry, "time_in_stage"),
                        window("all_time", today=dt.date(2026, 3, 12)))
    by_stage = {row.keys[0]: row.cells for row in result.rows}
    all_research = research[a] + research[b]
    assert by_stage["research"]["avg_days"].value == \
        Decimal(str(round(statistics.mean(all_research), 2)))
    assert by_stage["research"]["median_days"].value == \
        Decimal(str(round(statistics.median(all_research), 2)))
    drill = by_stage["research"]["avg_days"].drill
    assert isinstance(drill, StayDrill) and drill.stage == "research" and drill.owner is None
    assert by_stage["offer"]["avg_days"].value is not None    # open stays: until now
    assert by_stage["quote"]["avg_days"].value is None        # nobody stayed there
    by_rep = runner.run(ROOT, report_of(registry, "time_in_stage_by_rep"),
                        window("all_time", today=dt.date(2026, 3, 12)))
    cells = {row.keys: row.cells for row in by_rep.rows}
    assert cells[(a, "research")]["median_days"].value == \
        Decimal(str(round(statistics.median(research[a]), 2)))
    assert cells[(b, "research")]["avg_days"].value == Decimal("2.5")
    # each number's list holds exactly the stays it averages
    for (owner, stage), row in cells.items():
        got = row["avg_days"]
        if got.value is None:
            continue
        assert isinstance(got.drill, StayDrill) and (got.drill.owner, got.drill.stage) == \
            (owner, stage)
        listed = runner.stays(ROOT, report_of(registry, "time_in_stage_by_rep"), "avg_days",
                              got.drill.window, stage=stage, owner=owner)
        assert {x.record_id for x in listed} == {
            rid for rid, (o, _, _) in zip(ids, plans, strict=True) if o == owner}
        assert all(x.owner_id == owner and x.stage == stage for x in listed)
        if stage == "research":
            assert sorted(float(x.days) for x in listed) == sorted(research[owner])
    # A window before the stays began has none.
    empty = runner.run(ROOT, report_of(registry, "time_in_stage"),
                       window("last_month", today=dt.date(2026, 3, 12)))
    assert all(r.cells["avg_days"].value is None for r in empty.rows)


def test_renewals_are_reported_in_their_own_stages(db_engine: Engine) -> None:
    """Stage keys are unique across an entity's pipelines, so a renewal's stays and
    amounts land in renewal rows with their labels, never in a sales stage."""
    registry = crm_registry()
    schema = build_schema(registry)
    schema.metadata.create_all(db_engine)
    clock = Clock()
    records = RecordService(engine=db_engine, schema=schema, clock=clock)
    customer = records.create(ROOT, "customer", {"name": "C"}).id
    renewal = records.create(ROOT, "opportunity", {
        "name": "r", "customer": customer, "business_line": "renewal",
        "amount": {"amount": "300", "currency": "CNY"}})
    records.create(ROOT, "opportunity", {"name": "n", "customer": customer,
                                         "amount": {"amount": "100", "currency": "CNY"}})
    clock.now = T0 + dt.timedelta(days=3)
    records.move_stage(ROOT, "opportunity", renewal.id, to="renewal_quote",
                       version=renewal.version, values={"expected_close": "2026-04-01"})
    runner = ReportRunner(records, registry)
    today = window("all_time", today=dt.date(2026, 3, 12))
    pipeline = {row.keys[0]: row for row in runner.run(
        ROOT, report_of(registry, "opportunity_pipeline"), today).rows}
    assert pipeline["research"].cells["deals"].value == 1
    assert pipeline["renewal_quote"].cells["deals"].value == 1
    assert pipeline["renewal_review"].cells["deals"].value == 0
    assert pipeline["renewal_quote"].labels == ("Renewal quote",)
    stays = {row.keys[0]: row.cells for row in runner.run(
        ROOT, report_of(registry, "time_in_stage"), today).rows}
    assert stays["renewal_review"]["avg_days"].value == Decimal(3)
    assert stays["research"]["avg_days"].value is not None
