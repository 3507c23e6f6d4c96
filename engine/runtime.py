"""One running Tidepool: database engine, current registry, tables and services.

The UI, the CLI and the benchmarks open a ``Runtime`` instead of wiring the
pieces themselves. The registry is read from the database (the metadata last
applied), so every process sees the same tables as the migration created.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from engine import workflow
from engine.access import AccessPolicy, Unrestricted
from engine.errors import TidepoolError
from engine.metadata.model import Registry
from engine.permissions import versions
from engine.permissions.credentials import CHECK_INTERVAL, TTL, CredentialCache
from engine.records.service import RecordService
from engine.reports.install import install as install_reports
from engine.storage.applied import applied_registry, applied_version
from engine.storage.database import make_engine
from engine.storage.plan import Step
from engine.storage.planner import system_table_steps
from engine.storage.tables import StorageSchema, build_schema
from engine.workflow import automation


class NotInitialisedError(TidepoolError):
    """The database has no applied metadata yet."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} is not initialised: run `tidepool init --db {url}` first")


class OutdatedDatabaseError(TidepoolError):
    """The database lacks system tables or columns this engine version needs (it was
    made by an older one): serving it would fail on the first query that reads them."""

    def __init__(self, url: str, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        shown = make_url(url).render_as_string(hide_password=True)
        needed = "; ".join(step.describe() for step in self.steps)
        super().__init__(f"{shown} was made by an older Tidepool and lacks what this version "
                         f"needs ({needed}): run `tidepool migrate --db {shown}` (with your "
                         "--app packages) first, then serve again")


def require_current_system_tables(engine: Engine, url: str) -> None:
    """Refuse (``OutdatedDatabaseError``) a database whose engine tables are older than
    this code. ``serve`` checks before starting rather than migrating by itself: a
    migration is the operator's step (it locks tables and may need a backup first)."""
    with engine.connect() as conn:
        if applied_version(conn) is None:
            raise NotInitialisedError(url)
        steps = system_table_steps(conn)
    if steps:
        raise OutdatedDatabaseError(url, steps)


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    registry: Registry
    schema: StorageSchema
    records: RecordService
    policy: AccessPolicy
    version: int | None = None  # the tp_metadata_version id this runtime was built from


#: Builds the access policy for a registry (e.g. ``CasbinAccessPolicy``); default: none.
PolicyFactory = Callable[[Engine, Registry], AccessPolicy]

#: Registers write hooks on a freshly built records service (engine/records/hooks.py).
HookProvider = Callable[[RecordService], None]


#: The core hook providers, installed on every service the runtime builds. Core
#: layers register like any app would (one per line, so branches merge cleanly).
HOOK_PROVIDERS: tuple[HookProvider, ...] = (
    workflow.install,
    automation.install,
    install_reports,
)


def install_hooks(records: RecordService,
                  providers: Sequence[HookProvider] | None = None) -> RecordService:
    """Run each provider's ``install(records)``; returns ``records`` for chaining."""
    for install in providers if providers is not None else HOOK_PROVIDERS:
        install(records)
    return records


def open_runtime(url: str, *, policy: AccessPolicy | None = None,
                 engine: Engine | None = None,
                 policy_factory: PolicyFactory | None = None) -> Runtime:
    """Connect to ``url`` and build the services for the metadata it has applied."""
    engine = engine or make_engine(url)
    with engine.connect() as conn:
        version = applied_version(conn)
        registry = applied_registry(conn)
    if registry is None:
        raise NotInitialisedError(url)
    if policy is None:
        policy = policy_factory(engine, registry) if policy_factory else Unrestricted()
    schema = build_schema(registry)
    records = install_hooks(RecordService(engine=engine, schema=schema, policy=policy))
    return Runtime(engine=engine, registry=registry, schema=schema, records=records,
                   policy=policy, version=version)


class LiveRuntime:
    """The current ``Runtime`` of a database whose metadata may change while we serve.

    An admin applying a change in one worker process bumps ``tp_metadata_version``;
    every process notices at its next ``current()`` (the stamp is read at most every
    ``check_interval`` seconds, 0 = every call) and rebuilds tables and services, so
    no restart is needed. ``refresh()`` forces the check, e.g. right after a local
    change.
    """

    def __init__(self, url: str, *, engine: Engine | None = None,
                 policy_factory: PolicyFactory | None = None, check_interval: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.policy_factory = policy_factory
        self.check_interval = check_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._runtime = open_runtime(url, engine=self.engine, policy_factory=policy_factory)
        # Token and session checks, kept across metadata reloads. check_interval=0
        # ("see every change at once", as tests ask) also turns their caching off.
        self.credentials = CredentialCache(
            self.engine, check_interval=min(CHECK_INTERVAL, check_interval),
            ttl=TTL if check_interval > 0 else 0.0)
        self._checked_at = monotonic()
        self.reloads = 0  # observable in tests

    def current(self) -> Runtime:
        if self._monotonic() - self._checked_at < self.check_interval:
            return self._runtime
        return self._check(fresh=False)

    def refresh(self) -> Runtime:
        """Read the metadata stamp now (e.g. right after a change) and reload if it moved."""
        return self._check(fresh=True)

    def _check(self, *, fresh: bool) -> Runtime:
        with self._lock:
            # One statement for every stamp (shared with the policy and credential caches
            # within a request: ``versions.one_read_per_request``).
            version = versions.stamps(self.engine, fresh=fresh).get(versions.METADATA) or None
            self._checked_at = self._monotonic()
            if version != self._runtime.version:
                self._runtime = open_runtime(self.url, engine=self.engine,
                                             policy_factory=self.policy_factory)
                self.reloads += 1
            return self._runtime

    def dispose(self) -> None:
        self.engine.dispose()
