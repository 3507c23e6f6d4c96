"""A CRM database to configure: the apps/crm package initialised, an admin user, a service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.configure.service import ConfigService
from engine.metadata.loader import load_packages
from engine.permissions.identity import create_user
from engine.runtime import open_runtime
from engine.storage.applied import SYSTEM_TABLES, applied_registry, applied_version
from engine.storage.customisations import load_customisations
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import init_database

CRM = Path(__file__).resolve().parents[3] / "apps" / "crm"


@dataclass
class Setup:
    url: str
    engine: Engine
    service: ConfigService
    admin: Actor

    def state(self) -> tuple[int | None, list[tuple[str, str, Any]], int]:
        """(applied version, stored customisations, activity rows): what an apply writes."""
        with self.engine.connect() as conn:
            customs = [(c["kind"], c["name"], c["document"]) for c in load_customisations(conn)]
            activity = conn.execute(select(func.count()).select_from(
                SYSTEM_TABLES["tp_activity"])).scalar_one()
            return applied_version(conn), customs, activity

    def applied(self) -> Any:
        with self.engine.connect() as conn:
            return applied_registry(conn)

    def create(self, entity: str, values: dict[str, Any]) -> int:
        runtime = open_runtime(self.url, engine=self.engine)
        return runtime.records.create(Actor.system(), entity, values).id


@pytest.fixture
def crm(db_url: str) -> Iterator[Setup]:
    engine = make_engine(db_url)
    init_database(engine, target=load_packages([CRM]))
    with write_transaction(engine) as conn:
        user = create_user(conn, login="alice", display_name="Alice Admin", password=None)
    try:
        yield Setup(url=db_url, engine=engine, service=ConfigService(engine, apps=[CRM]),
                    admin=Actor(user_id=user.id, login="alice", roles=("admin",)))
    finally:
        engine.dispose()
