"""A CRM demo database with real permissions, pools whose limits each test chooses, a clock."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from engine.actor import Actor
from engine.demo import prepare_demo
from engine.metadata.model import PoolLimits, Registry
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.service import RecordService
from engine.runtime import install_hooks
from engine.storage.applied import applied_registry
from engine.storage.database import make_engine
from engine.storage.tables import build_schema
from engine.workflow.pools import PoolService
from tests.conftest import REPO_ROOT


class Clock:
    """Now, moved by hand (``advance``); each read is a microsecond later."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclasses.dataclass
class World:
    engine: Engine
    registry: Registry
    records: RecordService
    pools: PoolService
    clock: Clock

    def actor(self, login: str) -> Actor:
        with self.engine.connect() as conn:
            user = find_user(conn, login)
        assert user is not None, login
        return self.records.policy.actor_for(user.id, login=login)  # type: ignore[attr-defined]

    def uid(self, login: str) -> int:
        user_id = self.actor(login).user_id
        assert user_id is not None
        return user_id

    def row(self, entity: str, record_id: int) -> dict[str, Any]:
        table = self.records.schema.table(entity)
        with self.engine.connect() as conn:
            return dict(conn.execute(select(table).where(table.c.id == record_id)).one()._mapping)

    def put_in_pool(self, entity: str, *ids: int, pool: str | None = None) -> None:
        name = pool or next(p.name for p in self.registry.pools.values() if p.entity == entity)
        table = self.records.schema.table(entity)
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id.in_(ids))
                         .values(owner_id=None, pool_id=name))

    def pooled(self, entity: str) -> list[int]:
        table = self.records.schema.table(entity)
        with self.engine.connect() as conn:
            return list(conn.execute(select(table.c.id).where(
                table.c.owner_id.is_(None), table.c.pool_id.is_not(None))
                .order_by(table.c.id)).scalars())

    def held_by(self, entity: str, login: str) -> list[int]:
        table = self.records.schema.table(entity)
        with self.engine.connect() as conn:
            return list(conn.execute(select(table.c.id).where(
                table.c.owner_id == self.uid(login)).order_by(table.c.id)).scalars())

    def ledger(self, entity: str, record_id: int) -> list[dict[str, Any]]:
        table = self.records.schema.system["tp_pool_event"]
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(table).where(table.c.entity == entity, table.c.record_id == record_id)
                .order_by(table.c.id))]


WorldFactory = Callable[..., World]


@pytest.fixture
def make_world(db_url: str) -> Iterator[WorldFactory]:
    """``make_world(customer_pool=PoolLimits(...))``: the demo with those pool limits."""
    prepare_demo(db_url, apps=[REPO_ROOT / "apps" / "crm"], out=io.StringIO(), rows=30)
    engines: list[Engine] = []

    def make(**limits: PoolLimits) -> World:
        # Room for the concurrency tests' threads, each on its own connection.
        engine = make_engine(db_url, pool_size=10, max_overflow=50)
        engines.append(engine)
        with engine.connect() as conn:
            base = applied_registry(conn)
        assert base is not None
        pools = {name: dataclasses.replace(p, limits=limits.get(name, PoolLimits()))
                 for name, p in base.pools.items()}
        registry = dataclasses.replace(base, pools=pools)
        clock = Clock()
        records = install_hooks(RecordService(
            engine=engine, schema=build_schema(registry),
            policy=CasbinAccessPolicy(engine, registry), clock=clock))
        return World(engine, registry, records, PoolService(records), clock)

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def world(make_world: WorldFactory) -> World:
    return make_world()
