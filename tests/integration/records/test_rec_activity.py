"""The activity feed: written with the change, in its transaction, and only then."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import ConflictError, DuplicateError, ValidationError
from engine.records import RecordService
from engine.storage.tables import StorageSchema
from tests.integration.records._docs import add_user, create_tables, field, label


def _activity_rows(engine: Engine, schema: StorageSchema) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count())
                                .select_from(schema.system["tp_activity"])).scalar_one())


def test_update_logs_only_changed_fields_as_json(service: RecordService, db_engine: Engine,
                                                 schema: StorageSchema) -> None:
    uid = add_user(db_engine, schema, "ann")
    ann = Actor(user_id=uid, login="ann")
    rec = service.create(ann, "account", {"name": "Acme", "revenue": "5", "employees": 1})
    service.update(ann, "account", rec.id, {"name": "Acme", "revenue": "CNY 7.25",
                                            "employees": 2, "founded": "2020-02-03"},
                   version=1)
    latest, first = service.activity(ann, "account", rec.id)
    assert latest.kind == "update" and latest.actor_id == uid
    assert latest.at.tzinfo is not None
    assert {c.field: (c.old, c.new) for c in latest.changes} == {
        "revenue": ({"amount": "5.00", "currency": "CNY"},
                    {"amount": "7.25", "currency": "CNY"}),
        "employees": (1, 2),
        "founded": (None, "2020-02-03"),
    }
    assert first.kind == "create"
    assert {c.field for c in first.changes} >= {"name", "revenue", "employees", "number"}
    assert all(c.old is None for c in first.changes)


def test_failed_writes_leave_no_activity(service: RecordService, system: Actor,
                                         db_engine: Engine, schema: StorageSchema) -> None:
    rec = service.create(system, "account", {"name": "A", "phone": "123456"})
    other = service.create(system, "account", {"name": "B"})
    before = _activity_rows(db_engine, schema)
    with pytest.raises(ConflictError):
        service.update(system, "account", rec.id, {"name": "x"}, version=7)
    with pytest.raises(DuplicateError):
        service.update(system, "account", other.id, {"phone": "123456"}, version=1)
    with pytest.raises(ValidationError):
        service.bulk_create(system, "account", [{"name": "ok"}, {"name": None}])
    with pytest.raises(ValidationError):
        service.create(system, "contact", {"name": "c", "account": 999})
    assert _activity_rows(db_engine, schema) == before
    assert service.count(system, "account") == 2


def test_activity_rolls_back_when_the_write_fails_after_logging(
        service: RecordService, system: Actor, db_engine: Engine, schema: StorageSchema,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rec = service.create(system, "account", {"name": "A"})
    before = _activity_rows(db_engine, schema)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    # Fail after the UPDATE and the activity insert, before commit.
    monkeypatch.setattr(service, "_read_back", boom)
    with pytest.raises(RuntimeError):
        service.update(system, "account", rec.id, {"name": "B"}, version=1)
    monkeypatch.undo()
    assert _activity_rows(db_engine, schema) == before
    assert service.get(system, "account", rec.id)["name"] == "A"


def test_feed_pages_with_before_id(service: RecordService, system: Actor) -> None:
    rec = service.create(system, "account", {"name": "v0"})
    for i in range(1, 6):
        rec = service.update(system, "account", rec.id, {"name": f"v{i}"}, version=rec.version)
    page1 = service.activity(system, "account", rec.id, limit=4)
    page2 = service.activity(system, "account", rec.id, limit=4, before_id=page1[-1].id)
    assert [e.changes[0].new for e in page1] == ["v5", "v4", "v3", "v2"]
    assert [e.kind for e in page2] == ["update", "create"]


def test_entities_without_the_feature_log_nothing(db_engine: Engine, system: Actor) -> None:
    quiet = {"name": "note", "label": label("Note"), "title_field": "text",
             "fields": [field("text", "text")]}
    schema = create_tables(db_engine, quiet)
    svc = RecordService(engine=db_engine, schema=schema)
    rec = svc.create(system, "note", {"text": "a"})
    svc.update(system, "note", rec.id, {"text": "b"}, version=1)
    svc.bulk_create(system, "note", [{"text": "c"}])
    svc.delete(system, "note", rec.id)
    assert _activity_rows(db_engine, schema) == 0


def test_a_reused_id_does_not_inherit_an_old_feed(service: RecordService, system: Actor) -> None:
    acc = service.create(system, "account", {"name": "A"})
    old = service.create(system, "contact", {"name": "old", "account": acc.id})
    service.update(system, "contact", old.id, {"name": "older"}, version=1)
    service.delete(system, "contact", old.id)
    new = service.create(system, "contact", {"name": "new", "account": acc.id})
    entries = service.activity(system, "contact", new.id)
    assert [e.kind for e in entries] == ["create"]
    assert {c.field: c.new for c in entries[0].changes}["name"] == "new"
