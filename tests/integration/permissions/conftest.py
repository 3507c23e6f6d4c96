"""Fixtures for the permission tests: an engine with the engine's tables created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from engine.metadata.parse import registry_from_document
from engine.storage.tables import StorageSchema, build_schema


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
