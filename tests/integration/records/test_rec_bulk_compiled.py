"""Bulk create through the compiled row preparation, end to end on both databases: a row
stored by a bulk create reads back exactly as the same payload created alone, a batch
mixing good and bad rows names only the bad ones and stores nothing, and the pause of
cyclic garbage collection ends with every batch, refused or not."""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any

import pytest

from engine.actor import Actor
from engine.errors import ValidationError
from engine.records import InputSource, ListQuery, RecordService

#: Every field type the account has, as JSON and as form/CSV text.
JSON_ROW: dict[str, Any] = {
    "name": " Acme 有限公司 ", "phone": "+86 130-0000-0003", "email": "Ann@Example.COM",
    "website": "https://acme.example/a b", "licence_no": "AB12CD34", "city": "Shanghai",
    "revenue": {"amount": "1234.50", "currency": "cny"}, "employees": 12, "stars": 4,
    "score": "12.5", "ratio": 1.25, "founded": "2020-02-29",
    "next_call": "2026-12-01T09:30:00+08:00", "tier": "gold", "tags": ["a", "c", "a"],
    "location": {"lat": 31.2304, "lng": 121.4737}, "address": {"city": "Shanghai"},
    "notes": "first\nsecond"}
STRING_ROW: dict[str, Any] = {
    "name": "Beta Co", "phone": "130 0000 0004", "revenue": "USD 12.50", "employees": "1,200",
    "active": "否", "founded": "2021/03/01", "tier": "GOLD", "tags": "a，b",
    "location": "31.2,121.4", "address": "1 Road", "score": "50%"}


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items()
            if k not in ("id", "created_at", "updated_at", "number", "version")}


@pytest.mark.parametrize(("row", "source"), [(JSON_ROW, InputSource.JSON),
                                             (STRING_ROW, InputSource.STRING)],
                         ids=["json", "string"])
def test_a_bulk_row_reads_back_as_the_same_single_create(
        service: RecordService, system: Actor, row: dict[str, Any],
        source: InputSource) -> None:
    alone = service.create(system, "account", row, source=source)
    other = {**row, "phone": None, "licence_no": None}  # its unique keys are taken
    [bulk_id] = service.bulk_create(system, "account", [other], source=source)
    bulk = service.get(system, "account", bulk_id)
    expected = {**_comparable(dict(alone)), "phone": None, "licence_no": None}
    assert _comparable(dict(bulk)) == expected
    assert [c.field for c in service.activity(system, "account", bulk_id)[0].changes]


def test_a_mixed_batch_names_only_the_bad_rows_and_stores_nothing(
        service: RecordService, system: Actor) -> None:
    good = [{"name": f"n{i}", "employees": i, "revenue": {"amount": i, "currency": "CNY"}}
            for i in range(6)]
    rows = [*good[:2], {"name": "bad", "employees": "many", "stars": 9},
            *good[2:4], {"employees": 1}, *good[4:]]
    assert gc.isenabled()
    with pytest.raises(ValidationError) as err:
        service.bulk_create(system, "account", rows)
    assert err.value.field_errors == {"2.employees": "expected a whole number",
                                      "2.stars": "must be at most 5",
                                      "5.name": "is required"}
    assert gc.isenabled()
    assert service.list(system, "account", ListQuery()).rows == []
    ids = service.bulk_create(system, "account", good)
    assert gc.isenabled()
    stored = service.get(system, "account", ids[5])
    assert stored["revenue"] == {"amount": Decimal("5.00"), "currency": "CNY"}
    assert stored["active"] is True and stored["employees"] == 5


def _duplicates_the_long_way(plan: Any, rows: list[dict[str, Any]],
                             stored: dict[tuple[str, tuple[Any, ...]], int]
                             ) -> list[tuple[int, str, int | None, int | None]]:
    """(row, key, existing id, earlier row) per duplicate, row by row: the reference."""
    found = []
    for spec in plan.uniques:
        first: dict[tuple[Any, ...], int] = {}
        for i, row in enumerate(rows):
            k = spec.key_of(row)
            if None in k:
                continue
            if k in first:
                found.append((i, spec.name, None, first[k]))
                continue
            first[k] = i
            if (spec.name, k) in stored:
                found.append((i, spec.name, stored[spec.name, k], None))
    return sorted(found, key=lambda d: d[0])


def test_duplicates_of_a_batch_equal_the_row_by_row_reference(
        service: RecordService, system: Actor) -> None:
    """``duplicates`` builds a batch's wanted keys in C when none repeats: batches with and
    without repeats, empty keys (alone and twice) and stored keys find what a row-by-row
    walk finds, for a one-field key (phone) and a two-field one (licence, city)."""
    import random

    from engine.records._prepare import compiled_rows
    from engine.records._write import duplicates

    kept = service.bulk_create(system, "account", [
        {"name": "kept 1", "phone": "13000000001", "licence_no": "LIC0001", "city": "x"},
        {"name": "kept 2", "phone": "13000000002", "licence_no": "LIC0002", "city": None}])
    plan = service.plan("account")
    stored = {("phone", ("8613000000001",)): kept[0], ("phone", ("8613000000002",)): kept[1],
              ("licence_city", ("LIC0001", "x")): kept[0]}
    draw = random.Random(13)
    # A key with an empty part is no key, even where a stored record has it empty too.
    batches = [[{"phone": "13000000009", "licence_no": "LIC0002", "city": None},
                {"phone": None, "licence_no": "LIC0001", "city": "x"}]]
    for size, spread, empty in [(40, 9000, 0.0), (40, 9000, 0.03), (40, 30, 0.03),
                                (3, 3, 0.5), (60, 9000, 0.5)]:
        for _ in range(6):
            rows = [{"phone": None if draw.random() < empty else
                     f"1300000{draw.randrange(spread):04d}",
                     "licence_no": None if draw.random() < empty else
                     f"LIC{draw.randrange(spread // 10 + 1):04d}",
                     "city": draw.choice([None, "x", "y"])} for _ in range(size)]
            batches.append(rows)
    compiled = compiled_rows(plan, InputSource.JSON)
    for rows in batches:
        prepared = [{**r, "name": "n"} for r in rows]
        derived = compiled.derived(prepared)
        with service.engine.connect() as conn:
            got = duplicates(conn, plan, prepared,
                             row_keys=compiled.unique_keys(prepared, derived))
            by_spec = duplicates(conn, plan, prepared, specs=plan.uniques)
        expected = _duplicates_the_long_way(plan, prepared, stored)
        for found in (got, by_spec):
            assert [(d.index, d.spec.name, d.existing_id, d.earlier_row)
                    for d in found] == expected
