"""Cross-checks of an entity's ``dedup`` section (fuzzy duplicate rules and match keys).

A schema can say a rule names a field; only the merged metadata can say the field
exists, has a type the rule can compare, and - for a rule probing another entity -
that the other entity's field has a match key to probe (an index, not a scan).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.located import LocatedDoc
from engine.metadata.model import FieldType
from engine.metadata.names import MAX_IDENTIFIER_LENGTH
from engine.metadata.world import World, field_types, missing

#: Field types with a normalised match key (engine/storage/matchkeys.py).
KEYED_TYPES = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE})
STEM_SUFFIX = "__stem"


def dedup_issues(entity: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    """Every problem of ``entity``'s dedup section, each at its own pointer."""
    dedup: Mapping[str, Any] = entity.body.get("dedup") or {}
    types = field_types(entity)
    for j, fname in enumerate(dedup.get("keys") or ()):
        if fname not in types:
            yield entity.issue(("dedup", "keys", j), missing("field", fname, types))
        elif types[fname] not in KEYED_TYPES:
            yield entity.issue(("dedup", "keys", j), _not_keyed(fname, types[fname]))
    names: set[str] = set()
    for i, rule in enumerate(dedup.get("warn") or ()):
        at = ("dedup", "warn", i)
        if rule["name"] in names:
            yield entity.issue((*at, "name"), f"duplicate dedup rule name {rule['name']!r}")
        names.add(rule["name"])
        fname = rule["field"]
        if fname not in types:
            yield entity.issue((*at, "field"), missing("field", fname, types))
            continue
        if rule["match"] == "similar_name":
            yield from _similar_name_issues(entity, at, rule, types[fname])
        else:
            yield from _other_entity_issues(entity, at, rule, types[fname], world)


def _not_keyed(fname: str, ftype: FieldType) -> str:
    return (f"field {fname!r} of type {ftype.value!r} has no match key; use a "
            f"{', '.join(sorted(t.value for t in KEYED_TYPES))} field")


def _similar_name_issues(entity: LocatedDoc, at: tuple[Any, ...], rule: Mapping[str, Any],
                         ftype: FieldType) -> Iterator[MetadataIssue]:
    for extra in ("entity", "entity_field"):
        if extra in rule:
            yield entity.issue((*at, extra), f"{extra!r} belongs to other_entity rules only")
    if ftype is not FieldType.TEXT:
        yield entity.issue((*at, "field"), f"similar_name compares names: field "
                                           f"{rule['field']!r} is {ftype.value!r}, not text")
    index = f"ix_{entity.name}_{rule['field']}{STEM_SUFFIX}"
    if len(index) > MAX_IDENTIFIER_LENGTH:
        yield entity.issue((*at, "field"), f"its index {index!r} is longer than "
                                           f"{MAX_IDENTIFIER_LENGTH} characters")


def _other_entity_issues(entity: LocatedDoc, at: tuple[Any, ...], rule: Mapping[str, Any],
                         ftype: FieldType, world: World) -> Iterator[MetadataIssue]:
    if ftype not in KEYED_TYPES:
        yield entity.issue((*at, "field"), _not_keyed(rule["field"], ftype))
        return
    target = rule.get("entity")
    if not target:
        yield entity.issue(at, "an other_entity rule needs 'entity' (whose records to probe)")
        return
    target_doc = world.entities.get(target)
    if target_doc is None:
        if not world.exists("entity", target):
            yield entity.issue((*at, "entity"), missing("entity", target, world.entities))
        return
    app = entity.app_of(*at)
    if not world.sees(app, target_doc.app):
        yield entity.issue((*at, "entity"),
                           f"entity {target!r} belongs to app {target_doc.app!r}, which app "
                           f"{app!r} does not depend on (add it to depends_on)")
        return
    other = rule.get("entity_field") or rule["field"]
    where = (*at, "entity_field") if "entity_field" in rule else (*at, "field")
    other_types = field_types(target_doc)
    if other not in other_types:
        yield entity.issue(where, missing(f"field of {target}", other, other_types))
        return
    if other_types[other] is not ftype:
        yield entity.issue(where, f"{target}.{other} is {other_types[other].value!r} but "
                                  f"{rule['field']!r} is {ftype.value!r}: their match keys "
                                  "cannot be compared")
        return
    if other not in keyed_names(target_doc.body):
        yield entity.issue(where, f"{target}.{other} has no match key to probe; put it in a "
                                  f"unique key of {target} or in its dedup.keys")


def keyed_names(body: Mapping[str, Any]) -> set[str]:
    """Fields of an entity document that get a match key column."""
    names = {f for k in body.get("unique_keys") or () for f in k["fields"]}
    names |= {f["name"] for f in body["fields"] if f.get("unique")}
    names |= set((body.get("dedup") or {}).get("keys") or ())
    return names
