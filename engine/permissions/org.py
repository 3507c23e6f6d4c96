"""The org tree: departments nested to any depth, each user in one department.

Each department stores its materialised path, the ids of its ancestors and
itself (``/0001/0004/``). "This department and everything below it" is then one
indexed range predicate, ``path >= :p AND path < :p_succ`` where ``p_succ`` is
``p`` with its final ``/`` replaced by ``0`` (the next byte): every descendant
path starts with ``p`` and so sorts inside the range, and no other path does.
Moving a department rewrites its subtree's paths in one UPDATE. Users are not
given a copy of the path (measured in shared/notes/casbin-rowfilter.md: it
does not pay, and a reorganisation would rewrite many rows); scopes join users
to departments instead.

Every change bumps the ``org`` version stamp; ``OrgCache`` reloads a snapshot
of the (small) tree when the stamp moves.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from engine.errors import NotFoundError, ValidationError
from engine.messages import M
from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions._clock import utcnow
from engine.permissions.identity import get_user

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_LEVEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Department:
    id: int
    code: str
    name: str
    parent_id: int | None
    path: str
    leader_id: int | None

    @property
    def depth(self) -> int:
        """1 for a top-level department."""
        return self.path.count("/") - 1

    @property
    def ancestor_ids(self) -> tuple[int, ...]:
        """Ids from the top of the tree down to this department, itself included."""
        return tuple(int(part) for part in self.path.strip("/").split("/"))


def path_successor(path: str) -> str:
    """The smallest string above every path that starts with ``path``."""
    if not path.endswith("/"):
        raise ValueError(f"not a department path: {path!r}")
    return path[:-1] + "0"  # "0" is the byte after "/"


def subtree_condition(path_column: Any, path: str) -> ColumnElement[bool]:
    """``path_column`` is ``path`` or below it: one indexed range predicate."""
    return and_(path_column >= path, path_column < path_successor(path))


def users_in_department(department_id: int) -> Select[Any]:
    """SELECT the ids of users directly in one department."""
    return select(t.user.c.id).where(t.user.c.department_id == department_id)


def users_in_subtree(path: str) -> Select[Any]:
    """SELECT the ids of users in the department at ``path`` or any department below it."""
    return (
        select(t.user.c.id)
        .join(t.department, t.department.c.id == t.user.c.department_id)
        .where(subtree_condition(t.department.c.path, path))
    )


def _department(row: Any) -> Department:
    return Department(id=int(row.id), code=row.code, name=row.name,
                      parent_id=None if row.parent_id is None else int(row.parent_id),
                      path=row.path, leader_id=None if row.leader_id is None else int(row.leader_id))


_DEPT_COLUMNS = (t.department.c.id, t.department.c.code, t.department.c.name,
                 t.department.c.parent_id, t.department.c.path, t.department.c.leader_id)


def get_department(conn: Connection, department_id: int) -> Department:
    row = conn.execute(select(*_DEPT_COLUMNS).where(t.department.c.id == department_id)).first()
    if row is None:
        raise NotFoundError("department", department_id)
    return _department(row)


def find_department(conn: Connection, code: str) -> Department | None:
    row = conn.execute(select(*_DEPT_COLUMNS).where(t.department.c.code == code)).first()
    return None if row is None else _department(row)


def create_department(
    conn: Connection, *, code: str, name: str, parent_id: int | None = None,
    leader_id: int | None = None,
) -> Department:
    """Add a department under ``parent_id`` (or at the top); ``code`` is what pools name."""
    errors: dict[str, str] = {}
    if not isinstance(code, str) or not _CODE.match(code):
        errors["code"] = M("a lower-case identifier of at most 63 characters")
    elif find_department(conn, code) is not None:
        errors["code"] = M("%(code)s is already taken", code=repr(code))
    if not isinstance(name, str) or not (0 < len(name.strip()) <= 200):
        errors["name"] = M("required, at most 200 characters")
    if errors:
        raise ValidationError("department", errors)
    parent_path = "/"
    if parent_id is not None:
        parent_path = _existing(conn, parent_id, field_name="parent_id").path
    if leader_id is not None:
        _existing_user(conn, leader_id)
    # The path holds the new id, known only after the insert.
    new_id = conn.execute(
        insert(t.department).values(code=code, name=name.strip(), parent_id=parent_id,
                                    path=parent_path, leader_id=leader_id, created_at=utcnow())
        .returning(t.department.c.id)
    ).scalar_one()
    conn.execute(update(t.department).where(t.department.c.id == new_id)
                 .values(path=f"{parent_path}{int(new_id):04d}/"))
    versions.bump(conn, versions.ORG)
    return get_department(conn, int(new_id))


def _existing(conn: Connection, department_id: int, *, field_name: str) -> Department:
    try:
        return get_department(conn, department_id)
    except NotFoundError:
        raise ValidationError("department",
                              {field_name: M("no department %(department_id)s",
                                             department_id=department_id)}) from None


def _existing_user(conn: Connection, user_id: int) -> None:
    try:
        get_user(conn, user_id)
    except NotFoundError:
        raise ValidationError("department", {"leader_id": M("no user %(user_id)s",
                                                            user_id=user_id)}) from None


def rename_department(conn: Connection, department_id: int, *, name: str) -> Department:
    if not isinstance(name, str) or not (0 < len(name.strip()) <= 200):
        raise ValidationError("department", {"name": M("required, at most 200 characters")})
    get_department(conn, department_id)
    conn.execute(update(t.department).where(t.department.c.id == department_id)
                 .values(name=name.strip()))
    versions.bump(conn, versions.ORG)
    return get_department(conn, department_id)


def set_leader(conn: Connection, department_id: int, leader_id: int | None) -> Department:
    get_department(conn, department_id)
    if leader_id is not None:
        _existing_user(conn, leader_id)
    conn.execute(update(t.department).where(t.department.c.id == department_id)
                 .values(leader_id=leader_id))
    versions.bump(conn, versions.ORG)
    return get_department(conn, department_id)


def move_department(conn: Connection, department_id: int, *,
                    new_parent_id: int | None) -> Department:
    """Re-hang a department (and everything below it) under ``new_parent_id``.

    Refused when the new parent is the department itself or below it (a cycle).
    """
    moving = get_department(conn, department_id)
    new_parent_path = "/"
    if new_parent_id is not None:
        parent = _existing(conn, new_parent_id, field_name="parent_id")
        if parent.path.startswith(moving.path):
            raise ValidationError("department", {
                "parent_id": M("a department cannot move under itself or its own sub-department")})
        new_parent_path = parent.path
    new_path = f"{new_parent_path}{moving.id:04d}/"
    if new_path != moving.path:
        # One statement for the whole subtree: new prefix + the rest of each old path.
        conn.execute(
            update(t.department)
            .where(subtree_condition(t.department.c.path, moving.path))
            .values(path=literal(new_path, t.department.c.path.type).concat(
                func.substr(t.department.c.path, len(moving.path) + 1)))
        )
    conn.execute(update(t.department).where(t.department.c.id == department_id)
                 .values(parent_id=new_parent_id))
    versions.bump(conn, versions.ORG)
    return get_department(conn, department_id)


def delete_department(conn: Connection, department_id: int) -> None:
    """Remove an empty department (no sub-departments, no users)."""
    dept = get_department(conn, department_id)
    children = conn.execute(select(func.count()).select_from(t.department)
                            .where(t.department.c.parent_id == dept.id)).scalar_one()
    members = conn.execute(select(func.count()).select_from(t.user)
                           .where(t.user.c.department_id == dept.id)).scalar_one()
    if children or members:
        raise ValidationError("department", {
            "id": M("%(code)s still has %(children)s sub-departments and %(members)s users",
                    code=dept.code, children=children, members=members)})
    conn.execute(delete(t.department).where(t.department.c.id == dept.id))
    versions.bump(conn, versions.ORG)


def move_user(conn: Connection, user_id: int, *, department_id: int | None,
              level: str | None = None) -> None:
    """Put a user in a department (``None``: in none), optionally with a new level."""
    get_user(conn, user_id)
    if department_id is not None:
        try:
            get_department(conn, department_id)
        except NotFoundError:
            raise ValidationError("user",
                                  {"department_id": M("no department %(department_id)s",
                                                      department_id=department_id)}) from None
    values: dict[str, Any] = {"department_id": department_id}
    if level is not None:
        if not _LEVEL.match(level):
            raise ValidationError("user", {"level": M("a lower-case identifier")})
        values["level"] = level
    conn.execute(update(t.user).where(t.user.c.id == user_id).values(**values))
    versions.bump(conn, versions.ORG)


@dataclass(frozen=True)
class OrgSnapshot:
    """The whole tree and who sits where, as loaded at one org version."""

    version: int
    departments: dict[int, Department] = field(default_factory=dict)
    user_department: dict[int, int] = field(default_factory=dict)
    user_level: dict[int, str | None] = field(default_factory=dict)
    user_login: dict[int, str] = field(default_factory=dict)

    def department_of(self, user_id: int) -> Department | None:
        dept_id = self.user_department.get(user_id)
        return None if dept_id is None else self.departments.get(dept_id)

    def by_code(self, code: str) -> Department | None:
        return next((d for d in self.departments.values() if d.code == code), None)

    def departments_under(self, department_id: int) -> frozenset[int]:
        """The department and every department below it."""
        root = self.departments[department_id]
        return frozenset(d.id for d in self.departments.values() if d.path.startswith(root.path))

    def users_in(self, department_id: int) -> frozenset[int]:
        return frozenset(u for u, d in self.user_department.items() if d == department_id)

    def users_under(self, department_id: int) -> frozenset[int]:
        under = self.departments_under(department_id)
        return frozenset(u for u, d in self.user_department.items() if d in under)

    def ancestors_of(self, department_id: int) -> tuple[Department, ...]:
        """From the top down to the department itself."""
        dept = self.departments[department_id]
        return tuple(self.departments[i] for i in dept.ancestor_ids if i in self.departments)


def load_org_snapshot(conn: Connection) -> OrgSnapshot:
    version = versions.current(conn, versions.ORG)
    departments = {int(r.id): _department(r) for r in conn.execute(select(*_DEPT_COLUMNS))}
    user_department: dict[int, int] = {}
    user_level: dict[int, str | None] = {}
    user_login: dict[int, str] = {}
    for uid, login, dept_id, level in conn.execute(
            select(t.user.c.id, t.user.c.login, t.user.c.department_id, t.user.c.level)):
        if dept_id is not None:
            user_department[int(uid)] = int(dept_id)
        user_level[int(uid)] = level
        user_login[int(uid)] = login
    return OrgSnapshot(version=version, departments=departments,
                       user_department=user_department, user_level=user_level,
                       user_login=user_login)


class OrgCache:
    """One snapshot per process, reloaded when the ``org`` stamp moves."""

    def __init__(self) -> None:
        self._snapshot: OrgSnapshot | None = None
        self._lock = threading.Lock()

    def get(self, conn: Connection, *, version: int | None = None) -> OrgSnapshot:
        """The snapshot for the current stamp (pass ``version`` if already read)."""
        current = versions.current(conn, versions.ORG) if version is None else version
        snap = self._snapshot
        if snap is not None and snap.version == current:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.version != current:
                snap = load_org_snapshot(conn)
                self._snapshot = snap
            return snap
