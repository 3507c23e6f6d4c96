"""Cross-checks of conversions against the entities and pipelines they name.

A conversion names a source entity, target entities, fields on both sides, option
values, stages and other targets; the schema cannot see whether they exist or
fit (a text copied into a number, a constant that is not an option, a link to a
target of another entity). Each mistake is reported at the file and JSON pointer
a consultant edits, like every other metadata issue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.located import LocatedDoc
from engine.metadata.model import NUMERIC_TYPES, TEXT_LIKE_TYPES, FieldType
from engine.metadata.world import World, missing

#: Types a text-like value may be copied into without losing anything.
_TEXT_SINKS = frozenset({FieldType.TEXT, FieldType.LONG_TEXT})
#: Field types whose values the engine cannot take from a constant.
_NO_CONSTANT = frozenset({FieldType.REFERENCE, FieldType.USER, FieldType.FILE,
                          FieldType.ADDRESS, FieldType.GEO_POINT, FieldType.AUTO_NUMBER,
                          FieldType.MULTI_SELECT, FieldType.MONEY})


def conversion_issues(world: World) -> list[MetadataIssue]:
    """Every issue of the merged conversions."""
    issues: list[MetadataIssue] = []
    for doc in world.conversions.values():
        issues.extend(_conversion(doc, world))
    return issues


def _fields(world: World, entity: str) -> dict[str, Mapping[str, Any]]:
    return {f["name"]: f for f in world.entities[entity].body["fields"]}



def _conversion(doc: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    body = doc.body
    source = body["source"]
    problem = world.entity_problem(doc.app, source)
    if problem is not None:
        if problem:
            yield doc.issue(("source",), problem)
        return
    source_fields = _fields(world, source)
    yield from _mark(doc, world, source, source_fields)
    entities: dict[str, str] = {}   # target name -> entity, for targets that are usable
    optional: dict[str, bool] = {}
    for i, target in enumerate(body["targets"]):
        name = target["name"]
        if name in optional:
            yield doc.issue(("targets", i, "name"), f"duplicate target name {name!r}")
            continue
        optional[name] = bool(target.get("optional", False))
        if i == 0 and optional[name]:
            yield doc.issue(("targets", 0, "optional"), "the first target is the main one "
                                                        "and cannot be optional")
        problem = world.entity_problem(doc.app, target["entity"])
        if problem is not None:
            if problem:
                yield doc.issue(("targets", i, "entity"), problem)
            continue
        yield from _target(doc, world, i, target, source=source, source_fields=source_fields,
                           earlier=entities, optional=optional)
        entities[name] = target["entity"]
    record = body.get("record_on_source")
    if record:
        yield from _record_on_source(doc, record, source_fields, entities, optional)


def _mark(doc: LocatedDoc, world: World, source: str,
          source_fields: Mapping[str, Mapping[str, Any]]) -> Iterator[MetadataIssue]:
    mark = doc.body["mark"]
    if "stage" in mark:
        if "pipelined" not in (world.entities[source].body.get("features") or ()):
            yield doc.issue(("mark", "stage"), f"entity {source!r} has no pipeline; mark "
                                               "the conversion with a select field instead")
            return
        stages = [s["key"] for p in world.pipelines.values() if p.body["entity"] == source
                  for s in p.body["stages"]]
        if stages and mark["stage"] not in stages:
            yield doc.issue(("mark", "stage"), missing("stage", mark["stage"], stages))
        return
    fdoc = source_fields.get(mark["field"])
    if fdoc is None:
        yield doc.issue(("mark", "field"), missing("field", mark["field"], source_fields))
    elif fdoc["type"] != FieldType.SELECT.value:
        yield doc.issue(("mark", "field"), f"field {mark['field']!r} of type "
                                           f"{fdoc['type']!r} cannot mark a conversion; use "
                                           "a select field")
    else:
        options = [o["value"] for o in fdoc.get("options") or ()]
        if mark["value"] not in options:
            yield doc.issue(("mark", "value"), f"{mark['value']!r} is not one of the options "
                                               f"of {mark['field']!r} ({', '.join(options)})")


def _target(doc: LocatedDoc, world: World, i: int, target: Mapping[str, Any], *,
            source: str, source_fields: Mapping[str, Mapping[str, Any]],
            earlier: Mapping[str, str], optional: Mapping[str, bool]
            ) -> Iterator[MetadataIssue]:
    entity = target["entity"]
    fields = _fields(world, entity)
    here = ("targets", i)
    used: dict[str, str] = {}   # target field -> which part sets it

    def claim(part: str, fname: str) -> Iterator[MetadataIssue]:
        if fname not in fields:
            yield doc.issue((*here, part, fname), missing(f"field of {entity!r}", fname,
                                                          fields))
        elif fname in used:
            yield doc.issue((*here, part, fname), f"field {fname!r} is already set by "
                                                  f"{used[fname]}")
        else:
            used[fname] = part

    for fname, sname in (target.get("mapping") or {}).items():
        found = list(claim("mapping", fname))
        yield from found
        if found:
            continue
        sdoc = source_fields.get(sname)
        if sdoc is None:
            yield doc.issue((*here, "mapping", fname), missing(f"field of {source!r}", sname,
                                                               source_fields))
            continue
        problem = _mapping_problem(sdoc, fields[fname])
        if problem:
            yield doc.issue((*here, "mapping", fname), problem)
    for fname, value in (target.get("constants") or {}).items():
        found = list(claim("constants", fname))
        yield from found
        if not found:
            problem = _constant_problem(fields[fname], value)
            if problem:
                yield doc.issue((*here, "constants", fname), problem)
    for fname, other in (target.get("links") or {}).items():
        found = list(claim("links", fname))
        yield from found
        if found:
            continue
        fdoc = fields[fname]
        if other not in earlier:
            names = [n for n in earlier]
            reason = missing("earlier target", other, names)
            yield doc.issue((*here, "links", fname), reason + " (a target links only to "
                                                              "targets listed before it)")
        elif fdoc["type"] != FieldType.REFERENCE.value or fdoc["target"] != earlier[other]:
            yield doc.issue((*here, "links", fname),
                            f"field {fname!r} is not a reference to {earlier[other]!r}, the "
                            f"entity of target {other!r}")
        elif optional.get(other) and not target.get("optional", False):
            yield doc.issue((*here, "links", fname),
                            f"target {other!r} is optional: a required target cannot "
                            "link to it")
    back = target.get("back_reference")
    if back:
        found = list(claim("back_reference", back))
        if found:
            yield from (doc.issue((*here, "back_reference"), f.message) for f in found)
        elif fields[back]["type"] != FieldType.REFERENCE.value or \
                fields[back]["target"] != source:
            yield doc.issue((*here, "back_reference"),
                            f"field {back!r} is not a reference to the source {source!r}")
    if target.get("attach_existing"):
        body = world.entities[entity].body
        has_keys = bool(body.get("unique_keys")) or any(f.get("unique") for f in fields.values())
        if not has_keys:
            yield doc.issue((*here, "attach_existing"),
                            f"entity {entity!r} has no unique key to match an existing "
                            "record on")
    if "selected" in target and not target.get("optional", False):
        yield doc.issue((*here, "selected"), "only an optional target can start unticked")


def _options(fdoc: Mapping[str, Any]) -> list[str]:
    return [o["value"] for o in fdoc.get("options") or ()]


def _mapping_problem(sdoc: Mapping[str, Any], tdoc: Mapping[str, Any]) -> str | None:
    """Why the source field's values cannot be copied into the target field (None: they can)."""
    stype, ttype = FieldType(sdoc["type"]), FieldType(tdoc["type"])
    clash = (f"cannot copy {sdoc['name']!r} ({stype.value}) into {tdoc['name']!r} "
             f"({ttype.value})")
    if stype in (FieldType.SELECT, FieldType.MULTI_SELECT) or \
            ttype in (FieldType.SELECT, FieldType.MULTI_SELECT):
        if stype != ttype:
            return clash
        lost = [v for v in _options(sdoc) if v not in _options(tdoc)]
        if lost:
            return (f"options {', '.join(lost)} of {sdoc['name']!r} are not options of "
                    f"{tdoc['name']!r}")
        return None
    if stype == FieldType.REFERENCE or ttype == FieldType.REFERENCE:
        if stype != ttype or sdoc["target"] != tdoc["target"]:
            return clash
        return None
    if stype == ttype:
        return None
    if stype in TEXT_LIKE_TYPES and ttype in _TEXT_SINKS:
        return None
    if stype == FieldType.INTEGER and ttype in NUMERIC_TYPES - {FieldType.MONEY}:
        return None
    return clash


