"""Bad payloads: one ValidationError with a message per field, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import DuplicateError, ValidationError
from engine.records import InputSource, RecordService
from engine.storage.tables import StorageSchema
from tests.integration.records._docs import add_user

BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"name": None}, "name", "is required"),
    ({"name": "   "}, "name", "is required"),
    ({"name": "x" * 101}, "name", "at most 100 characters"),
    ({"email": "not-an-email"}, "email", "not an email address"),
    ({"website": "ftp://example.com"}, "website", "web address"),
    ({"phone": "call me"}, "phone", "not a phone number"),
    ({"licence_no": "ab"}, "licence_no", "is not in the expected format"),
    ({"employees": -1}, "employees", "at least 0"),
    ({"employees": 1.5}, "employees", "whole number"),
    ({"employees": "many"}, "employees", "whole number"),
    ({"stars": 6}, "stars", "at most 5"),
    ({"stars": 0}, "stars", "at least 1"),
    ({"score": 101}, "score", "at most 100"),
    ({"ratio": "1.2345"}, "ratio", "3 digits after the decimal point"),
    ({"ratio": "12345678.1"}, "ratio", "too large"),
    ({"revenue": "12.50 EURO"}, "revenue", "not a number"),
    ({"revenue": {"amount": "1", "currency": "E1"}}, "revenue", "three-letter code"),
    ({"revenue": {"amount": "-1", "currency": "CNY"}}, "revenue", "at least 0"),
    ({"active": "maybe"}, "active", "not yes/no"),
    ({"founded": "2026-13-01"}, "founded", "not a date"),
    ({"next_call": "tomorrow"}, "next_call", "not a date and time"),
    ({"tier": "platinum"}, "tier", "not one of the options"),
    ({"tags": ["a", "zz"]}, "tags", "not one of the options"),
    ({"tags": 3}, "tags", "list of option values"),
    ({"location": "91,10"}, "location", "latitude"),
    ({"location": "1,2,3"}, "location", "latitude,longitude"),
    ({"address": [1]}, "address", "expected an object"),
    ({"logo": {"name": "x.pdf", "content_type": "application/pdf", "size": 10}}, "logo",
     "file type"),
    ({"logo": {"name": "x.png", "content_type": "image/png", "size": 5000}}, "logo",
     "larger than"),
    ({"parent": "abc"}, "parent", "whole number"),
    ({"parent": 0}, "parent", "record id"),
    ({"colour": "red"}, "colour", "unknown field 'colour'"),
    ({"id": 5}, "id", "set by the system"),
    ({"version": 3}, "version", "set by the system"),
    ({"created_at": "2026-01-01"}, "created_at", "set by the system"),
    ({"number": "ACC-1"}, "number", "numbered automatically"),
]


def _count(engine: Engine, schema: StorageSchema, table: str) -> int:
    t = schema.tables.get(table) if table in schema.tables else schema.system[table]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t)).scalar_one())


def test_each_bad_value_is_named(service: RecordService, system: Actor, db_engine: Engine,
                                 schema: StorageSchema) -> None:
    # One database for the whole table: a fresh one per case costs more than the cases.
    wrong: dict[str, object] = {}
    for payload, field, message in BAD:
        try:
            service.create(system, "account", {"name": "Acme", **payload})
        except ValidationError as err:
            errors = err.field_errors
            if set(errors) != {field} or message not in errors[field]:
                wrong[repr(payload)] = errors
        else:
            wrong[repr(payload)] = "accepted"
    assert wrong == {}
    assert _count(db_engine, schema, "account") == 0
    assert _count(db_engine, schema, "tp_activity") == 0


def test_all_errors_come_in_one_exception(service: RecordService, system: Actor) -> None:
    with pytest.raises(ValidationError) as err:
        service.create(system, "account", {"email": "x", "stars": 9, "bogus": 1})
    assert set(err.value.field_errors) == {"name", "email", "stars", "bogus"}


def test_update_checks_only_what_it_touches(service: RecordService, system: Actor) -> None:
    rec = service.create(system, "account", {"name": "Acme"})
    # name is required but absent from the payload: fine on update.
    assert service.update(system, "account", rec.id, {"employees": 2}, version=1).version == 2
    with pytest.raises(ValidationError) as err:
        service.update(system, "account", rec.id, {"name": "", "stars": 7, "version": 9},
                       version=2)
    assert err.value.field_errors == {"name": "is required", "stars": "must be at most 5",
                                      "version": "is set by the system"}
    with pytest.raises(ValidationError) as err:
        service.update(system, "account", rec.id, {"owner_id": 1}, version=2)
    assert err.value.field_errors == {"owner_id": "is set by the system"}
    assert service.get(system, "account", rec.id).version == 2


def test_string_source_reads_form_input(service: RecordService, system: Actor) -> None:
    rec = service.create(system, "account", {
        "name": "Acme", "employees": "1,234", "active": "yes", "revenue": "12.5",
        "tags": "", "founded": "2026/11/23", "score": ""}, source=InputSource.STRING)
    assert rec["employees"] == 1234 and rec["active"] is True
    assert rec["revenue"]["currency"] == "CNY" and rec["tags"] is None and rec["score"] is None
    with pytest.raises(ValidationError) as err:
        service.create(system, "account", {"name": "B", "active": "perhaps"},
                       source=InputSource.STRING)
    assert "active" in err.value.field_errors


def test_references_must_exist_and_be_live(service: RecordService, system: Actor,
                                           db_engine: Engine, schema: StorageSchema) -> None:
    acc = service.create(system, "account", {"name": "A"})
    with pytest.raises(ValidationError) as err:
        service.create(system, "contact", {"name": "C", "account": 42})
    assert err.value.field_errors == {"account": "no account with id 42"}
    service.delete(system, "account", acc.id)
    with pytest.raises(ValidationError) as err:
        service.create(system, "contact", {"name": "C", "account": acc.id})
    assert err.value.field_errors == {"account": f"no account with id {acc.id}"}
    live = service.create(system, "account", {"name": "B"})
    con = service.create(system, "contact", {"name": "C", "account": live.id})
    with pytest.raises(ValidationError) as err:
        service.update(system, "contact", con.id, {"account": 999}, version=1)
    assert err.value.field_errors == {"account": "no account with id 999"}
    with pytest.raises(ValidationError) as err:
        service.create(system, "contact", {"name": "C"})
    assert err.value.field_errors == {"account": "is required"}


def test_user_fields_need_an_active_user(service: RecordService, system: Actor,
                                         db_engine: Engine, schema: StorageSchema) -> None:
    active = add_user(db_engine, schema, "ann")
    gone = add_user(db_engine, schema, "old", active=False)
    assert service.create(system, "account", {"name": "A", "manager": active})["manager"] == active
    with pytest.raises(ValidationError) as err:
        service.create(system, "account", {"name": "B", "manager": gone, "owner_id": 777})
    assert err.value.field_errors == {"manager": f"no active user with id {gone}",
                                      "owner_id": "no active user with id 777"}


def test_readonly_fields_from_the_policy(db_engine: Engine, schema: StorageSchema,
                                         system: Actor) -> None:
    from tests.integration.records.test_rec_scopes import FakePolicy
    svc = RecordService(engine=db_engine, schema=schema,
                        policy=FakePolicy(readonly=frozenset({"employees"})))
    with pytest.raises(ValidationError) as err:
        svc.create(system, "account", {"name": "A", "employees": 3})
    assert err.value.field_errors == {"employees": "is read-only for you"}
    rec = svc.create(system, "account", {"name": "A"})
    with pytest.raises(ValidationError):
        svc.update(system, "account", rec.id, {"employees": 3}, version=1)


# --- unique keys --------------------------------------------------------------

def test_duplicate_single_key_names_the_existing_record(service: RecordService,
                                                        system: Actor) -> None:
    first = service.create(system, "account", {"name": "A", "phone": "13800000001"})
    with pytest.raises(DuplicateError) as err:
        service.create(system, "account", {"name": "B", "phone": " 13800000001 "})
    assert err.value.existing_id == first.id
    assert err.value.key == "phone" and err.value.fields == ("phone",)
    assert err.value.values == {"phone": "13800000001"}


def test_duplicate_composite_key(service: RecordService, system: Actor) -> None:
    first = service.create(system, "account", {"name": "A", "licence_no": "ABC123",
                                               "city": "Wuhan"})
    service.create(system, "account", {"name": "B", "licence_no": "ABC123", "city": "Xian"})
    service.create(system, "account", {"name": "C", "licence_no": "ABC123"})  # NULL part
    service.create(system, "account", {"name": "D", "licence_no": "ABC123"})
    with pytest.raises(DuplicateError) as err:
        service.create(system, "account", {"name": "E", "licence_no": "ABC123",
                                           "city": "Wuhan"})
    assert err.value.existing_id == first.id and err.value.key == "licence_city"


def test_duplicate_on_update_and_soft_deleted_rows_keep_keys(service: RecordService,
                                                             system: Actor) -> None:
    a = service.create(system, "account", {"name": "A", "phone": "111111"})
    b = service.create(system, "account", {"name": "B", "phone": "222222"})
    with pytest.raises(DuplicateError) as err:
        service.update(system, "account", b.id, {"phone": "111111"}, version=1)
    assert err.value.existing_id == a.id
    # Re-saving a record with its own key is not a duplicate.
    assert service.update(system, "account", a.id, {"phone": "111111", "name": "A2"},
                          version=1).version == 2
    service.delete(system, "account", a.id)
    with pytest.raises(DuplicateError) as err:
        service.create(system, "account", {"name": "C", "phone": "111111"})
    assert err.value.existing_id == a.id


def test_field_level_unique(service: RecordService, system: Actor) -> None:
    acc = service.create(system, "account", {"name": "A"})
    first = service.create(system, "contact", {"name": "x", "account": acc.id,
                                               "email": "a@b.cn"})
    with pytest.raises(DuplicateError) as err:
        service.create(system, "contact", {"name": "y", "account": acc.id, "email": "a@b.cn"})
    assert err.value.existing_id == first.id and err.value.fields == ("email",)
