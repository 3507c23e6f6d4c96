"""Unique keys compare normalised values on every write path, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.errors import DuplicateError, ValidationError
from engine.records import RecordService
from engine.storage.tables import StorageSchema
from tests.integration.records.test_rec_concurrency import race


def _keys(engine: Engine, schema: StorageSchema, entity: str, column: str) -> list[object]:
    table = schema.table(entity)
    with engine.connect() as conn:
        return list(conn.execute(select(table.c[column]).order_by(table.c.id)).scalars())


@pytest.mark.parametrize("spelling", ["130 0000 0003", "86 13000000003", "0086-130-0000-0003",
                                      "+86 (130) 0000 0003"])
def test_create_refuses_another_spelling_of_a_phone(service: RecordService, system: Actor,
                                                    spelling: str) -> None:
    first = service.create(system, "account", {"name": "A", "phone": "+86 130-0000-0003"})
    with pytest.raises(DuplicateError) as raised:
        service.create(system, "account", {"name": "B", "phone": spelling})
    assert raised.value.existing_id == first.id
    assert raised.value.key == "phone"
    assert raised.value.values == {"phone": spelling}  # quoted as typed, not as its key
    assert service.count(system, "account") == 1


def test_value_is_kept_as_typed_and_its_key_stored(service: RecordService, system: Actor,
                                                   db_engine: Engine,
                                                   schema: StorageSchema) -> None:
    rec = service.create(system, "account", {"name": "A", "phone": "+86 130-0000-0003",
                                             "licence_no": "AB12345", "city": " Shanghai "})
    assert rec["phone"] == "+86 130-0000-0003"
    assert _keys(db_engine, schema, "account", "phone__key") == ["8613000000003"]
    service.update(system, "account", rec.id, {"phone": "010-1234 5678"}, version=1)
    assert _keys(db_engine, schema, "account", "phone__key") == ["861012345678"]
    service.update(system, "account", rec.id, {"phone": None}, version=2)
    assert _keys(db_engine, schema, "account", "phone__key") == [None]


def test_update_refuses_a_taken_key(service: RecordService, system: Actor) -> None:
    first = service.create(system, "account", {"name": "A", "phone": "13000000003"})
    other = service.create(system, "account", {"name": "B", "phone": "13000000004"})
    with pytest.raises(DuplicateError) as raised:
        service.update(system, "account", other.id, {"phone": "+86 130 0000 0003"}, version=1)
    assert raised.value.existing_id == first.id
    # Re-spelling one's own number is not a duplicate of oneself.
    again = service.update(system, "account", first.id, {"phone": "130-0000-0003"}, version=1)
    assert again["phone"] == "130-0000-0003"


def test_bulk_create_refuses_spellings_within_the_batch_and_against_the_table(
        service: RecordService, system: Actor) -> None:
    service.create(system, "account", {"name": "A", "phone": "13000000003"})
    with pytest.raises(ValidationError) as raised:
        service.bulk_create(system, "account", [
            {"name": "B", "phone": "13100000001"},
            {"name": "C", "phone": "+86 131 0000 0001"},
            {"name": "D", "phone": "86 130 0000 0003"}])
    errors = raised.value.field_errors
    assert set(errors) == {"1.phone", "2.phone"}
    assert "row 0" in errors["1.phone"]
    assert service.count(system, "account") == 1


def test_email_and_composite_keys_fold_case_width_and_space(service: RecordService,
                                                            system: Actor) -> None:
    acc = service.create(system, "account", {"name": "A", "licence_no": "AB12345",
                                             "city": "Shanghai"})
    with pytest.raises(DuplicateError):
        service.create(system, "account", {"name": "B", "licence_no": "AB12345",
                                           "city": "  SHANGHAI "})
    service.create(system, "account", {"name": "C", "licence_no": "AB12345", "city": "Beijing"})
    service.create(system, "contact", {"name": "x", "account": acc.id, "email": "Ann@Ex.com"})
    with pytest.raises(DuplicateError):
        service.create(system, "contact", {"name": "y", "account": acc.id,
                                           "email": " ann@EX.COM"})


def test_racing_spellings_one_wins(service: RecordService, system: Actor) -> None:
    # Both pass the service's lookup; the unique constraint on the key column decides.
    for round_ in range(3):
        number = f"1380000{round_:04d}"
        results = race(
            lambda n=number: service.create(system, "account", {"name": "L", "phone": n}),
            lambda n=number: service.create(system, "account",
                                            {"name": "R", "phone": f"+86 {n[:3]} {n[3:]}"}))
        dups = [r for r in results if isinstance(r, DuplicateError)]
        wins = [r for r in results if not isinstance(r, Exception)]
        assert len(dups) == 1 and len(wins) == 1, results
        assert dups[0].existing_id == wins[0].id
