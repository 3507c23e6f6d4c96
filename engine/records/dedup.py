"""Duplicates: which stored records hold some rows' unique keys (exact: refused), and
which stored records the entity's fuzzy dedup rules match (warned about).

Exact: ``holders`` - one indexed probe per key per chunk of rows, on the key
columns of normalised fields (engine/storage/matchkeys.py), so ``130 0000 0003``
finds the record saved as ``+86 130-0000-0003``; imports' skip and upsert modes
decide "new or existing" with it.

Fuzzy (the ``dedup.warn`` rules of entities/<name>.json): ``matches`` finds the
stored records per row, ``describe`` turns them into ``DedupWarning``s that name a
record only when the user may read it. ``RecordService.dedup_warnings`` is the
entry point every path uses (forms, API, bulk, import, pool release, conversion);
its signature is stable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, or_, select

from engine.access import AccessPolicy
from engine.actor import Actor
from engine.metadata.model import DedupMatch, DedupRule, Entity, LocalText
from engine.records._plan import EntityPlan
from engine.records._scope_checks import readable_ids
from engine.records._write import duplicates
from engine.records.coerce import CoercionError, InputSource
from engine.storage.matchkeys import Normaliser, name_stem, normaliser, stem_column

CHUNK = 500


def checked_fields(entity: Entity) -> frozenset[str]:
    """The fields the entity's fuzzy dedup rules read: a create or edit that leaves them
    all alone needs no warning lookup. One definition for every path that asks (forms,
    their live check, the API's update), so a rule reading more than its own field
    changes them all at once."""
    return frozenset(rule.field for rule in entity.dedup_rules)


def holders(conn: Connection, plan: EntityPlan, rows: Sequence[Mapping[str, Any]]
            ) -> list[int | None]:
    """Per row, the id of a stored record holding one of its unique keys (None: new).

    Rows hold coerced field values. Every record is considered, including ones the
    caller cannot read: the caller decides what to tell (a hidden holder's id is
    never shown, only that one exists).
    """
    found: list[int | None] = [None] * len(rows)
    for dup in duplicates(conn, plan, rows):
        if dup.existing_id is not None and found[dup.index] is None:
            found[dup.index] = int(dup.existing_id)
    return found


def key_of_row(plan: EntityPlan, row: Mapping[str, Any]) -> tuple[tuple[Any, ...], ...]:
    """The normalised unique keys of one row (empty parts make a key absent: None)."""
    keys: list[tuple[Any, ...]] = []
    for spec in plan.uniques:
        k = spec.key_of(row)
        keys.append(k if None not in k else ())
    return tuple(keys)


# --- fuzzy rules: warnings, never refusals ---------------------------------------------------

@dataclass(frozen=True)
class Match:
    """A stored record a fuzzy rule matched for one checked row (before permissions)."""

    index: int
    rule: DedupRule
    entity: str
    existing_id: int
    count: int          # how many stored records the rule matched (existing_id is the first)
    column: str = ""    # the probed stem/key column and value, to find a readable match
    key: str = ""


@dataclass(frozen=True)
class DedupWarning:
    """A possible duplicate, as the checking user may be told about it.

    ``existing_id`` and ``title`` are set only when the user may read the matched
    record; otherwise ``ask`` names whom to ask about it (the leader of its owner's
    department), or is empty for "an administrator". Same rule as the refusals.
    """

    index: int
    rule: str
    entity: str
    message: LocalText
    existing_id: int | None
    title: str | None
    count: int
    ask: str | None

    @property
    def visible(self) -> bool:
        return self.existing_id is not None

    def as_json(self) -> dict[str, Any]:
        """The API's form (``_warnings`` of a create, ``warnings`` of a bulk create)."""
        out: dict[str, Any] = {"rule": self.rule, "entity": self.entity,
                               "message": self.message.get(), "count": self.count}
        if self.existing_id is not None:
            out |= {"existing_id": self.existing_id, "title": self.title}
        else:
            out["ask"] = self.ask or "an administrator"
        return out


ProbeOf = Callable[[str], EntityPlan]


def probe_values(plan: EntityPlan, values: Mapping[str, Any], *,
                 source: InputSource) -> dict[str, Any]:
    """The values the entity's fuzzy rules read, coerced from form or JSON input.

    A value that does not coerce is left out (its field error is the form's business,
    not a warning's).
    """
    out: dict[str, Any] = {}
    for rule in plan.entity.dedup_rules:
        raw = values.get(rule.field)
        fp = plan.fields.get(rule.field)
        if raw is None or fp is None:
            continue
        coerce = fp.coerce_string if InputSource(source) is InputSource.STRING else fp.coerce_json
        try:
            out[rule.field] = coerce(raw)
        except CoercionError:
            continue
    return out


def matches(conn: Connection, plan_of: ProbeOf, entity: str,
            rows: Sequence[Mapping[str, Any]], *,
            exclude_id: int | None = None) -> list[Match]:
    """Stored records each fuzzy rule of ``entity`` matches, per row (coerced values).

    Cost: per rule, one ``GROUP BY`` over an ``IN`` list of the rows' stems or keys,
    read off the stem/key column's index (one probe per distinct value) - no scan,
    on SQLite and PostgreSQL alike. Soft-deleted records are not matched (they are in
    the recycle bin, not in anyone's way); ``exclude_id`` is the record being edited.
    """
    plan = plan_of(entity)
    found: list[Match] = []
    for rule in plan.entity.dedup_rules:
        target = plan if rule.match is DedupMatch.SIMILAR_NAME else plan_of(rule.entity)
        column_name, norm = _probe_column(plan, target, rule)
        if column_name is None or norm is None or column_name not in target.table.c:
            continue
        wanted: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            key = norm(row.get(rule.field)) if row.get(rule.field) is not None else None
            if key is not None:
                wanted.setdefault(key, []).append(i)
        column = target.table.c[column_name]
        for chunk in _chunks(list(wanted), CHUNK):
            stmt = (select(column, func.min(target.table.c.id), func.count())
                    .where(column.in_(chunk)).group_by(column))
            if target.soft_delete:
                stmt = stmt.where(target.table.c.deleted_at.is_(None))
            if exclude_id is not None and target is plan:
                stmt = stmt.where(target.table.c.id != exclude_id)
            for key, first, count in conn.execute(stmt):
                for i in wanted[key]:
                    found.append(Match(i, rule, target.name, int(first), int(count),
                                       column_name, str(key)))
    found.sort(key=lambda m: m.index)
    return found


def _probe_column(plan: EntityPlan, target: EntityPlan, rule: DedupRule
                  ) -> tuple[str | None, Normaliser | None]:
    if rule.match is DedupMatch.SIMILAR_NAME:
        return stem_column(rule.field), name_stem
    keyed = target.match_keys.get(rule.target_field)
    fp = plan.fields.get(rule.field)
    if keyed is None or fp is None:
        return None, None
    # The source field's own normalisation: the crosscheck makes both fields one type.
    return keyed[0], normaliser(fp.field) or keyed[1]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _readable_instead(conn: Connection, policy: AccessPolicy, actor: Actor, plan_of: ProbeOf,
                      m: Match) -> Match:
    """When the first match is hidden but others exist, the first one the actor may read
    (one more probe of the same index, inside the read scope)."""
    target = plan_of(m.entity)
    scope = policy.row_scope(actor, target.entity, target.table, "read")
    if scope.is_empty or not m.column:
        return m
    stmt = select(func.min(target.table.c.id)).where(
        target.table.c[m.column] == m.key, or_(*scope.branches))
    if target.soft_delete:
        stmt = stmt.where(target.table.c.deleted_at.is_(None))
    other = conn.execute(stmt).scalar()
    return m if other is None else dataclasses.replace(m, existing_id=int(other))


def describe(conn: Connection, policy: AccessPolicy, actor: Actor, plan_of: ProbeOf,
             found: Sequence[Match], *, department: Table, user: Table) -> list[DedupWarning]:
    """Matches as the actor may be told about them (see ``DedupWarning``)."""
    out: list[DedupWarning] = []
    by_entity: dict[str, set[int]] = {}
    for m in found:
        by_entity.setdefault(m.entity, set()).add(m.existing_id)
    seen: dict[str, set[int]] = {}
    titles: dict[tuple[str, int], str | None] = {}
    asks: dict[tuple[str, int], str | None] = {}
    for name, ids in by_entity.items():
        target = plan_of(name)
        seen[name] = readable_ids(conn, policy, actor, target, ids)
        title = target.entity.title_field
        hidden = policy.hidden_fields(actor, target.entity)
        if seen[name] and title not in hidden:
            for rid, text in conn.execute(select(target.table.c.id, target.table.c[title])
                                          .where(target.table.c.id.in_(seen[name]))):
                titles[(name, int(rid))] = None if text is None else str(text)
        unseen = ids - seen[name]
        if unseen and target.owned:
            leader = user.alias("leader")
            stmt = (select(target.table.c.id, leader.c.display_name)
                    .select_from(target.table
                                 .join(user, user.c.id == target.table.c.owner_id)
                                 .join(department, department.c.id == user.c.department_id)
                                 .join(leader, leader.c.id == department.c.leader_id))
                    .where(target.table.c.id.in_(unseen)))
            for rid, who in conn.execute(stmt):
                asks[(name, int(rid))] = str(who)
    found = [_readable_instead(conn, policy, actor, plan_of, m) if m.count > 1 and
             m.existing_id not in seen[m.entity] else m for m in found]
    for m in found:
        if m.existing_id not in seen[m.entity] and m.existing_id not in by_entity[m.entity]:
            seen[m.entity].add(m.existing_id)  # found through the read scope just now
            target = plan_of(m.entity)
            if target.entity.title_field not in policy.hidden_fields(actor, target.entity):
                titles[(m.entity, m.existing_id)] = conn.execute(
                    select(target.table.c[target.entity.title_field])
                    .where(target.table.c.id == m.existing_id)).scalar()
    for m in found:
        visible = m.existing_id in seen[m.entity]
        out.append(DedupWarning(
            index=m.index, rule=m.rule.name, entity=m.entity, message=m.rule.message,
            existing_id=m.existing_id if visible else None,
            title=titles.get((m.entity, m.existing_id)) if visible else None,
            count=m.count, ask=None if visible else asks.get((m.entity, m.existing_id))))
    return out
