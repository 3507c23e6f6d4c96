"""Sharing one record with a user or a department, for reading or writing, maybe until a date.

Shares live in ``tp_share`` and are read by the compiled row scope as a
subquery at query time, so a new, changed or revoked share counts from the
next query in every process, with no cache to invalidate. A department share
reaches the department and everything below it.

What a share gives (``scopes.SHARE_ACTIONS``): ``read`` lets the grantee read
and export the record, ``write`` also update it, and only for actions the
grantee's roles hold on the entity at all. Deleting, assigning or pool work
never come from a share. Who may share a record is the caller's decision (the
UI offers it to users who may update the record); these functions only keep
the table right.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from engine.errors import NotFoundError, ValidationError
from engine.messages import M
from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions._clock import as_utc, utcnow

ACCESS_LEVELS = ("read", "write")


@dataclass(frozen=True)
class Share:
    id: int
    entity: str
    record_id: int
    user_id: int | None
    department_id: int | None
    access: str
    expires_at: dt.datetime | None
    created_by: int | None


def _share(row: Any) -> Share:
    return Share(id=int(row.id), entity=row.entity, record_id=int(row.record_id),
                 user_id=row.user_id, department_id=row.department_id, access=row.access,
                 expires_at=as_utc(row.expires_at), created_by=row.created_by)


def share_record(
    conn: Connection, table: Table, record_id: int, *, access: str = "read",
    user_id: int | None = None, department_id: int | None = None,
    expires_at: dt.datetime | None = None, created_by: int | None = None,
    now: dt.datetime | None = None,
) -> Share:
    """Share a record of ``table`` with one user or one department.

    Sharing again with the same grantee replaces the access and expiry (one
    share per record and grantee). Every problem is reported at once, before
    anything is written.
    """
    now = now or utcnow()
    errors: dict[str, str] = {}
    if (user_id is None) == (department_id is None):
        errors["grantee"] = M("exactly one of a user or a department")
    if access not in ACCESS_LEVELS:
        errors["access"] = M("read or write")
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
        errors["expires_at"] = M("an aware date-time in the future")
    if not isinstance(record_id, int) or isinstance(record_id, bool) or record_id < 1:
        errors["record_id"] = M("a record id")
    elif conn.execute(select(table.c.id).where(table.c.id == record_id)).first() is None:
        errors["record_id"] = M("no %(name)s %(record_id)s", name=table.name, record_id=record_id)
    if user_id is not None and conn.execute(
            select(t.user.c.id).where(t.user.c.id == user_id)).first() is None:
        errors["user_id"] = M("no user %(user_id)s", user_id=user_id)
    if department_id is not None and conn.execute(
            select(t.department.c.id).where(t.department.c.id == department_id)).first() is None:
        errors["department_id"] = M("no department %(department_id)s", department_id=department_id)
    if errors:
        raise ValidationError("share", errors)
    grantee = (t.share.c.user_id == user_id) if user_id is not None \
        else (t.share.c.department_id == department_id)
    same = (t.share.c.entity == table.name, t.share.c.record_id == record_id, grantee)
    existing = conn.execute(select(t.share.c.id).where(*same)).scalar()
    if existing is not None:
        conn.execute(update(t.share).where(t.share.c.id == existing)
                     .values(access=access, expires_at=expires_at, created_by=created_by))
        return get_share(conn, int(existing))
    # A first share may open the "shared with me" arm of the grantee's scopes.
    versions.bump(conn, versions.SHARES)
    new_id = conn.execute(insert(t.share).values(
        entity=table.name, record_id=record_id, user_id=user_id, department_id=department_id,
        access=access, expires_at=expires_at, created_at=now, created_by=created_by,
    ).returning(t.share.c.id)).scalar_one()
    return get_share(conn, int(new_id))


def get_share(conn: Connection, share_id: int) -> Share:
    row = conn.execute(select(t.share).where(t.share.c.id == share_id)).first()
    if row is None:
        raise NotFoundError("share", share_id)
    return _share(row)


def shares_of(conn: Connection, entity: str, record_id: int) -> list[Share]:
    """Every share of one record (expired ones included: the admin sees them lapse)."""
    rows = conn.execute(select(t.share).where(t.share.c.entity == entity,
                                              t.share.c.record_id == record_id)
                        .order_by(t.share.c.id))
    return [_share(r) for r in rows]


def revoke_share(conn: Connection, share_id: int) -> None:
    """Remove a share; the grantee loses the record from their next query."""
    done = conn.execute(delete(t.share).where(t.share.c.id == share_id))
    if not done.rowcount:
        raise NotFoundError("share", share_id)
