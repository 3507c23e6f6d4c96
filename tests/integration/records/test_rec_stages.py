"""The stage machine through the records service, on SQLite and PostgreSQL.

Creates start in the initial (or a named) stage, moves obey next stages and
entry requirements, closed stages are terminal unless reopening is declared,
and every move leaves an activity entry and a stage-history row in the same
transaction (nothing when refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import ConflictError, NotFoundError, StageTransitionError, ValidationError
from engine.records import RecordService
from engine.storage.stage_tables import STAGE_HISTORY_TABLE
from engine.storage.tables import StorageSchema
from tests.integration.records._docs import add_user
from tests.integration.records._stages_doc import create_tables
from tests.integration.records.conftest import Clock


@pytest.fixture
def schema(db_engine: Engine) -> Iterator[StorageSchema]:
    yield create_tables(db_engine)


def _new(service: RecordService, actor: Actor, **values: Any) -> Any:
    return service.create(actor, "ticket", {"title": "t", **values})


def _history_rows(engine: Engine, schema: StorageSchema, record_id: int) -> list[tuple[Any, ...]]:
    table = schema.system[STAGE_HISTORY_TABLE]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(table.c.stage, table.c.left_at.is_(None), table.c.entered_by)
            .where(table.c.entity == "ticket", table.c.record_id == record_id)
            .order_by(table.c.id))]


# --- creating ----------------------------------------------------------------------------


def test_create_starts_in_the_initial_stage_with_one_open_visit(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    rec = _new(service, system)
    assert rec["stage"] == "new"
    assert _history_rows(db_engine, schema, rec.id) == [("new", True, None)]
    visits = service.stage_history(system, "ticket", rec.id)
    assert [(v.stage, v.left_at) for v in visits] == [("new", None)]
    assert visits[0].entered_at == rec["created_at"]


def test_create_in_a_named_stage_checks_the_stage_and_its_requirements(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    rec = _new(service, system, stage="triage", due="2026-12-01")
    assert rec["stage"] == "triage" and rec.version == 1
    assert _history_rows(db_engine, schema, rec.id) == [("triage", True, None)]

    with pytest.raises(ValidationError) as missing:
        _new(service, system, stage="doing", due="2026-12-01")
    assert missing.value.field_errors == {"estimate": "is required to enter stage Doing"}

    with pytest.raises(ValidationError) as unknown:
        _new(service, system, stage="nowhere")
    assert set(unknown.value.field_errors) == {"stage"}
    assert "unknown stage 'nowhere'" in unknown.value.field_errors["stage"]
    assert service.count(system, "ticket") == 1


def test_bulk_create_names_the_row_of_a_bad_stage_and_writes_nothing(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    with pytest.raises(ValidationError) as exc:
        service.bulk_create(system, "ticket", [
            {"title": "a"}, {"title": "b", "stage": "bogus"},
            {"title": "c", "stage": "dropped"}])
    assert set(exc.value.field_errors) == {"1.stage", "2.reason"}
    assert service.count(system, "ticket") == 0

    ids = service.bulk_create(system, "ticket", [
        {"title": "a"}, {"title": "b", "stage": "dropped", "reason": "dup"},
        {"title": "c", "stage": "triage", "due": "2026-12-01"}, {"title": "d"}])
    assert [service.get(system, "ticket", i)["stage"] for i in ids] == \
        ["new", "dropped", "triage", "new"]
    assert [_history_rows(db_engine, schema, i)[0][0] for i in ids] == \
        ["new", "dropped", "triage", "new"]


# --- moving ------------------------------------------------------------------------------


def test_required_fields_missing_are_named_and_given_with_the_move_they_count(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    rec = _new(service, system)
    with pytest.raises(ValidationError) as exc:
        service.move_stage(system, "ticket", rec.id, to="triage", version=1)
    assert exc.value.field_errors == {"due": "is required to enter stage Triage"}
    # Nothing was written by the refusal.
    assert service.get(system, "ticket", rec.id).version == 1
    assert len(_history_rows(db_engine, schema, rec.id)) == 1

    moved = service.move_stage(system, "ticket", rec.id, to="triage", version=1,
                               values={"due": "2026-12-01"})
    assert moved["stage"] == "triage" and moved.version == 2
    assert str(moved["due"]) == "2026-12-01"
    # Emptying a required field in the same move is refused too.
    with pytest.raises(ValidationError) as both:
        service.move_stage(system, "ticket", rec.id, to="doing", version=2,
                           values={"due": None})
    assert set(both.value.field_errors) == {"due", "estimate"}


def test_moves_outside_next_stages_are_refused_with_the_allowed_ones(
        service: RecordService, system: Actor) -> None:
    rec = _new(service, system, estimate={"amount": "10", "currency": "CNY"},
               due="2026-12-01")
    with pytest.raises(StageTransitionError) as exc:
        service.move_stage(system, "ticket", rec.id, to="doing", version=1)
    assert exc.value.from_stage == "new" and exc.value.to_stage == "doing"
    assert exc.value.allowed == ("triage", "dropped")
    assert "allowed next stages: triage, dropped" in str(exc.value)
    assert service.get(system, "ticket", rec.id).version == 1

    # next_stages omitted on an open stage: any other stage.
    rec = service.move_stage(system, "ticket", rec.id, to="triage", version=1)
    rec = service.move_stage(system, "ticket", rec.id, to="doing", version=2)
    assert rec["stage"] == "doing"


def test_won_is_terminal_lost_reopens_only_where_declared_final_open_stage_stays(
        service: RecordService, system: Actor) -> None:
    done = _new(service, system, stage="triage", due="2026-12-01",
                estimate={"amount": "5", "currency": "CNY"})
    done = service.move_stage(system, "ticket", done.id, to="done", version=1)
    for target in ("new", "triage", "doing", "dropped"):
        with pytest.raises(StageTransitionError) as exc:
            service.move_stage(system, "ticket", done.id, to=target, version=done.version,
                               values={"reason": "dup"})
        assert exc.value.allowed == ()
        assert "done is a closed stage" in exc.value.message

    lost = _new(service, system, stage="dropped", reason="wontfix")
    with pytest.raises(StageTransitionError):
        service.move_stage(system, "ticket", lost.id, to="triage", version=1,
                           values={"due": "2026-12-01"})
    reopened = service.move_stage(system, "ticket", lost.id, to="new", version=1)
    assert reopened["stage"] == "new"

    parked = _new(service, system, stage="parked")
    with pytest.raises(StageTransitionError) as final:
        service.move_stage(system, "ticket", parked.id, to="new", version=1)
    assert "parked is a final stage" in final.value.message


def test_update_with_stage_goes_through_the_same_rules(
        service: RecordService, system: Actor) -> None:
    rec = _new(service, system)
    with pytest.raises(StageTransitionError):
        service.update(system, "ticket", rec.id, {"stage": "done"}, version=1)
    with pytest.raises(ValidationError) as missing:
        service.update(system, "ticket", rec.id, {"stage": "triage"}, version=1)
    assert set(missing.value.field_errors) == {"due"}
    with pytest.raises(ValidationError) as unknown:
        service.update(system, "ticket", rec.id, {"stage": 7, "hours": "x"}, version=1)
    assert set(unknown.value.field_errors) == {"stage", "hours"}
    moved = service.update(system, "ticket", rec.id, {"stage": "triage", "due": "2026-12-01",
                                                      "hours": 3}, version=1)
    assert (moved["stage"], moved["hours"], moved.version) == ("triage", 3, 2)


def test_stage_stays_out_of_entities_without_a_pipeline(
        service: RecordService, system: Actor) -> None:
    acc = service.create(system, "account", {"name": "x"})
    with pytest.raises(ValidationError) as exc:
        service.update(system, "account", acc.id, {"stage": "new"}, version=1)
    assert exc.value.field_errors == {"stage": "is set by the system"}
    with pytest.raises(ValidationError) as move:
        service.move_stage(system, "account", acc.id, to="new", version=1)
    assert move.value.field_errors == {"stage": "this entity has no pipeline"}
    with pytest.raises(ValidationError):
        service.create(system, "account", {"name": "y", "stage": "new"})


def test_staying_in_the_stage_is_no_move(service: RecordService, system: Actor,
                                         db_engine: Engine, schema: StorageSchema) -> None:
    rec = _new(service, system)
    same = service.move_stage(system, "ticket", rec.id, to="new", version=1)
    assert same.version == 1
    edited = service.move_stage(system, "ticket", rec.id, to="new", version=1,
                                values={"hours": 2})
    assert edited.version == 2 and edited["hours"] == 2
    assert len(_history_rows(db_engine, schema, rec.id)) == 1
    [entry, _] = service.activity(system, "ticket", rec.id)
    assert [c.field for c in entry.changes] == ["hours"]


def test_a_stale_version_conflicts_and_writes_no_history(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    rec = _new(service, system)
    service.update(system, "ticket", rec.id, {"hours": 1}, version=1)
    with pytest.raises(ConflictError) as exc:
        service.move_stage(system, "ticket", rec.id, to="dropped", version=1,
                           values={"reason": "dup"})
    assert (exc.value.expected, exc.value.actual) == (1, 2)
    assert _history_rows(db_engine, schema, rec.id) == [("new", True, None)]
    assert service.get(system, "ticket", rec.id)["stage"] == "new"


def test_a_move_is_in_the_feed_and_the_history(
        service: RecordService, db_engine: Engine, schema: StorageSchema) -> None:
    uid = add_user(db_engine, schema, "mover")
    mover = Actor(user_id=uid, login="mover")
    rec = _new(service, mover)
    service.move_stage(mover, "ticket", rec.id, to="triage", version=1,
                       values={"due": "2026-12-01"})
    [entry, created] = service.activity(mover, "ticket", rec.id)
    assert created.kind == "create"
    assert entry.kind == "update" and entry.actor_id == uid
    assert [(c.field, c.old, c.new) for c in entry.changes] == \
        [("stage", "new", "triage"), ("due", None, "2026-12-01")]
    assert _history_rows(db_engine, schema, rec.id) == \
        [("new", False, uid), ("triage", True, uid)]


def test_time_in_stage_adds_up_visits(service: RecordService, system: Actor,
                                      clock: Clock) -> None:
    rec = _new(service, system)
    start = clock.now
    clock.now += timedelta(hours=2)
    rec = service.move_stage(system, "ticket", rec.id, to="dropped", version=1,
                             values={"reason": "dup"})
    clock.now += timedelta(hours=3)
    rec = service.move_stage(system, "ticket", rec.id, to="new", version=rec.version)
    clock.now += timedelta(hours=1)
    rec = service.move_stage(system, "ticket", rec.id, to="triage", version=rec.version,
                             values={"due": "2026-12-01"})
    now = clock.now + timedelta(minutes=30)
    visits = service.stage_history(system, "ticket", rec.id)
    assert [v.stage for v in visits] == ["new", "dropped", "new", "triage"]
    assert visits[0].entered_at == start
    assert all(v.left_at is not None for v in visits[:-1]) and visits[-1].left_at is None
    spent = service.time_in_stage(system, "ticket", rec.id, now=now)
    assert set(spent) == {"new", "dropped", "triage"}
    # Clock ticks a microsecond per call, so compare to the second.
    rounded = {k: round(v.total_seconds()) for k, v in spent.items()}
    assert rounded == {"new": 3 * 3600, "dropped": 3 * 3600, "triage": 1800}


def test_soft_deleted_record_cannot_move(service: RecordService, system: Actor) -> None:
    rec = _new(service, system)
    service.delete(system, "ticket", rec.id)
    with pytest.raises(NotFoundError):
        service.move_stage(system, "ticket", rec.id, to="dropped", version=2,
                           values={"reason": "dup"})
    # Its history stays readable from the recycle bin.
    assert [v.stage for v in service.stage_history(system, "ticket", rec.id)] == ["new"]


def test_history_table_is_created_with_the_system_tables(db_engine: Engine,
                                                         schema: StorageSchema) -> None:
    with db_engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(
            schema.system[STAGE_HISTORY_TABLE])).scalar_one()
    assert count == 0
