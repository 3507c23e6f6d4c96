"""A record's activity feed as people read it: who did what, field by field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.metadata.model import Entity
from engine.records.activity import ActivityEntry
from engine.records.coerce import CoercionError, coerce
from ui.i18n import N_, t
from ui.screens.records.display import Names, display, system_display, system_label
from ui.zones import format_instant

_KINDS = {"create": N_("created the record"), "update": N_("changed"),
          "delete": N_("deleted the record"), "restore": N_("restored the record"),
          "comment": N_("commented"), "assign": N_("assigned"), "stage": N_("moved the stage"),
          "claim": N_("claimed"), "return": N_("returned it to the pool"),
          "recycle": N_("took it back to the pool"), "move": N_("moved it to another pool"),
          "lock": N_("locked the record"), "unlock": N_("unlocked the record"),
          "drop": N_("dropped it back to the pool"),
          "convert": N_("converted the record"), "attach": N_("attached a converted record"),
          "merge": N_("merged these records into this one:"),
          "unmerge": N_("undid the merge of:")}


@dataclass(frozen=True)
class Change:
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class FeedEntry:
    id: int
    at: str
    at_iso: str
    who: str
    kind: str
    what: str
    changes: list[Change]
    body: str | None
    via: str | None = None  # "rule customer_pool.no_follow_up_7d": the rule behind a system write


def _via(locale: str, via: str | None) -> str | None:
    if via is None:
        return None
    kind, _, name = via.partition(":")
    if kind == "rule" and name:
        return t(locale, "by rule {name}").format(name=name)
    if kind == "conversion" and name:
        return t(locale, "by conversion {name}").format(name=name)
    return t(locale, "by {what}").format(what=via)


def _value(entity: Entity, name: str, value: Any, locale: str, names: Names,
           labels: Mapping[str, Mapping[str, str]]) -> str:
    if not entity.has_field(name):
        return system_display(name, value, names, labels, locale=locale)
    f = entity.field(name)
    try:
        return display(f, coerce(f, value), locale, names)
    except CoercionError:  # the field changed type since: show what was written
        if isinstance(value, dict):  # ...but never a file's storage key
            value = {k: v for k, v in value.items() if k != "key"}
        return "" if value is None else str(value)


def feed_entries(entity: Entity, entries: Sequence[ActivityEntry], locale: str, names: Names,
                 labels: Mapping[str, Mapping[str, str]]) -> list[FeedEntry]:
    out = []
    for e in entries:
        changes = []
        for c in e.changes:
            label = entity.field(c.field).label.get(locale) if entity.has_field(c.field) \
                else system_label(c.field, locale)
            changes.append(Change(label, _value(entity, c.field, c.old, locale, names, labels),
                                  _value(entity, c.field, c.new, locale, names, labels)))
        who = t(locale, "System") if e.actor_id is None else names.person(e.actor_id)
        out.append(FeedEntry(id=e.id, at=format_instant(e.at, locale),
                             at_iso=e.at.isoformat(), who=who, kind=e.kind,
                             what=t(locale, _KINDS.get(e.kind, e.kind)), changes=changes,
                             body=e.body, via=_via(locale, e.via)))
    return out


def people_in(entries: Sequence[ActivityEntry]) -> set[int]:
    """Everyone a feed names: authors, and owners that changed hands."""
    found = {e.actor_id for e in entries if e.actor_id is not None}
    for e in entries:
        for c in e.changes:
            if c.field in ("owner_id", "created_by"):
                found.update(v for v in (c.old, c.new) if isinstance(v, int))
    return found
