"""Fixtures for the records-service tests: tables for the test entities and a service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from engine.actor import Actor
from engine.records import RecordService
from engine.storage.tables import StorageSchema
from tests.integration.records._docs import create_tables


class Clock:
    """A controllable clock: each call is a microsecond later, so updated_at always moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


@pytest.fixture
def schema(db_engine: Engine) -> Iterator[StorageSchema]:
    yield create_tables(db_engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db_engine: Engine, schema: StorageSchema, clock: Clock) -> RecordService:
    return RecordService(engine=db_engine, schema=schema, clock=clock)


@pytest.fixture
def system() -> Actor:
    return Actor.system("test")
