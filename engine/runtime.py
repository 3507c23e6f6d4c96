"""One running Tidepool: database engine, current registry, tables and services.

The UI, the CLI and the benchmarks open a ``Runtime`` instead of wiring the
pieces themselves. The registry is read from the database (the metadata last
applied), so every process sees the same tables as the migration created.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from engine.access import AccessPolicy, Unrestricted
from engine.errors import TidepoolError
from engine.metadata.model import Registry
from engine.records.service import RecordService
from engine.storage.applied import applied_registry
from engine.storage.database import make_engine
from engine.storage.tables import StorageSchema, build_schema


class NotInitialisedError(TidepoolError):
    """The database has no applied metadata yet."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} is not initialised: run `tidepool init --db {url}` first")


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    registry: Registry
    schema: StorageSchema
    records: RecordService


def open_runtime(url: str, *, policy: AccessPolicy | None = None,
                 engine: Engine | None = None) -> Runtime:
    """Connect to ``url`` and build the services for the metadata it has applied."""
    engine = engine or make_engine(url)
    with engine.connect() as conn:
        registry = applied_registry(conn)
    if registry is None:
        raise NotInitialisedError(url)
    schema = build_schema(registry)
    records = RecordService(engine=engine, schema=schema, policy=policy or Unrestricted())
    return Runtime(engine=engine, registry=registry, schema=schema, records=records)
