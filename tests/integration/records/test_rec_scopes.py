"""The access-policy hook: action checks, row-scope branches, hidden and read-only fields.

``FakePolicy`` stands in for the real Casbin policy: an "own" branch
(owner_id = the actor) and a "shared city" branch (city = 'Pool').
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import ColumnElement, Engine, Table

from engine.access import RowScope
from engine.actor import Actor
from engine.errors import ForbiddenError, NotFoundError, QueryError, ValidationError
from engine.metadata.model import Entity
from engine.records import Filter, ListQuery, RecordService, Sort
from engine.storage.tables import StorageSchema
from tests.integration.records._docs import add_user

Branches = Callable[[Actor, Table], tuple[ColumnElement[bool], ...]]


def own(actor: Actor, table: Table) -> tuple[ColumnElement[bool], ...]:
    return (table.c.owner_id == actor.user_id,)


def own_or_pool(actor: Actor, table: Table) -> tuple[ColumnElement[bool], ...]:
    return (table.c.owner_id == actor.user_id, table.c.city == "Pool")


class FakePolicy:
    def __init__(self, *, scopes: dict[str, Branches] | None = None,
                 hidden: frozenset[str] = frozenset(), readonly: frozenset[str] = frozenset(),
                 forbidden: frozenset[str] = frozenset()) -> None:
        self.scopes = scopes or {}
        self.hidden = hidden
        self.readonly = readonly
        self.forbidden = forbidden
        self.checked: list[str] = []

    def check_action(self, actor: Actor, entity: Entity, action: str) -> None:
        self.checked.append(action)
        if action in self.forbidden:
            raise ForbiddenError(entity.name, action)

    def allows(self, actor: Actor, entity: Entity, action: str) -> bool:
        self.checked.append(action)
        return action not in self.forbidden

    def row_scope(self, actor: Actor, entity: Entity, table: Table, action: str) -> RowScope:
        build = self.scopes.get(action)
        return RowScope.everything() if build is None else RowScope(build(actor, table))

    def hidden_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        return self.hidden

    def readonly_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        return self.readonly


@pytest.fixture
def people(db_engine: Engine, schema: StorageSchema) -> tuple[Actor, Actor]:
    ann = add_user(db_engine, schema, "ann")
    bob = add_user(db_engine, schema, "bob")
    return Actor(user_id=ann, login="ann"), Actor(user_id=bob, login="bob")


def _seed(service: RecordService, ann: Actor, bob: Actor) -> dict[str, int]:
    ids = {}
    for name, actor, city in [("a1", ann, None), ("a2", ann, "Pool"), ("a3", ann, None),
                              ("b1", bob, None), ("b2", bob, "Pool"), ("b3", bob, "Pool"),
                              ("b4", bob, None)]:
        ids[name] = service.create(actor, "account", {"name": name, "city": city}).id
    return ids


def _names(page_rows: list) -> list[str]:
    return [r["name"] for r in page_rows]


def test_one_branch_scope_on_list_get_and_count(db_engine: Engine, schema: StorageSchema,
                                                people: tuple[Actor, Actor]) -> None:
    ann, bob = people
    _seed(RecordService(engine=db_engine, schema=schema), ann, bob)
    svc = RecordService(engine=db_engine, schema=schema,
                        policy=FakePolicy(scopes={"read": own}))
    page = svc.list(ann, "account", ListQuery(sort=Sort("name", False)))
    assert _names(page.rows) == ["a1", "a2", "a3"]
    assert svc.count(ann, "account") == 3
    theirs = svc.list(bob, "account").rows[0]
    with pytest.raises(NotFoundError):
        svc.get(ann, "account", theirs.id)
    with pytest.raises(NotFoundError):
        svc.update(ann, "account", theirs.id, {"name": "x"}, version=1)
    with pytest.raises(NotFoundError):
        svc.activity(ann, "account", theirs.id)


@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_several_branches_union_without_duplicates(db_engine: Engine, schema: StorageSchema,
                                                   people: tuple[Actor, Actor],
                                                   limit: int) -> None:
    ann, bob = people
    ids = _seed(RecordService(engine=db_engine, schema=schema), ann, bob)
    svc = RecordService(engine=db_engine, schema=schema,
                        policy=FakePolicy(scopes={"read": own_or_pool}))
    # a2 is both ann's own and in the pool: it must appear once.
    seen: list[str] = []
    query = ListQuery(sort=Sort("name", False), limit=limit)
    for _ in range(10):
        page = svc.list(ann, "account", query)
        seen += _names(page.rows)
        if not page.has_more:
            break
        query = ListQuery(sort=Sort("name", False), limit=limit, after=page.next_token)
    assert seen == ["a1", "a2", "a3", "b2", "b3"]
    assert svc.count(ann, "account") == 5
    assert svc.get(ann, "account", ids["b2"])["name"] == "b2"
    with pytest.raises(NotFoundError):
        svc.get(ann, "account", ids["b1"])
    newest_first = svc.list(ann, "account")
    assert _names(newest_first.rows) == ["b3", "b2", "a3", "a2", "a1"]


def test_read_visible_but_outside_update_scope_is_forbidden(
        db_engine: Engine, schema: StorageSchema, people: tuple[Actor, Actor]) -> None:
    ann, bob = people
    ids = _seed(RecordService(engine=db_engine, schema=schema), ann, bob)
    svc = RecordService(engine=db_engine, schema=schema, policy=FakePolicy(
        scopes={"read": own_or_pool, "update": own, "delete": own}))
    with pytest.raises(ForbiddenError):
        svc.update(ann, "account", ids["b2"], {"name": "mine now"}, version=1)
    with pytest.raises(ForbiddenError):
        svc.delete(ann, "account", ids["b2"])
    assert svc.update(ann, "account", ids["a2"], {"name": "a2!"}, version=1)["name"] == "a2!"
    svc.delete(ann, "account", ids["a1"])
    assert svc.restore(ann, "account", ids["a1"]).version == 3


def test_empty_scope_sees_nothing(db_engine: Engine, schema: StorageSchema,
                                  people: tuple[Actor, Actor]) -> None:
    ann, bob = people
    ids = _seed(RecordService(engine=db_engine, schema=schema), ann, bob)
    svc = RecordService(engine=db_engine, schema=schema,
                        policy=FakePolicy(scopes={"read": lambda a, t: ()}))
    assert svc.list(ann, "account").rows == [] and svc.count(ann, "account") == 0
    with pytest.raises(NotFoundError):
        svc.get(ann, "account", ids["a1"])


def test_action_check_runs_on_every_call(db_engine: Engine, schema: StorageSchema,
                                         people: tuple[Actor, Actor]) -> None:
    ann, _ = people
    policy = FakePolicy(forbidden=frozenset({"create", "delete"}))
    svc = RecordService(engine=db_engine, schema=schema, policy=policy)
    with pytest.raises(ForbiddenError):
        svc.create(ann, "account", {"name": "x"})
    with pytest.raises(ForbiddenError):
        svc.bulk_create(ann, "account", [{"name": "x"}])
    rec = RecordService(engine=db_engine, schema=schema).create(ann, "account", {"name": "x"})
    with pytest.raises(ForbiddenError):
        svc.delete(ann, "account", rec.id)
    with pytest.raises(ForbiddenError):
        svc.restore(ann, "account", rec.id)
    svc.get(ann, "account", rec.id)
    svc.list(ann, "account")
    svc.update(ann, "account", rec.id, {"name": "y"}, version=1)
    assert {"create", "delete", "read", "update"} <= set(policy.checked)


def test_hidden_fields_are_removed_and_refused(db_engine: Engine, schema: StorageSchema,
                                              people: tuple[Actor, Actor]) -> None:
    ann, _ = people
    plain = RecordService(engine=db_engine, schema=schema)
    rec = plain.create(ann, "account", {"name": "x", "employees": 7, "notes": "secret word"})
    plain.update(ann, "account", rec.id, {"employees": 8}, version=1)
    svc = RecordService(engine=db_engine, schema=schema, policy=FakePolicy(
        hidden=frozenset({"employees", "notes"})))
    got = svc.get(ann, "account", rec.id)
    assert "employees" not in got and "notes" not in got and got["name"] == "x"
    assert all("employees" not in r for r in svc.list(ann, "account").rows)
    with pytest.raises(QueryError):
        svc.list(ann, "account", ListQuery(filters=(Filter("employees", "eq", 8),)))
    with pytest.raises(QueryError):
        svc.list(ann, "account", ListQuery(sort=Sort("employees")))
    # Search skips hidden fields: the secret in notes does not leak through matches.
    assert svc.list(ann, "account", ListQuery(search="secret")).rows == []
    assert len(plain.list(ann, "account", ListQuery(search="secret")).rows) == 1
    feed = svc.activity(ann, "account", rec.id)
    assert all(c.field not in ("employees", "notes") for e in feed for c in e.changes)
    with pytest.raises(ValidationError):
        svc.update(ann, "account", rec.id, {"employees": 1}, version=2)
