"""Who gets a record a rule takes from its owner: a department leader or a role holder.

Both are looked up from a user (the record's owner, or for a record lying in
the pool the owner who last gave it back) up the org tree: the leader of the
user's department, else of the nearest department above with an active
leader; for a role, the active holder in the nearest such department (lowest
id first), else any active holder. Inactive users never get records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from engine.permissions import _tables as t


@dataclass(frozen=True)
class OrgView:
    """The little of the org tree assignment needs, read once per rule run."""

    active: frozenset[int]
    department_of: dict[int, int]
    parent_of: dict[int, int | None]
    leader_of: dict[int, int | None]
    role_holders: dict[str, tuple[int, ...]]

    def chain(self, user_id: int | None) -> list[int]:
        """The user's department and every one above it, nearest first."""
        found: list[int] = []
        dept = self.department_of.get(user_id) if user_id is not None else None
        while dept is not None and dept not in found:
            found.append(dept)
            dept = self.parent_of.get(dept)
        return found

    def leader_for(self, user_id: int | None) -> int | None:
        for dept in self.chain(user_id):
            leader = self.leader_of.get(dept)
            if leader is not None and leader in self.active and leader != user_id:
                return leader
        return None

    def role_holder_for(self, role: str, user_id: int | None) -> int | None:
        holders = [u for u in self.role_holders.get(role, ()) if u in self.active]
        for dept in self.chain(user_id):
            here = [u for u in holders if self.department_of.get(u) == dept]
            if here:
                return min(here)
        return min(holders) if holders else None


def load_org_view(conn: Connection, *, roles: Iterable[str] = ()) -> OrgView:
    """Active users, departments with parents and leaders, and holders of ``roles``."""
    users = conn.execute(select(t.user.c.id, t.user.c.active, t.user.c.department_id)).all()
    depts = conn.execute(select(t.department.c.id, t.department.c.parent_id,
                                t.department.c.leader_id)).all()
    wanted = sorted(set(roles))
    holders: dict[str, list[int]] = {r: [] for r in wanted}
    if wanted:
        for uid, role in conn.execute(select(t.role_binding.c.user_id, t.role_binding.c.role)
                                      .where(t.role_binding.c.role.in_(wanted))
                                      .distinct()):
            holders[role].append(int(uid))
    return OrgView(
        active=frozenset(int(u.id) for u in users if u.active),
        department_of={int(u.id): int(u.department_id) for u in users
                       if u.department_id is not None},
        parent_of={int(d.id): None if d.parent_id is None else int(d.parent_id) for d in depts},
        leader_of={int(d.id): None if d.leader_id is None else int(d.leader_id) for d in depts},
        role_holders={r: tuple(sorted(set(v))) for r, v in holders.items()})
