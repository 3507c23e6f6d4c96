"""Version stamps in ``tp_policy_version``: one row per kind of cached state.

Every process keeps caches (the policy index, the org snapshot) keyed by a
stamp. A change bumps the stamp in the same transaction as the change itself,
so a process that reads a new stamp also reads the change; comparing one small
row per request is how every process learns it must reload.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from engine.permissions import _tables as t
from engine.permissions._clock import utcnow

POLICY = "policy"  # roles, role bindings (casbin_rule)
ORG = "org"        # departments, users' departments and levels
TOKENS = "tokens"  # API tokens revoked, or their user deactivated or reactivated


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


def bump(conn: Connection, name: str) -> int:
    """Advance the stamp of ``name`` inside the caller's transaction; return the new one."""
    now = utcnow()
    done = conn.execute(
        update(t.policy_version)
        .where(t.policy_version.c.name == name)
        .values(version=t.policy_version.c.version + 1, changed_at=now)
    )
    if done.rowcount == 0:
        conn.execute(insert(t.policy_version).values(name=name, version=1, changed_at=now))
    return current(conn, name)