def _constant_problem(fdoc: Mapping[str, Any], value: Any) -> str | None:
    ftype = FieldType(fdoc["type"])
    if ftype in _NO_CONSTANT:
        return f"a {ftype.value} field cannot take a constant"
    if ftype == FieldType.SELECT:
        options = _options(fdoc)
        if value not in options:
            return f"{value!r} is not one of the options of {fdoc['name']!r} " \
                   f"({', '.join(options)})"
        return None
    if ftype == FieldType.BOOLEAN:
        return None if isinstance(value, bool) else "expected true or false"
    if ftype in NUMERIC_TYPES:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (ftype in (FieldType.INTEGER, FieldType.RATING)
                          and not float(value).is_integer()):
            return f"expected a number for the {ftype.value} field {fdoc['name']!r}"
        return None
    if not isinstance(value, str):
        return f"expected text for the {ftype.value} field {fdoc['name']!r}"
    return None


def _record_on_source(doc: LocatedDoc, record: Mapping[str, Any],
                      source_fields: Mapping[str, Mapping[str, Any]],
                      entities: Mapping[str, str],
                      optional: Mapping[str, bool]) -> Iterator[MetadataIssue]:
    fdoc = source_fields.get(record["field"])
    if fdoc is None:
        yield doc.issue(("record_on_source", "field"),
                        missing("field", record["field"], source_fields))
        return
    name = record["target"]
    if name not in entities:
        if name not in optional:
            yield doc.issue(("record_on_source", "target"), missing("target", name, optional))
        return
    if optional[name]:
        yield doc.issue(("record_on_source", "target"),
                        f"target {name!r} is optional; record a required one")
    elif fdoc["type"] != FieldType.REFERENCE.value or fdoc["target"] != entities[name]:
        yield doc.issue(("record_on_source", "field"),
                        f"field {record['field']!r} is not a reference to {entities[name]!r}")
