"""Checks across merged documents: what a schema alone cannot see.

Runs after overlays and customisations are merged, on schema-valid documents
only. Every issue names the file and pointer that declared the offending part
(see ``located``). Names of documents that exist but failed their schema are in
``World.broken``: references to them are not reported again as "missing".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata._conversion_checks import conversion_issues
from engine.metadata._dedup_checks import dedup_issues
from engine.metadata._field_checks import TITLE_TYPES, UNIQUE_TYPES, field_problems
from engine.metadata._link_checks import link_issues
from engine.metadata._report_checks import report_issues
from engine.metadata.located import LocatedDoc
from engine.metadata.model import FieldType
from engine.metadata.names import (
    MAX_IDENTIFIER_LENGTH,
    SYSTEM_COLUMNS,
    SYSTEM_TABLE_PREFIX,
    companion_names,
    identifier_problem,
)
from engine.metadata.world import World, field_types, missing


def crosscheck(world: World) -> list[MetadataIssue]:
    """Every cross-document issue of the merged metadata."""
    issues: list[MetadataIssue] = []
    index_names: dict[str, tuple[str, str]] = {}
    for entity in world.entities.values():
        issues.extend(entity_issues(entity, world, index_names=index_names))
    issues.extend(link_issues(world))
    issues.extend(report_issues(world))
    issues.extend(conversion_issues(world))
    return issues


def entity_issues(entity: LocatedDoc, world: World, *,
                  index_names: dict[str, tuple[str, str]]) -> Iterator[MetadataIssue]:
    """Names, fields, keys, indexes and features of one entity."""
    body = entity.body
    name = entity.name
    problem = identifier_problem(name)
    if problem:
        yield entity.issue(("name",), problem)
    if name.startswith(SYSTEM_TABLE_PREFIX):
        yield entity.issue(("name",), f"entity names may not start with "
                                      f"{SYSTEM_TABLE_PREFIX!r} (the engine's own tables)")
    yield from _field_name_issues(entity)
    types = field_types(entity)
    for i, fdoc in enumerate(body["fields"]):
        for path, message in field_problems(fdoc):
            yield entity.issue(("fields", i, *path), message)
        if fdoc["type"] == FieldType.REFERENCE.value:
            yield from _reference_issues(entity, i, fdoc, world)

    title = body["title_field"]
    if title not in types:
        yield entity.issue(("title_field",), missing("field", title, types))
    elif types[title] not in TITLE_TYPES:
        yield entity.issue(("title_field",), f"field {title!r} of type {types[title].value!r} "
                                             "cannot be the title; use a text-like field")
    for j, fname in enumerate(body.get("search_fields") or ()):
        if fname not in types:
            yield entity.issue(("search_fields", j), missing("field", fname, types))
        elif types[fname] not in TITLE_TYPES:
            yield entity.issue(("search_fields", j), f"field {fname!r} of type "
                                                     f"{types[fname].value!r} cannot be searched")
    yield from _key_issues(entity, types)
    yield from _index_issues(entity, types, index_names)
    yield from dedup_issues(entity, world)
    features = set(body.get("features") or ())
    if "pooled" in features and "owned" not in features:
        yield entity.issue(("features",), "the 'pooled' feature needs 'owned' (a pool hands "
                                          "records to owners)")


def _field_name_issues(entity: LocatedDoc) -> Iterator[MetadataIssue]:
    columns: dict[str, str] = {}  # column -> what occupies it
    fields = entity.body["fields"]
    for i, fdoc in enumerate(fields):
        fname = fdoc["name"]
        if fname in SYSTEM_COLUMNS:
            yield entity.issue(("fields", i, "name"),
                               f"{fname!r} is a system column the engine adds itself "
                               f"({', '.join(SYSTEM_COLUMNS)})")
            continue
        problem = identifier_problem(fname)
        if problem:
            yield entity.issue(("fields", i, "name"), problem)
            continue
        if "__" in fname:  # the engine's key columns are <field>__key
            yield entity.issue(("fields", i, "name"),
                               f"{fname!r} may not contain '__' (reserved for the engine's "
                               f"match-key columns)")
            continue
        if fname in columns:
            yield entity.issue(("fields", i, "name"), f"{fname!r} is already {columns[fname]}")
            continue
        columns[fname] = f"the field at {_at(entity, ('fields', i))}"
    for i, fdoc in enumerate(fields):
        for extra in companion_names(fdoc["name"], FieldType(fdoc["type"])):
            if len(extra) > MAX_IDENTIFIER_LENGTH:
                yield entity.issue(("fields", i, "name"),
                                   f"too long: the {fdoc['type']} field adds column {extra!r}, "
                                   f"longer than {MAX_IDENTIFIER_LENGTH} characters")
            elif extra in columns or extra in SYSTEM_COLUMNS:
                yield entity.issue(("fields", i, "name"),
                                   f"the {fdoc['type']} field {fdoc['name']!r} adds column "
                                   f"{extra!r}, which clashes with a field of that name")
            columns.setdefault(extra, f"a column of field {fdoc['name']!r}")


def _at(entity: LocatedDoc, path: tuple[Any, ...]) -> str:
    file, ptr = entity.locate(*path)
    return f"{file}:{ptr or '/'}"


def _reference_issues(entity: LocatedDoc, i: int, fdoc: Mapping[str, Any],
                      world: World) -> Iterator[MetadataIssue]:
    target = fdoc["target"]
    if not world.exists("entity", target):
        yield entity.issue(("fields", i, "target"), missing("entity", target, world.entities))
        return
    target_doc = world.entities.get(target)
    app = entity.app_of("fields", i)
    if target_doc is not None and not world.sees(app, target_doc.app):
        yield entity.issue(("fields", i, "target"),
                           f"entity {target!r} belongs to app {target_doc.app!r}, which app "
                           f"{app!r} does not depend on (add it to depends_on)")


def _key_issues(entity: LocatedDoc, types: Mapping[str, FieldType]) -> Iterator[MetadataIssue]:
    constraints: dict[str, tuple[Any, ...]] = {}
    for i, key in enumerate(entity.body.get("unique_keys") or ()):
        constraint = f"uq_{entity.name}_{key['name']}"
        if constraint in constraints:
            yield entity.issue(("unique_keys", i, "name"),
                               f"duplicate unique key name {key['name']!r}")
        elif len(constraint) > MAX_IDENTIFIER_LENGTH:
            yield entity.issue(("unique_keys", i, "name"),
                               f"the constraint name {constraint!r} is longer than "
                               f"{MAX_IDENTIFIER_LENGTH} characters; shorten the key name")
        constraints.setdefault(constraint, ("unique_keys", i))
        for j, fname in enumerate(key["fields"]):
            if fname not in types:
                yield entity.issue(("unique_keys", i, "fields", j), missing("field", fname, types))
            elif types[fname] not in UNIQUE_TYPES:
                yield entity.issue(("unique_keys", i, "fields", j),
                                   f"field {fname!r} of type {types[fname].value!r} cannot be "
                                   "part of a unique key")
    keys = [tuple(k["fields"]) for k in entity.body.get("unique_keys") or ()]
    for i, fdoc in enumerate(entity.body["fields"]):
        if fdoc.get("unique") and (fdoc["name"],) not in keys:
            constraint = f"uq_{entity.name}_{fdoc['name']}"
            if constraint in constraints:
                yield entity.issue(("fields", i, "unique"),
                                   f"its constraint {constraint!r} clashes with the unique key "
                                   f"at {_at(entity, constraints[constraint])}")
            elif len(constraint) > MAX_IDENTIFIER_LENGTH:
                yield entity.issue(("fields", i, "unique"),
                                   f"the constraint name {constraint!r} is longer than "
                                   f"{MAX_IDENTIFIER_LENGTH} characters; declare a unique key "
                                   "with a shorter name instead")


def automatic_index_names(entity: LocatedDoc) -> list[str]:
    """Indexes storage creates without being asked (see engine/storage/tables.py)."""
    name = entity.name
    features = set(entity.body.get("features") or ())
    names = [f"ix_{name}_{f['name']}" for f in entity.body["fields"]
             if f["type"] in (FieldType.REFERENCE.value, FieldType.USER.value)]
    names.append(f"ix_{name}_recent")
    for feature, suffix in (("owned", "owner_recent"), ("pooled", "pool_recent"),
                            ("pipelined", "stage")):
        if feature in features:
            names.append(f"ix_{name}_{suffix}")
    return names


def _index_issues(entity: LocatedDoc, types: Mapping[str, FieldType],
                  index_names: dict[str, tuple[str, str]]) -> Iterator[MetadataIssue]:
    # Index names are global to a PostgreSQL schema, not per table.
    for auto in automatic_index_names(entity):
        index_names.setdefault(auto, entity.locate())
    for i, index in enumerate(entity.body.get("indexes") or ()):
        for j, fname in enumerate(index["fields"]):
            if fname not in types:
                yield entity.issue(("indexes", i, "fields", j), missing("field", fname, types))
        iname = index.get("name") or "ix_" + "_".join((entity.name, *index["fields"]))
        path = ("indexes", i, "name") if "name" in index else ("indexes", i)
        if len(iname) > MAX_IDENTIFIER_LENGTH:
            yield entity.issue(path, f"the index name {iname!r} is longer than "
                                     f"{MAX_IDENTIFIER_LENGTH} characters; give a shorter name")
        elif iname in index_names:
            file, ptr = index_names[iname]
            yield entity.issue(path, f"index name {iname!r} is already used ({file}:{ptr or '/'})"
                                     "; index names are unique across the database")
        else:
            index_names[iname] = entity.locate(*path)
