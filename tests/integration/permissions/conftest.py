"""Fixtures for the permission tests: an engine with the engine's tables created, and a
database per module for the seeded CRM org."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from engine.metadata.parse import registry_from_document
from engine.storage.database import make_engine
from engine.storage.tables import StorageSchema, build_schema
from tests.integration.permissions._crm_org import CrmOrg, seed_crm


@pytest.fixture(scope="module")
def crm(module_db_url: str) -> Iterator[CrmOrg]:
    """The seeded CRM org (tests/integration/permissions/_crm_org.py), once per module."""
    engine = make_engine(module_db_url)
    try:
        yield seed_crm(engine)
    finally:
        engine.dispose()


@pytest.fixture
def empty_schema() -> StorageSchema:
    return build_schema(registry_from_document({"entities": {}}))


@pytest.fixture
def ident_engine(db_engine: Engine, empty_schema: StorageSchema) -> Iterator[Engine]:
    """A database holding the system tables (users, departments, tokens, rules...)."""
    empty_schema.metadata.create_all(db_engine)
    yield db_engine


def make_tables(engine: Engine, document: dict[str, Any]) -> StorageSchema:
    schema = build_schema(registry_from_document(document))
    schema.metadata.create_all(engine)
    return schema


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def module_db_url(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for a whole test module (seeded once, left as found by every test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('perm') / 'crm.db'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"m_{request.module.__name__.rsplit('.', 1)[-1]}"[:60]
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield cluster.url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
