"""The unit of work and the write hooks: several writes, one transaction, events in order."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import ValidationError
from engine.records import RecordService
from engine.records.events import WriteEvent
from engine.records.transaction import Transaction, UnitOfWorkError
from engine.storage.tables import StorageSchema


def _count(engine: Engine, schema: StorageSchema, table: str) -> int:
    t = schema.system[table] if table.startswith("tp_") else schema.table(table)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t)).scalar_one())


def test_several_writes_commit_together_with_one_batch_of_events(
        service: RecordService, system: Actor) -> None:
    seen: list[list[WriteEvent]] = []
    service.hooks.in_transaction(lambda tx, events: seen.append(list(events)))
    with service.transaction(system) as tx:
        a = tx.create("account", {"name": "A"})
        tx.update("account", a.id, {"city": "Hangzhou"}, version=a["version"])
        tx.comment("account", a.id, "called")
        b_ids = tx.bulk_create("account", [{"name": "B"}, {"name": "C"}])
    assert len(seen) == 1
    kinds = [(e.kind, e.record_id) for e in seen[0]]
    assert kinds == [("create", a.id), ("update", a.id), ("comment", a.id),
                     ("create", b_ids[0]), ("create", b_ids[1])]
    update = seen[0][1]
    assert update.before is not None and update.after is not None
    assert (update.before["city"], update.after["city"]) == (None, "Hangzhou")
    assert update.after["version"] == update.before["version"] + 1
    assert [e.kind for e in service.activity(system, "account", a.id)] == \
        ["comment", "update", "create"]


def test_an_error_rolls_the_whole_unit_back(service: RecordService, system: Actor,
                                            db_engine: Engine, schema: StorageSchema) -> None:
    committed: list[Sequence[WriteEvent]] = []
    service.hooks.after_commit(committed.append)
    with pytest.raises(ValidationError), service.transaction(system) as tx:
        tx.create("account", {"name": "kept?"})
        tx.create("account", {"name": "x" * 101})
    assert _count(db_engine, schema, "account") == 0
    assert _count(db_engine, schema, "tp_activity") == 0
    assert committed == []


def test_a_swallowed_error_still_refuses_to_commit(service: RecordService, system: Actor,
                                                   db_engine: Engine,
                                                   schema: StorageSchema) -> None:
    with pytest.raises(UnitOfWorkError), service.transaction(system) as tx:
        tx.create("account", {"name": "first"})
        with pytest.raises(ValidationError):
            tx.create("account", {"name": ""})
        tx.create("account", {"name": "after the error"})
    assert _count(db_engine, schema, "account") == 0


def test_in_transaction_hook_may_refuse_the_unit(service: RecordService, system: Actor,
                                                 db_engine: Engine,
                                                 schema: StorageSchema) -> None:
    def refuse(tx: Transaction, events: Sequence[WriteEvent]) -> None:
        if any(e.after is not None and e.after.get("city") == "Nowhere" for e in events):
            raise ValidationError("account", {"city": "no such place"})

    service.hooks.in_transaction(refuse)
    with pytest.raises(ValidationError):
        service.create(system, "account", {"name": "A", "city": "Nowhere"})
    assert _count(db_engine, schema, "account") == 0
    assert service.create(system, "account", {"name": "A", "city": "Ningbo"})["city"] == "Ningbo"


def test_hook_writes_are_delivered_in_a_next_round(service: RecordService,
                                                   system: Actor) -> None:
    rounds: list[list[str]] = []

    def derive(tx: Transaction, events: Sequence[WriteEvent]) -> None:
        rounds.append([e.kind for e in events])
        for e in events:
            if e.kind == "create":
                tx.comment(e.entity, e.record_id, "welcome")

    service.hooks.in_transaction(derive)
    record = service.create(system, "account", {"name": "A"})
    assert rounds == [["create"], ["comment"]]
    assert next(e.body for e in service.activity(system, "account", record.id)) == "welcome"


def test_hooks_that_never_settle_are_refused(service: RecordService, system: Actor,
                                             db_engine: Engine, schema: StorageSchema) -> None:
    def loop(tx: Transaction, events: Sequence[WriteEvent]) -> None:
        tx.comment(events[0].entity, events[0].record_id, "again")

    service.hooks.in_transaction(loop)
    with pytest.raises(UnitOfWorkError):
        service.create(system, "account", {"name": "A"})
    assert _count(db_engine, schema, "account") == 0


def test_after_commit_sees_committed_data_and_effects_run_once(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    seen: list[tuple[str, int]] = []
    effects: list[str] = []

    def after(events: Sequence[WriteEvent]) -> None:
        # Committed: a fresh connection sees the rows.
        seen.append((events[0].kind, _count(db_engine, schema, "account")))

    service.hooks.after_commit(after)
    service.hooks.in_transaction(lambda tx, events: tx.on_commit(lambda: effects.append("x")))
    service.bulk_create(system, "account", [{"name": "A"}, {"name": "B"}])
    assert seen == [("create", 2)]
    assert effects == ["x"]


def test_a_failing_after_commit_handler_does_not_undo(service: RecordService, system: Actor,
                                                      db_engine: Engine,
                                                      schema: StorageSchema,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    def broken(events: Sequence[WriteEvent]) -> None:
        raise RuntimeError("mail server down")

    service.hooks.after_commit(broken)
    service.create(system, "account", {"name": "A"})
    assert _count(db_engine, schema, "account") == 1
    assert "mail server down" in caplog.text


def test_delete_restore_assign_events(service: RecordService, system: Actor) -> None:
    seen: list[WriteEvent] = []
    service.hooks.in_transaction(lambda tx, events: seen.extend(events))
    record = service.create(system, "account", {"name": "A"})
    service.delete(system, "account", record.id)
    service.restore(system, "account", record.id)
    service.assign(system, "account", record.id, None)
    assert [e.kind for e in seen] == ["create", "delete", "restore"]  # owner already None
    deleted = seen[1]
    assert deleted.before is not None and deleted.after is not None
    assert deleted.before["deleted_at"] is None and deleted.after["deleted_at"] is not None


def test_via_is_stored_on_the_feed_and_the_events(service: RecordService) -> None:
    rule = Actor.system(via="rule:pool_a.stale")
    seen: list[WriteEvent] = []
    service.hooks.in_transaction(lambda tx, events: seen.extend(events))
    record = service.create(rule, "account", {"name": "A"})
    with service.transaction(Actor.system(), via="job:import") as tx:
        tx.update("account", record.id, {"city": "Wuxi"}, version=record["version"])
    feed = service.activity(Actor.system(), "account", record.id)
    assert [(e.kind, e.via) for e in feed] == [("update", "job:import"),
                                               ("create", "rule:pool_a.stale")]
    assert [e.via for e in seen] == ["rule:pool_a.stale", "job:import"]


def test_a_nested_unit_on_the_same_thread_is_refused(service: RecordService, system: Actor,
                                                     db_engine: Engine,
                                                     schema: StorageSchema) -> None:
    with pytest.raises(UnitOfWorkError), service.transaction(system) as tx:
        tx.create("account", {"name": "outer"})
        service.create(system, "account", {"name": "inner"})  # not through tx
    assert _count(db_engine, schema, "account") == 0
    # The thread is free again afterwards.
    assert service.create(system, "account", {"name": "later"})["name"] == "later"
