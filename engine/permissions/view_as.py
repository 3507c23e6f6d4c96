"""Administrators: who counts as one, and "view as user", recorded in the activity log.

An administrator is an active user holding the ``admin`` role in the ``org``
domain (``tidepool init`` binds the first one). Apps name their roles freely;
this one name is the engine's convention, like ``tp_`` for its tables.

"View as" lets an administrator see exactly what another user sees: the Actor
it returns *is* that user for every permission decision, and carries the real
administrator in ``impersonator_id``. ``CasbinAccessPolicy`` refuses every
action but read and export to such an actor, so nothing is ever written in the
other user's name. Each start is written to ``tp_activity`` (entity ``tp_user``,
the viewed user's id, kind ``view_as``, the administrator as actor) in the
caller's transaction, so the log and the grant cannot part.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, and_, insert, select

from engine.actor import Actor
from engine.errors import ForbiddenError, ValidationError
from engine.messages import M
from engine.permissions import _tables as t
from engine.permissions._clock import as_utc, utcnow
from engine.permissions.identity import get_user
from engine.permissions.policy_store import ORG_DOMAIN, bindings_of

ADMIN_ROLE = "admin"
VIEW_AS = "view_as"  # the tp_activity kind


@dataclass(frozen=True)
class ViewAsEntry:
    """One recorded start of "view as"."""

    id: int
    admin_id: int | None
    user_id: int
    at: dt.datetime
    body: str


def is_admin(conn: Connection, user_id: int) -> bool:
    """Whether the user is active and holds the admin role in the org domain."""
    row = conn.execute(
        select(t.user.c.active)
        .join(t.role_binding, t.role_binding.c.user_id == t.user.c.id)
        .where(t.user.c.id == user_id, t.role_binding.c.role == ADMIN_ROLE,
               t.role_binding.c.domain == ORG_DOMAIN)
    ).first()
    return row is not None and bool(row.active)


def view_as(conn: Connection, *, admin: Actor, user_id: int,
            now: dt.datetime | None = None) -> Actor:
    """An Actor that sees what ``user_id`` sees, on behalf of ``admin``; logged.

    Refused (``ForbiddenError``) unless ``admin`` is a signed-in administrator
    acting as themselves; ``NotFoundError`` for an unknown user; a deactivated
    user or oneself is a ``ValidationError`` (there is nothing to see).
    """
    if admin.is_system or admin.user_id is None:
        raise ForbiddenError("user", VIEW_AS, M("only a signed-in administrator may view as "
                                                "another user"))
    if admin.impersonator_id is not None:
        raise ForbiddenError("user", VIEW_AS, M("you are already viewing as another user; "
                                                "go back to yourself first"))
    if not is_admin(conn, admin.user_id):
        raise ForbiddenError("user", VIEW_AS, M("only administrators may view as another user"))
    target = get_user(conn, user_id)
    if target.id == admin.user_id:
        raise ValidationError("view_as", {"user_id": M("that is you")})
    if not target.active:
        raise ValidationError("view_as", {"user_id": M("%(login)s is deactivated and sees nothing",
                                                       login=target.login)})
    me = get_user(conn, admin.user_id)
    conn.execute(insert(t.activity).values(
        entity=t.user.name, record_id=target.id, kind=VIEW_AS, actor_id=me.id,
        at=now or utcnow(), changes=None, body=f"{me.login} viewed as {target.login}"))
    roles = tuple(dict.fromkeys(role for role, _ in bindings_of(conn, target.id)))
    return Actor(user_id=target.id, login=target.login, locale=target.locale, roles=roles,
                 impersonator_id=me.id, impersonator_login=me.login)


def view_as_log(conn: Connection, *, user_id: int | None = None,
                admin_id: int | None = None, limit: int = 100) -> list[ViewAsEntry]:
    """Recorded "view as" starts, newest first, optionally of one user or one admin."""
    a = t.activity
    where = [a.c.entity == t.user.name, a.c.kind == VIEW_AS]
    if user_id is not None:
        where.append(a.c.record_id == user_id)
    if admin_id is not None:
        where.append(a.c.actor_id == admin_id)
    rows = conn.execute(select(a.c.id, a.c.actor_id, a.c.record_id, a.c.at, a.c.body)
                        .where(and_(*where)).order_by(a.c.id.desc()).limit(limit))
    return [ViewAsEntry(id=int(r.id), admin_id=r.actor_id, user_id=int(r.record_id),
                        at=as_utc(r.at), body=r.body or "")  # type: ignore[arg-type]
            for r in rows]
