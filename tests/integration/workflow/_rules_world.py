"""A small pooled world for the rule and distribution tests, on SQLite and PostgreSQL.

The fixture ``make_rules_world`` is re-exported by this folder's conftest.py.

Entities are neutral: ``item`` (owned, pooled, pipelined) and ``visit``, whose
``item`` reference touches an item when a visit is created. The org tree is
company > team_a (leader ``lead_a``: reps a1, a2, a3) and team_b (rep b1);
``boss`` holds role ``chief``. The records service runs with a controllable
clock and the engine's write hooks installed (the runtime's providers).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.metadata.parse import registry_from_document
from engine.permissions.identity import create_user
from engine.permissions.org import create_department, set_leader
from engine.permissions.policy_store import bind_role
from engine.records import RecordService
from engine.runtime import install_hooks
from engine.storage.database import write_transaction
from engine.storage.tables import StorageSchema, build_schema

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def label(text: str) -> dict[str, str]:
    return {"en": text, "zh-CN": text}


def _field(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": label(name), **extra}


def _options(*values: str) -> list[dict[str, Any]]:
    return [{"value": v, "label": label(v)} for v in values]


ITEM = {
    "name": "item", "label": label("Item"), "title_field": "name",
    "features": ["owned", "pooled", "pipelined", "activity", "soft_delete"],
    "fields": [
        _field("name", "text"),
        _field("grade", "select", options=_options("A", "B", "C")),
        _field("channel", "select", options=_options("web", "fair", "other")),
        _field("tags", "multi_select", options=_options("key", "new")),
        _field("spot", "geo_point"),
        _field("size", "integer"),
        _field("chance", "percent", min=0, max=100),
    ],
}
VISIT = {
    "name": "visit", "label": label("Visit"), "title_field": "note",
    "features": ["owned", "activity"],
    "fields": [_field("note", "text"), _field("item", "reference", target="item")],
}
PIPELINE = {
    "name": "item_flow", "entity": "item", "label": label("Flow"), "initial_stage": "new",
    "probability_field": "chance",
    "stages": [{"key": "new", "label": label("New"), "order": 1, "probability": 10},
               {"key": "talk", "label": label("Talk"), "order": 2, "probability": 60},
               {"key": "won", "label": label("Won"), "order": 3, "kind": "won"}],
}
ROLE = {"name": "chief", "label": label("Chief"),
        "grants": [{"entity": "item", "actions": ["read"], "scope": "all"}]}
BASE_POOL: dict[str, Any] = {
    "name": "item_pool", "entity": "item", "label": label("Item pool"),
    "members": {"departments": ["team_a"]},
    "touch": [{"entity": "visit", "field": "item"}],
}


class Clock:
    """The records service's clock: set ``now``; each call moves a microsecond on."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


@dataclass
class World:
    engine: Engine
    schema: StorageSchema
    records: RecordService
    clock: Clock
    users: dict[str, int] = field(default_factory=dict)
    system: Actor = field(default_factory=lambda: Actor.system("test"))

    def at(self, when: datetime) -> None:
        self.clock.now = when

    def item(self, owner: str | None, **values: Any) -> int:
        payload = {"name": values.pop("name", "x"), **values,
                   "owner_id": None if owner is None else self.users[owner]}
        return self.records.create(self.system, "item", payload).id

    def visit(self, item_id: int) -> int:
        return self.records.create(self.system, "visit", {"note": "v", "item": item_id,
                                                          "owner_id": None}).id

    def row(self, item_id: int) -> Any:
        table = self.schema.table("item")
        with self.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.id == item_id)).one()

    def owner(self, item_id: int) -> str | None:
        owner_id = self.row(item_id).owner_id
        names = {v: k for k, v in self.users.items()}
        return None if owner_id is None else names[int(owner_id)]

    def ledger(self, item_id: int) -> list[Any]:
        ledger = self.schema.system["tp_pool_event"]
        with self.engine.connect() as conn:
            return conn.execute(select(ledger).where(ledger.c.entity == "item",
                                                     ledger.c.record_id == item_id)
                                .order_by(ledger.c.id)).all()


def _org(engine: Engine) -> dict[str, int]:
    with write_transaction(engine) as conn:
        company = create_department(conn, code="company", name="Company")
        team_a = create_department(conn, code="team_a", name="A", parent_id=company.id)
        team_b = create_department(conn, code="team_b", name="B", parent_id=company.id)
        users: dict[str, int] = {}
        for login, dept in (("lead_a", company.id), ("a1", team_a.id), ("a2", team_a.id),
                            ("a3", team_a.id), ("b1", team_b.id), ("boss", company.id)):
            users[login] = create_user(conn, login=login, display_name=login,
                                       department_id=dept).id
        set_leader(conn, team_a.id, users["lead_a"])
        bind_role(conn, user_id=users["boss"], role="chief")
    return users


@pytest.fixture
def make_rules_world(db_engine: Engine) -> Iterator[Callable[..., World]]:
    """``make_rules_world(rules=[...], distribution={...}, limits={...})``: build it once."""

    def make(**pool: Any) -> World:
        body = copy.deepcopy(BASE_POOL)
        body.update(pool)
        registry = registry_from_document({
            "entities": {"item": ITEM, "visit": VISIT}, "pipelines": {"item_flow": PIPELINE},
            "pools": {"item_pool": body}, "roles": {"chief": ROLE}})
        schema = build_schema(registry)
        schema.metadata.create_all(db_engine)
        clock = Clock()
        records = install_hooks(RecordService(engine=db_engine, schema=schema, clock=clock))
        return World(engine=db_engine, schema=schema, records=records, clock=clock,
                     users=_org(db_engine))

    yield make
