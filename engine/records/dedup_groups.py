"""Duplicate candidates already stored: records sharing a name stem or a match key.

Set-based, one ``GROUP BY <column> HAVING count(*) > 1`` per page over the rows the
reader's scope allows, read off the stem/key column's index, then one query for
the members of that page's groups. Pages are keyset on the grouped value, so page
50 costs what page 1 does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, Connection, func, or_, select

from engine.metadata.model import DedupMatch, Entity
from engine.records._plan import EntityPlan
from engine.storage.matchkeys import key_column, stem_column

#: Members listed (and linked to the merge screen) per group; the count says the rest.
MEMBERS = 10
MAX_PAGE = 100


@dataclass(frozen=True)
class Basis:
    """What a candidates list groups on: a similar_name rule or a dedup key field."""

    name: str        # the rule's name, or "key_<field>"
    field: str
    column: str


@dataclass(frozen=True)
class Member:
    id: int
    title: str | None


@dataclass(frozen=True)
class Group:
    key: str
    count: int
    members: tuple[Member, ...]


@dataclass(frozen=True)
class GroupPage:
    basis: Basis
    groups: tuple[Group, ...]
    next_key: str | None


def bases(entity: Entity) -> tuple[Basis, ...]:
    """The entity's groupings, in declaration order (unique keys cannot hold twins)."""
    out = [Basis(r.name, r.field, stem_column(r.field)) for r in entity.dedup_rules
           if r.match is DedupMatch.SIMILAR_NAME]
    unique = {f for k in entity.unique_keys for f in k.fields} | \
        {f.name for f in entity.fields if f.unique}
    out += [Basis(f"key_{name}", name, key_column(name)) for name in entity.dedup_keys
            if name not in unique]
    return tuple(out)


def group_page(conn: Connection, plan: EntityPlan, basis: Basis,
               scope: Sequence[ColumnElement[bool]], *, after: str | None = None,
               limit: int = 20, titles: bool = True) -> GroupPage:
    """One page of groups (by the grouped value, ascending) within ``scope`` (OR-ed);
    ``titles`` False when the reader may not see the title field."""
    table = plan.table
    if basis.column not in table.c or not scope:
        return GroupPage(basis, (), None)
    column: Column[str] = table.c[basis.column]
    where: list[ColumnElement[bool]] = [column.is_not(None), or_(*scope)]
    if plan.soft_delete:
        where.append(table.c.deleted_at.is_(None))
    limit = max(1, min(limit, MAX_PAGE))
    stmt = (select(column, func.count()).where(*where).group_by(column)
            .having(func.count() > 1).order_by(column).limit(limit + 1))
    if after is not None:
        stmt = stmt.where(column > after)
    rows = conn.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    counts = {str(k): int(n) for k, n in rows}
    members: dict[str, list[Member]] = {k: [] for k in counts}
    if counts:
        title = table.c[plan.entity.title_field]
        for rid, key, text in conn.execute(
                select(table.c.id, column, title).where(*where, column.in_(list(counts)))
                .order_by(column, table.c.id)):
            group = members[str(key)]
            if len(group) < MEMBERS:
                shown = None if text is None or not titles else str(text)
                group.append(Member(int(rid), shown))
    groups = tuple(Group(k, counts[k], tuple(members[k])) for k in counts)
    return GroupPage(basis, groups, groups[-1].key if more and groups else None)
