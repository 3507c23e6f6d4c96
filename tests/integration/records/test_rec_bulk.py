"""bulk_create: one transaction, per-row errors named by index, nothing partial."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import ValidationError
from engine.records import InputSource, ListQuery, RecordService
from engine.storage.tables import StorageSchema


def _count(engine: Engine, schema: StorageSchema, name: str) -> int:
    table = schema.tables[name] if name in schema.tables else schema.system[name]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_bulk_rows_come_back_like_single_creates(service: RecordService, system: Actor,
                                                 db_engine: Engine,
                                                 schema: StorageSchema) -> None:
    rows = [{"title": f"t{i}", "sku": f"S{i}", "qty": i, "price": "1.50", "kind": "x",
             "in_stock": i % 2 == 0} for i in range(1200)]
    ids = service.bulk_create(system, "item", rows)
    assert len(ids) == 1200 and len(set(ids)) == 1200
    last = service.get(system, "item", ids[-1])
    assert (last["title"], last["sku"], last["qty"]) == ("t1199", "S1199", 1199)
    assert last["price"] == Decimal("1.50") and last["in_stock"] is False
    assert _count(db_engine, schema, "tp_activity") == 1200
    feed = service.activity(system, "item", ids[7])
    assert {c.field: c.new for c in feed[0].changes}["title"] == "t7"
    assert service.bulk_create(system, "item", []) == []


def test_bad_rows_are_named_by_index_and_nothing_is_written(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    service.create(system, "item", {"title": "old", "sku": "TAKEN"})
    rows = [{"title": "ok", "sku": "A"},
            {"title": None, "sku": "B"},
            {"title": "ok", "sku": "A", "phone": "nope"},
            {"title": "ok", "sku": "TAKEN"},
            {"title": "ok", "colour": "red"}]
    with pytest.raises(ValidationError) as err:
        service.bulk_create(system, "item", rows)
    errors = err.value.field_errors
    assert errors["1.title"] == "is required"
    assert errors["2.phone"] == "is not a phone number"
    assert errors["4.colour"] == "unknown field 'colour'"
    assert _count(db_engine, schema, "item") == 1
    # Format errors come first; with them fixed the duplicates are reported.
    rows[1]["title"], rows[2]["phone"] = "ok", None
    del rows[4]["colour"]
    with pytest.raises(ValidationError) as err:
        service.bulk_create(system, "item", rows)
    assert "row 0" in err.value.field_errors["2.sku"]
    assert "already exists (id " in err.value.field_errors["3.sku"]
    assert _count(db_engine, schema, "item") == 1
    assert _count(db_engine, schema, "tp_activity") == 1


def test_bulk_from_csv_strings(service: RecordService, system: Actor) -> None:
    ids = service.bulk_create(system, "item", [
        {"title": "a", "qty": "1,000", "price": "2,500.75", "in_stock": "是",
         "released": "2026-11-23", "kind": ""}], source=InputSource.STRING)
    rec = service.get(system, "item", ids[0])
    assert rec["qty"] == 1000 and rec["price"] == Decimal("2500.75") and rec["in_stock"] is True
    assert rec["kind"] is None


def test_bulk_checks_references_per_row(service: RecordService, system: Actor) -> None:
    acc = service.create(system, "account", {"name": "A"})
    with pytest.raises(ValidationError) as err:
        service.bulk_create(system, "contact", [{"name": "x", "account": acc.id},
                                                {"name": "y", "account": 404}])
    assert err.value.field_errors == {"1.account": "no account with id 404"}
    assert service.list(system, "contact", ListQuery()).rows == []
