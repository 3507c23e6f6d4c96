"""Users, their roles and the org tree, as the admin area manages them.

Each method is one short write transaction over the id-based functions of
``engine.permissions`` (identity, org, policy_store), so the admin area and the
command line apply the same rules; engine errors (``ValidationError`` per field,
``DuplicateError``, ``NotFoundError``) pass through for the screens to show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from engine.actor import Actor
from engine.errors import ValidationError
from engine.messages import M
from engine.metadata.model import Registry
from engine.permissions import identity, org
from engine.permissions.policy_store import ORG_DOMAIN, bind_role, bindings_of, unbind_role
from engine.records.service import RecordService
from engine.storage.database import write_transaction
from engine.workflow.pools import release_held

#: The admin list shows at most this many users (it is not a people search).
MAX_USERS = 1000


@dataclass(frozen=True)
class UserEntry:
    """One user with their department and the roles they hold across the organisation."""

    user: identity.User
    department: org.Department | None
    roles: tuple[str, ...]                       # roles bound in the "org" domain
    other_bindings: tuple[tuple[str, str], ...]  # (role, domain) in departments or pools


@dataclass(frozen=True)
class Directory:
    users: tuple[UserEntry, ...]
    departments: tuple[org.Department, ...]     # in tree order (by path)

    def department(self, department_id: int | None) -> org.Department | None:
        return next((d for d in self.departments if d.id == department_id), None)


def deactivate_and_release(records: RecordService, user_id: int) -> identity.User:
    """Deactivate a user and, in the same transaction, return every record they hold in a
    pooled entity to its pool: at deactivation, not at the next rule run."""
    with records.transaction(Actor.system(via="deactivation")) as tx:
        user = identity.deactivate_user(tx.conn, user_id)
        release_held(tx, user_id, reason="owner deactivated")
    return user


class People:
    """Manage users, role bindings and departments of the database behind ``engine``."""

    def __init__(self, engine: Engine, registry: Registry,
                 records: RecordService | None = None) -> None:
        self.engine = engine
        self.registry = registry
        #: When given, deactivating a user sends their pooled records back to their
        #: pools in the same transaction (engine/workflow/pools.py ``release_held``).
        self.records = records

    def directory(self) -> Directory:
        with self.engine.connect() as conn:
            snapshot = org.load_org_snapshot(conn)
            departments = tuple(sorted(snapshot.departments.values(), key=lambda d: d.path))
            entries = []
            for user_id in sorted(snapshot.user_login)[:MAX_USERS]:
                user = identity.get_user(conn, user_id)
                bindings = bindings_of(conn, user_id)
                entries.append(UserEntry(
                    user=user, department=snapshot.department_of(user_id),
                    roles=tuple(r for r, d in bindings if d == ORG_DOMAIN),
                    other_bindings=tuple((r, d) for r, d in bindings if d != ORG_DOMAIN)))
        return Directory(users=tuple(entries), departments=departments)

    def create_user(self, *, login: str, display_name: str, password: str,
                    email: str | None = None, locale: str = "en",
                    department_id: int | None = None,
                    roles: Iterable[str] = ()) -> identity.User:
        if not password:
            raise ValidationError("user", {"password": M("required")})
        with write_transaction(self.engine) as conn:
            user = identity.create_user(conn, login=login, display_name=display_name,
                                        email=email or None, locale=locale, password=password,
                                        department_id=department_id)
            for role in roles:
                bind_role(conn, user_id=user.id, role=role, registry=self.registry)
        return user

    def set_active(self, user_id: int, active: bool) -> identity.User:
        if not active and self.records is not None:
            return deactivate_and_release(self.records, user_id)
        with write_transaction(self.engine) as conn:
            if active:
                return identity.reactivate_user(conn, user_id)
            return identity.deactivate_user(conn, user_id)

    def set_password(self, user_id: int, password: str) -> identity.User:
        """A new password; every session of the user ends."""
        if not password:
            raise ValidationError("user", {"password": M("required")})
        with write_transaction(self.engine) as conn:
            return identity.set_password(conn, user_id, password)

    def set_roles(self, user_id: int, roles: Iterable[str]) -> None:
        """The user's organisation-wide roles become exactly ``roles``."""
        wanted = set(roles)
        with write_transaction(self.engine) as conn:
            identity.get_user(conn, user_id)
            held = {r for r, d in bindings_of(conn, user_id) if d == ORG_DOMAIN}
            for role in sorted(wanted - held):
                bind_role(conn, user_id=user_id, role=role, registry=self.registry)
            for role in sorted(held - wanted):
                unbind_role(conn, user_id=user_id, role=role)

    def move_user(self, user_id: int, department_id: int | None) -> None:
        with write_transaction(self.engine) as conn:
            org.move_user(conn, user_id, department_id=department_id)

    def create_department(self, *, code: str, name: str,
                          parent_id: int | None = None) -> org.Department:
        with write_transaction(self.engine) as conn:
            return org.create_department(conn, code=code, name=name, parent_id=parent_id)

    def move_department(self, department_id: int, parent_id: int | None) -> org.Department:
        with write_transaction(self.engine) as conn:
            return org.move_department(conn, department_id, new_parent_id=parent_id)

    def set_leader(self, department_id: int, leader_id: int | None) -> org.Department:
        with write_transaction(self.engine) as conn:
            return org.set_leader(conn, department_id, leader_id)
