"""Stage moves and board aggregates under the real permission policy, and under races.

Two agents own their own tickets (scope ``own``), a viewer reads every ticket
and may update none. A move outside the actor's update scope is refused like
any update; counts and sums per stage only add up what the actor may read.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    QueryError,
    ValidationError,
)
from engine.permissions.identity import create_user
from engine.permissions.policy_store import bind_role, sync_roles
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records import Filter, ListQuery, RecordService
from engine.storage.database import write_transaction
from engine.storage.stage_tables import STAGE_HISTORY_TABLE
from engine.storage.tables import StorageSchema
from tests.integration.records._stages_doc import create_tables, label
from tests.integration.records.conftest import Clock
from tests.integration.records.test_rec_concurrency import race
from tests.integration.records.test_rec_scopes import FakePolicy

ROLES: dict[str, Any] = {
    "agent": {"name": "agent", "label": label("Agent"), "grants": [
        {"entity": "ticket", "actions": ["read", "create", "update", "delete"], "scope": "own",
         "hidden_fields": ["hours"]}]},
    "viewer": {"name": "viewer", "label": label("Viewer"), "grants": [
        {"entity": "ticket", "actions": ["read"], "scope": "all"}]},
}


@pytest.fixture
def schema(db_engine: Engine) -> Iterator[StorageSchema]:
    yield create_tables(db_engine, ROLES)


class World:
    def __init__(self, service: RecordService, actors: dict[str, Actor]) -> None:
        self.service = service
        self.actors = actors


@pytest.fixture
def world(db_engine: Engine, schema: StorageSchema, clock: Clock) -> World:
    actors = {}
    with write_transaction(db_engine) as conn:
        sync_roles(conn, schema.registry)
        for login, role in (("a1", "agent"), ("a2", "agent"), ("v", "viewer")):
            uid = create_user(conn, login=login, display_name=login).id
            bind_role(conn, user_id=uid, role=role, registry=schema.registry)
            actors[login] = Actor(user_id=uid, login=login)
    policy = CasbinAccessPolicy(db_engine, schema.registry)
    return World(RecordService(engine=db_engine, schema=schema, policy=policy, clock=clock),
                 actors)


def _ticket(world: World, who: str, **values: Any) -> Any:
    return world.service.create(world.actors[who], "ticket", {"title": who, **values})


def cny(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "CNY"}


def test_an_agent_cannot_move_another_agents_ticket(world: World) -> None:
    theirs = _ticket(world, "a1")
    a2, viewer = world.actors["a2"], world.actors["v"]
    with pytest.raises(NotFoundError):
        world.service.move_stage(a2, "ticket", theirs.id, to="dropped", version=1,
                                 values={"reason": "dup"})
    with pytest.raises(NotFoundError):
        world.service.update(a2, "ticket", theirs.id, {"stage": "triage", "due": "2026-12-01"},
                             version=1)
    with pytest.raises(NotFoundError):
        world.service.stage_history(a2, "ticket", theirs.id)
    # The viewer sees it but may not update anything: forbidden, not hidden.
    with pytest.raises(ForbiddenError):
        world.service.move_stage(viewer, "ticket", theirs.id, to="dropped", version=1,
                                 values={"reason": "dup"})
    assert [v.stage for v in world.service.stage_history(viewer, "ticket", theirs.id)] == \
        ["new"]
    moved = world.service.move_stage(world.actors["a1"], "ticket", theirs.id, to="dropped",
                                     version=1, values={"reason": "dup"})
    assert moved["stage"] == "dropped"


def test_a_required_field_the_actor_may_not_write_is_still_named(
        db_engine: Engine, schema: StorageSchema, clock: Clock, system: Actor) -> None:
    policy = FakePolicy(readonly=frozenset({"due"}))
    service = RecordService(engine=db_engine, schema=schema, policy=policy, clock=clock)
    rec = service.create(system, "ticket", {"title": "x"})
    with pytest.raises(ValidationError) as exc:
        service.move_stage(system, "ticket", rec.id, to="triage", version=1)
    assert exc.value.field_errors == {"due": "is required to enter stage Triage"}
    with pytest.raises(ValidationError) as written:
        service.move_stage(system, "ticket", rec.id, to="triage", version=1,
                           values={"due": "2026-12-01"})
    assert written.value.field_errors == {"due": "is read-only for you"}


def test_a_policy_may_make_the_stage_itself_read_only(
        db_engine: Engine, schema: StorageSchema, clock: Clock, system: Actor) -> None:
    service = RecordService(engine=db_engine, schema=schema,
                            policy=FakePolicy(readonly=frozenset({"stage"})), clock=clock)
    rec = service.create(system, "ticket", {"title": "x"})
    with pytest.raises(ValidationError) as exc:
        service.move_stage(system, "ticket", rec.id, to="dropped", version=1,
                           values={"reason": "dup"})
    assert exc.value.field_errors == {"stage": "is read-only for you"}
    with pytest.raises(ValidationError):
        service.create(system, "ticket", {"title": "y", "stage": "parked"})


def _by_stage(groups: list[Any]) -> dict[str, tuple[int, dict[str, Decimal]]]:
    return {g.key: (g.count, g.sums) for g in groups}


def test_group_counts_add_up_only_what_the_actor_may_read(world: World) -> None:
    _ticket(world, "a1", estimate=cny("10.50"))
    _ticket(world, "a1", estimate={"amount": "7", "currency": "USD"})
    _ticket(world, "a1", stage="dropped", reason="dup", estimate=cny("100"))
    _ticket(world, "a1")
    _ticket(world, "a2", estimate=cny("1000"))
    _ticket(world, "a2", stage="parked", estimate=cny("1"))
    svc = world.service
    mine = _by_stage(svc.group_counts(world.actors["a1"], "ticket", "stage",
                                      sum_field="estimate"))
    assert mine == {"new": (3, {"CNY": Decimal("10.50"), "USD": Decimal(7)}),
                    "dropped": (1, {"CNY": Decimal(100)})}
    theirs = _by_stage(svc.group_counts(world.actors["a2"], "ticket", "stage",
                                        sum_field="estimate"))
    assert theirs == {"new": (1, {"CNY": Decimal(1000)}), "parked": (1, {"CNY": Decimal(1)})}
    everyone = _by_stage(svc.group_counts(world.actors["v"], "ticket", "stage",
                                          sum_field="estimate"))
    assert everyone["new"] == (4, {"CNY": Decimal("1010.50"), "USD": Decimal(7)})
    # The counts agree with the cards the same actor can list, stage by stage.
    for stage, (count, _) in mine.items():
        page = svc.list(world.actors["a1"], "ticket",
                        ListQuery(filters=(Filter("stage", "eq", stage),)))
        assert len(page.rows) == count


def test_group_counts_follow_filters_search_and_the_recycle_bin(world: World) -> None:
    a1 = world.actors["a1"]
    svc = world.service

    def owned(title: str, hours: int) -> Any:  # hours is hidden from agents: the system writes it
        return svc.create(Actor.system(), "ticket",
                          {"title": title, "hours": hours, "owner_id": a1.user_id})

    keep = owned("alpha", 3)
    owned("beta", 4)
    gone = owned("alpha two", 5)
    svc.delete(a1, "ticket", gone.id)
    viewer = world.actors["v"]
    assert _by_stage(svc.group_counts(viewer, "ticket", "stage", sum_field="hours")) == \
        {"new": (2, {"": Decimal(7)})}
    searched = svc.group_counts(viewer, "ticket", "stage", filters=ListQuery(search="alpha"))
    assert _by_stage(searched) == {"new": (1, {})}
    assert _by_stage(svc.group_counts(viewer, "ticket", "stage",
                                      filters=[Filter("id", "eq", keep.id)])) == {"new": (1, {})}
    # Hidden from agents: they may not add it up, nor group by it.
    with pytest.raises(QueryError):
        svc.group_counts(a1, "ticket", "stage", sum_field="hours")
    with pytest.raises(QueryError):
        svc.group_counts(a1, "ticket", "hours")
    for bad in ("title_x", "estimate"):
        with pytest.raises(QueryError):
            svc.group_counts(viewer, "ticket", bad)
    with pytest.raises(QueryError):
        svc.group_counts(viewer, "ticket", "stage", sum_field="title")


def test_an_actor_with_no_rows_gets_no_groups_but_bad_requests_still_fail(
        world: World, db_engine: Engine, schema: StorageSchema, clock: Clock) -> None:
    _ticket(world, "a1")
    from engine.access import RowScope

    class Nothing(FakePolicy):
        def row_scope(self, actor: Actor, entity: Any, table: Any, action: str) -> RowScope:
            return RowScope.nothing()

    svc = RecordService(engine=db_engine, schema=schema, policy=Nothing(), clock=clock)
    assert svc.group_counts(world.actors["a1"], "ticket", "stage") == []
    with pytest.raises(QueryError):
        svc.group_counts(world.actors["a1"], "ticket", "nope")


def test_two_moves_with_the_same_version_one_wins(world: World, db_engine: Engine,
                                                  schema: StorageSchema) -> None:
    a1 = world.actors["a1"]
    history = schema.system[STAGE_HISTORY_TABLE]
    for round_ in range(3):
        rec = _ticket(world, "a1", due="2026-12-01")
        results = race(
            lambda rid=rec.id: world.service.move_stage(a1, "ticket", rid, to="triage",
                                                        version=1),
            lambda rid=rec.id: world.service.move_stage(a1, "ticket", rid, to="dropped",
                                                        version=1, values={"reason": "dup"}))
        conflicts = [r for r in results if isinstance(r, ConflictError)]
        wins = [r for r in results if not isinstance(r, Exception)]
        assert len(conflicts) == 1 and len(wins) == 1, (round_, results)
        final = world.service.get(a1, "ticket", rec.id)
        assert final.version == 2 and final["stage"] == wins[0]["stage"]
        with db_engine.connect() as conn:
            rows = conn.execute(select(history.c.stage, history.c.left_at)
                                .where(history.c.record_id == rec.id)
                                .order_by(history.c.id)).all()
        assert [r.stage for r in rows] == ["new", final["stage"]]
        assert rows[0].left_at is not None and rows[1].left_at is None
        assert [e.kind for e in world.service.activity(a1, "ticket", rec.id)] == \
            ["update", "create"]
