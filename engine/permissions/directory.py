"""Who is who, for screens: display names by id and a people picker.

Read-only lookups the UI needs to show owners, authors of feed entries and user
fields by name, and to offer people to assign records to. Names are not
secret inside an organisation; passwords, tokens and login history never leave
``identity``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, or_, select

from engine.permissions import _tables as t

MAX_IDS = 1000


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Person:
    id: int
    login: str
    display_name: str
    active: bool


def _person(row: object) -> Person:
    return Person(id=int(row.id), login=row.login, display_name=row.display_name,  # type: ignore[attr-defined]
                  active=bool(row.active))  # type: ignore[attr-defined]


_COLUMNS = (t.user.c.id, t.user.c.login, t.user.c.display_name, t.user.c.active)


def people_by_id(engine: Engine, ids: Iterable[int]) -> dict[int, Person]:
    wanted = sorted({int(i) for i in ids if isinstance(i, int) and not isinstance(i, bool)})
    found: dict[int, Person] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), MAX_IDS):
            chunk = wanted[start:start + MAX_IDS]
            for row in conn.execute(select(*_COLUMNS).where(t.user.c.id.in_(chunk))):
                found[int(row.id)] = _person(row)
    return found


def search_people(engine: Engine, text: str = "", *, limit: int = 50) -> list[Person]:
    """Active people whose name or login contains ``text`` (all of them when empty)."""
    stmt = select(*_COLUMNS).where(t.user.c.active.is_(True))
    if text.strip():
        pattern = f"%{_escape_like(text.strip())}%"
        stmt = stmt.where(or_(t.user.c.display_name.ilike(pattern, escape="\\"),
                              t.user.c.login.ilike(pattern, escape="\\")))
    stmt = stmt.order_by(t.user.c.display_name, t.user.c.id).limit(max(1, min(limit, 200)))
    with engine.connect() as conn:
        return [_person(r) for r in conn.execute(stmt)]
