"""Version stamps in ``tp_policy_version``: one row per kind of cached state.

Every process keeps caches (the policy index, the org snapshot) keyed by a
stamp. A change bumps the stamp in the same transaction as the change itself,
so a process that reads a new stamp also reads the change; comparing one small
row per request is how every process learns it must reload.
"""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy import Connection, Engine, func, insert, literal, select, union_all, update

from engine.errors import WorkDeferred
from engine.permissions import _tables as t
from engine.permissions._clock import utcnow
from engine.scoped import ScopedValue
from engine.storage.applied import METADATA_VERSION_TABLE, SYSTEM_TABLES
from engine.storage.direct import direct_rows

POLICY = "policy"  # roles, role bindings (casbin_rule)
ORG = "org"        # departments, users' departments and levels
#: Who a token or a session belongs to: token revocation, deactivation, reactivation,
#: password changes, ended sessions and profile edits (``credentials.CredentialCache``).
CREDENTIALS = "credentials"
#: Who may have shares of what: a new share (``shares.share_record``). Scopes add the
#: "shared with me" arm only for users who may have one (``scopes``).
SHARES = "shares"
#: Saved list views: any save, rename or delete (``records.saved_views``), so every
#: process's cache of the views a list page shows starts over.
VIEWS = "views"
#: Not a row of ``tp_policy_version``: the newest applied ``tp_metadata_version`` id,
#: read by ``stamps`` in the same statement (``LiveRuntime`` reloads when it moves).
METADATA = "metadata"

#: Per request (``one_read_per_request``): the stamps already read, by engine.
_request_stamps: ContextVar[dict[int, dict[str, int]] | None] = ContextVar(
    "tidepool_request_stamps", default=None)


def current(conn: Connection, name: str) -> int:
    """The stamp of ``name`` (0 before the first change)."""
    found = conn.execute(
        select(t.policy_version.c.version).where(t.policy_version.c.name == name)
    ).scalar_one_or_none()
    return int(found or 0)


def current_all(conn: Connection) -> dict[str, int]:
    """Every stamp in one query (what a per-request check reads)."""
    rows = conn.execute(select(t.policy_version.c.name, t.policy_version.c.version))
    return {name: int(version) for name, version in rows}


#: Bumps made by this process, per stamp: a cache may look at them to see its own
#: process's changes at once, before its next read of the stamps.
_local_bumps: dict[str, int] = {}


def local_bumps(name: str) -> int:
    """How many times this process has bumped ``name`` (committed or not)."""
    return _local_bumps.get(name, 0)


def bump(conn: Connection, name: str) -> int:
    """Advance the stamp of ``name`` inside the caller's transaction; return the new one."""
    _local_bumps[name] = _local_bumps.get(name, 0) + 1
    now = utcnow()
    done = conn.execute(
        update(t.policy_version)
        .where(t.policy_version.c.name == name)
        .values(version=t.policy_version.c.version + 1, changed_at=now)
    )
    if done.rowcount == 0:
        conn.execute(insert(t.policy_version).values(name=name, version=1, changed_at=now))
    return current(conn, name)


def credentials_changed(conn: Connection) -> int:
    """Tell every process that a token or a user's sign-in state changed.

    Call it in the transaction that revokes a token, deactivates or reactivates a
    user, changes a password or ends sessions: each process's ``CredentialCache``
    reads this stamp at most every ``check_interval`` (0.5 s) and drops what it
    cached when it moved, so the change holds in every worker within a second.
    """
    return bump(conn, CREDENTIALS)


#: What ``stamps`` reads: one statement, built once, so that it runs on the direct path
#: (``engine/storage/direct.py``). Through a ``Connection`` its transaction ended in a
#: ROLLBACK, and psycopg drops every statement it prepared on the connection at a
#: ROLLBACK: a list page lost its prepared statement and generic plan to each stamp read.
_STAMPS = union_all(
    select(t.policy_version.c.name, t.policy_version.c.version),
    select(literal(METADATA), func.coalesce(func.max(SYSTEM_TABLES[METADATA_VERSION_TABLE].c.id), 0)),
)


def stamps(engine: Engine, *, fresh: bool = False) -> dict[str, int]:
    """Every stamp and the applied metadata version, in one statement.

    Inside ``one_read_per_request`` the first call reads and the others reuse it:
    the metadata, policy and credential caches each check their stamp on their
    own interval, and when several come due in the same request they share one
    statement instead of running three (issue 13: a list page is its query plus
    at most one more). ``fresh=True`` reads anyway: a forced refresh right after a
    change made in this request.
    """
    shared = _request_stamps.get()
    if shared is not None and not fresh:
        found = shared.get(id(engine))
        if found is not None:
            return found
    if _memory_only.get():
        raise WorkDeferred("a version stamp is due for a read")
    found = {str(name): int(version or 0)
             for name, version in direct_rows(engine, _STAMPS, {})}
    if shared is not None:
        shared[id(engine)] = found
    return found


_memory_only: ContextVar[bool] = ContextVar("tidepool_stamps_from_memory", default=False)


def stamps_from_memory() -> ScopedValue[bool]:
    """Within the block, a stamp read raises ``WorkDeferred`` instead of reading.

    Every cache reads its stamp before it changes anything (and reloads after), so
    refusing the read leaves each cache as it was: the caller runs the same work
    again outside the block, where the read, and a reload it may bring, can block.
    """
    return ScopedValue(_memory_only, True)


def one_read_per_request() -> ScopedValue[dict[int, dict[str, int]] | None]:
    """Within the block, ``stamps`` reads the database at most once per engine."""
    return ScopedValue(_request_stamps, {})
