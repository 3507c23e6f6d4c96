"""Create, read, update, delete, restore: the basic life of a record on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from engine.records import InputSource, ListQuery, RecordService
from engine.storage.tables import StorageSchema


def test_create_returns_stored_values_of_every_shape(service: RecordService,
                                                     system: Actor) -> None:
    rec = service.create(system, "account", {
        "name": "Acme", "phone": "+86 138 0000 0000", "revenue": "CNY 1,234.50",
        "tags": "a,b", "location": "31.2,121.5", "founded": "2020-01-02",
        "next_call": "2026-11-23 10:00", "score": "12.5%", "stars": "4", "active": "否",
        "tier": "Gold", "address": {"city": "Shanghai"}, "ratio": "1.250",
    }, source=InputSource.STRING)
    assert rec.id > 0 and rec.version == 1
    assert rec["revenue"] == {"amount": Decimal("1234.50"), "currency": "CNY"}
    assert rec["tags"] == ["a", "b"]
    assert rec["location"] == {"lat": 31.2, "lng": 121.5}
    assert rec["founded"] == date(2020, 1, 2)
    assert rec["next_call"] == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert rec["score"] == Decimal("12.5") and rec["stars"] == 4
    assert rec["active"] is False and rec["tier"] == "gold"
    assert rec["address"] == {"city": "Shanghai"}
    assert rec["ratio"] == Decimal("1.25")
    assert rec["created_at"].tzinfo is not None and rec["deleted_at"] is None
    assert service.get(system, "account", rec.id) == rec


def test_defaults_apply_only_when_the_field_is_absent(service: RecordService,
                                                      system: Actor) -> None:
    assert service.create(system, "account", {"name": "A"})["active"] is True
    assert service.create(system, "account", {"name": "B", "active": None})["active"] is None


def test_owner_defaults_to_the_creating_user(service: RecordService, db_engine: Engine,
                                             schema: StorageSchema) -> None:
    from tests.integration.records._docs import add_user
    uid = add_user(db_engine, schema, "ann")
    other = add_user(db_engine, schema, "bob")
    ann = Actor(user_id=uid, login="ann")
    rec = service.create(ann, "account", {"name": "Mine"})
    assert rec["owner_id"] == uid and rec["created_by"] == uid
    assert service.create(ann, "account", {"name": "His", "owner_id": other})["owner_id"] == other


def test_update_bumps_version_and_keeps_other_fields(service: RecordService,
                                                     system: Actor) -> None:
    rec = service.create(system, "account", {"name": "Acme", "employees": 3})
    new = service.update(system, "account", rec.id, {"employees": 4}, version=1)
    assert new.version == 2 and new["employees"] == 4 and new["name"] == "Acme"
    assert new["updated_at"] > rec["updated_at"]
    assert new["created_at"] == rec["created_at"]


def test_update_that_changes_nothing_writes_nothing(service: RecordService, system: Actor,
                                                    db_engine: Engine,
                                                    schema: StorageSchema) -> None:
    rec = service.create(system, "account", {"name": "Acme", "employees": 3})
    same = service.update(system, "account", rec.id, {"employees": "3", "name": "Acme "},
                          version=1)
    assert same.version == 1 and same["updated_at"] == rec["updated_at"]
    activity = schema.system["tp_activity"]
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(activity)).scalar_one() == 1


def test_stale_version_is_a_conflict_and_writes_nothing(service: RecordService,
                                                        system: Actor) -> None:
    rec = service.create(system, "account", {"name": "Acme"})
    service.update(system, "account", rec.id, {"name": "Acme 2"}, version=1)
    with pytest.raises(ConflictError) as err:
        service.update(system, "account", rec.id, {"name": "Acme 3"}, version=1)
    assert (err.value.expected, err.value.actual) == (1, 2)
    assert service.get(system, "account", rec.id)["name"] == "Acme 2"
    assert len(service.activity(system, "account", rec.id)) == 2
    with pytest.raises(ConflictError):
        service.delete(system, "account", rec.id, version=1)
    assert service.get(system, "account", rec.id).version == 2


def test_missing_record_is_not_found(service: RecordService, system: Actor) -> None:
    for bad in (999, "1", True):
        with pytest.raises(NotFoundError):
            service.get(system, "account", bad)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        service.update(system, "account", 999, {"name": "x"}, version=1)
    with pytest.raises(NotFoundError):
        service.delete(system, "account", 999)
    with pytest.raises(NotFoundError):
        service.get(system, "nosuchentity", 1)


def test_soft_delete_restore_and_recycle_bin(service: RecordService, system: Actor) -> None:
    keep = service.create(system, "account", {"name": "Keep"})
    gone = service.create(system, "account", {"name": "Gone"})
    service.delete(system, "account", gone.id, version=1)
    with pytest.raises(NotFoundError):
        service.get(system, "account", gone.id)
    binned = service.get(system, "account", gone.id, include_deleted=True)
    assert binned["deleted_at"] is not None and binned.version == 2
    assert [r.id for r in service.list(system, "account").rows] == [keep.id]
    assert [r.id for r in service.list(system, "account", ListQuery(only_deleted=True)).rows] \
        == [gone.id]
    assert {r.id for r in service.list(system, "account",
                                       ListQuery(include_deleted=True)).rows} == {keep.id, gone.id}
    with pytest.raises(NotFoundError):
        service.update(system, "account", gone.id, {"name": "x"}, version=2)
    with pytest.raises(NotFoundError):  # only what is in the bin can be restored
        service.restore(system, "account", keep.id)
    back = service.restore(system, "account", gone.id)
    assert back["deleted_at"] is None and back.version == 3
    kinds = [e.kind for e in service.activity(system, "account", gone.id)]
    assert kinds == ["restore", "delete", "create"]


def test_hard_delete_without_soft_delete_feature(service: RecordService, system: Actor) -> None:
    acc = service.create(system, "account", {"name": "A"})
    con = service.create(system, "contact", {"name": "C", "account": acc.id})
    service.delete(system, "contact", con.id)
    with pytest.raises(NotFoundError):
        service.get(system, "contact", con.id, include_deleted=True)
    with pytest.raises(NotFoundError):
        service.restore(system, "contact", con.id)


def test_hard_delete_refused_while_referenced(service: RecordService, system: Actor,
                                             db_engine: Engine, schema: StorageSchema) -> None:
    from tests.integration.records._docs import ITEM, create_tables, field, label
    parent = {"name": "shelf", "label": label("Shelf"), "title_field": "name",
              "fields": [field("name", "text")]}
    child = {"name": "box", "label": label("Box"), "title_field": "name",
             "fields": [field("name", "text"), field("shelf", "reference", target="shelf")]}
    other = create_tables(db_engine, parent, child, ITEM)
    svc = RecordService(engine=db_engine, schema=other)
    shelf = svc.create(system, "shelf", {"name": "s"})
    svc.create(system, "box", {"name": "b", "shelf": shelf.id})
    with pytest.raises(ForbiddenError):
        svc.delete(system, "shelf", shelf.id)
    assert svc.get(system, "shelf", shelf.id).id == shelf.id


def test_auto_numbers_count_up_per_period(service: RecordService, system: Actor,
                                          clock: object) -> None:
    first = service.create(system, "account", {"name": "A"})["number"]
    second = service.create(system, "account", {"name": "B"})["number"]
    assert (first, second) == ("ACC-2026-0001", "ACC-2026-0002")
    clock.now = datetime(2027, 1, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    assert service.create(system, "account", {"name": "C"})["number"] == "ACC-2027-0001"
    ids = service.bulk_create(system, "account", [{"name": "D"}, {"name": "E"}])
    assert [service.get(system, "account", i)["number"] for i in ids] == \
        ["ACC-2027-0002", "ACC-2027-0003"]
    with pytest.raises(ValidationError) as err:
        service.create(system, "account", {"name": "F", "number": "X-1"})
    assert err.value.field_errors == {"number": "is numbered automatically"}
