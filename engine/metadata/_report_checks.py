"""Cross-checks of reports, dashboards and leaderboards against the entities they read.

A report names entities, fields, stages, other measures and reports by name;
a schema cannot see whether they exist or suit the use (a sum of a text field,
a stage breakdown of an entity without a pipeline). Each mistake is reported at
the file and JSON pointer a consultant edits, like every other metadata issue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.conditions import condition_problem
from engine.metadata.located import LocatedDoc
from engine.metadata.model import FieldType
from engine.metadata.world import World, missing

SUMMABLE = frozenset({FieldType.INTEGER, FieldType.DECIMAL, FieldType.MONEY,
                      FieldType.PERCENT, FieldType.RATING})
DATED = frozenset({FieldType.DATE, FieldType.DATETIME})
#: Field types that cannot be a breakdown (JSON values, money with its currency).
UNGROUPABLE = frozenset({FieldType.MULTI_SELECT, FieldType.ADDRESS, FieldType.GEO_POINT,
                         FieldType.FILE, FieldType.MONEY, FieldType.LONG_TEXT})
#: Operators a rollup can evaluate on a stored row in Python as well as in SQL.
ROLLUP_OPS = frozenset({"eq", "ne", "in", "is_empty", "not_empty"})

FieldInfo = tuple[FieldType, list[str]]  # type, select options


def entity_fields(world: World, entity: str) -> dict[str, FieldInfo]:
    """Field name -> (type, options) of an entity, system columns included."""
    doc = world.entities[entity]
    found: dict[str, FieldInfo] = {
        f["name"]: (FieldType(f["type"]), [o["value"] for o in f.get("options") or ()])
        for f in doc.body["fields"]}
    found["id"] = (FieldType.INTEGER, [])
    found["created_at"] = (FieldType.DATETIME, [])
    found["updated_at"] = (FieldType.DATETIME, [])
    found["created_by"] = (FieldType.USER, [])
    features = set(doc.body.get("features") or ())
    if "owned" in features:
        found["owner_id"] = (FieldType.USER, [])
    if "pooled" in features:
        found["pool_id"] = (FieldType.TEXT, [])
    if "pipelined" in features:
        stages = [s["key"] for p in world.pipelines.values() if p.body["entity"] == entity
                  for s in p.body["stages"]]
        found["stage"] = (FieldType.SELECT, stages)
    return found


def report_issues(world: World) -> list[MetadataIssue]:
    """Every issue of the merged reports, dashboards and leaderboards."""
    issues: list[MetadataIssue] = []
    for report in world.reports.values():
        issues.extend(_report(report, world))
    names: dict[str, str] = {}
    for board in world.leaderboards.values():
        issues.extend(_leaderboard(board, world, names))
    for dashboard in world.dashboards.values():
        issues.extend(_dashboard(dashboard, world, names))
    return issues



def _conditions(doc: LocatedDoc, path: tuple[Any, ...], conditions: Any,
                fields: Mapping[str, FieldInfo], *,
                ops: frozenset[str] | None = None) -> Iterator[MetadataIssue]:
    for k, cond in enumerate(conditions or ()):
        info = fields.get(cond["field"])
        if info is None:
            yield doc.issue((*path, k, "field"), missing("field", cond["field"], fields))
            continue
        if ops is not None and cond["op"] not in ops:
            yield doc.issue((*path, k, "op"), f"a leaderboard filter takes only "
                                              f"{', '.join(sorted(ops))}")
            continue
        problem = condition_problem(info[0], cond["op"], cond.get("value"), options=info[1])
        if problem:
            at = "op" if problem.startswith("operator") else "value"
            yield doc.issue((*path, k, at), f"{cond['field']}: {problem}")


def _dated(doc: LocatedDoc, path: tuple[Any, ...], name: str,
           fields: Mapping[str, FieldInfo]) -> Iterator[MetadataIssue]:
    info = fields.get(name)
    if info is None:
        yield doc.issue(path, missing("field", name, fields))
    elif info[0] not in DATED:
        yield doc.issue(path, f"field {name!r} of type {info[0].value!r} cannot place a "
                              "record in time; use a date or date-time field")


def _report(doc: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    body = doc.body
    base = body["entity"]
    problem = world.entity_problem(doc.app, base)
    if problem is not None:
        if problem:
            yield doc.issue(("entity",), problem)
        return
    fields = entity_fields(world, base)
    joined: dict[str, dict[str, FieldInfo]] = {}
    for i, join in enumerate(body.get("joins") or ()):
        ref = next((f for f in world.entities[base].body["fields"]
                    if f["name"] == join["field"]), None)
        if ref is None or ref["type"] != FieldType.REFERENCE.value:
            yield doc.issue(("joins", i, "field"), f"{join['field']!r} is not a reference "
                                                   f"field of {base!r}")
        elif join["name"] in joined or join["name"] in fields:
            yield doc.issue(("joins", i, "name"), f"join name {join['name']!r} is already "
                                                  "used by a join or a field")
        elif ref["target"] in world.entities:
            joined[join["name"]] = entity_fields(world, ref["target"])
    yield from _conditions(doc, ("filters",), body.get("filters"), fields)
    period = (body.get("period") or {}).get("field", "created_at")
    yield from _dated(doc, ("period", "field"), period, fields)

    measures: dict[str, dict[str, Any]] = {}
    entities_of: dict[str, str] = {}
    for i, m in enumerate(body["measures"]):
        if m["name"] in measures:
            yield doc.issue(("measures", i, "name"), f"duplicate measure name {m['name']!r}")
            continue
        measures[m["name"]] = m
        if m["kind"] in ("ratio", "conversion"):
            continue
        if m["kind"] in ("stage_days_avg", "stage_days_median"):
            if "stage" not in fields:
                yield doc.issue(("measures", i, "kind"), f"entity {base!r} has no pipeline, "
                                                         "so no stage history")
            yield from _conditions(doc, ("measures", i, "filters"), m.get("filters"), fields)
            continue
        entity = m.get("entity", base)
        problem = world.entity_problem(doc.app, entity)
        if problem is not None:
            if problem:
                yield doc.issue(("measures", i, "entity"), problem)
            continue
        entities_of[m["name"]] = entity
        mfields = fields if entity == base else entity_fields(world, entity)
        yield from _measure_fields(doc, i, m, mfields)
        if entity != base:
            yield from _dated(doc, ("measures", i, "date_field"),
                              m.get("date_field", "created_at"), mfields)
        elif "date_field" in m:
            yield from _dated(doc, ("measures", i, "date_field"), m["date_field"], mfields)
    for i, m in enumerate(body["measures"]):
        pairs = {"ratio": ("numerator", "denominator"), "conversion": ("from", "to")}
        for key in pairs.get(m["kind"], ()):
            other = measures.get(m[key])
            if other is None or other is m:
                yield doc.issue(("measures", i, key), missing("measure", m[key],
                                                              [n for n in measures
                                                               if n != m["name"]]))
            elif other["kind"] in ("ratio", "conversion", "stage_days_avg",
                                   "stage_days_median"):
                yield doc.issue(("measures", i, key), f"{m[key]!r} is itself a {other['kind']};"
                                                      " name a measure counted from rows")
            elif m["kind"] == "conversion" and other["kind"] != "count":
                yield doc.issue(("measures", i, key), f"a conversion is between two count "
                                                      f"measures; {m[key]!r} is a "
                                                      f"{other['kind']}")
    yield from _dimensions(doc, world, base, fields, joined, measures, entities_of)
    sort = body.get("sort")
    if sort and sort["by"] != "dimension" and sort["by"] not in measures:
        yield doc.issue(("sort", "by"), missing("measure", sort["by"], measures)
                        + " (or \"dimension\")")
    for j, name in enumerate((body.get("chart") or {}).get("measures") or ()):
        if name not in measures:
            yield doc.issue(("chart", "measures", j), missing("measure", name, measures))


def _measure_fields(doc: LocatedDoc, i: int, m: Mapping[str, Any],
                    fields: Mapping[str, FieldInfo]) -> Iterator[MetadataIssue]:
    yield from _conditions(doc, ("measures", i, "filters"), m.get("filters"), fields)
    if "field" in m:
        info = fields.get(m["field"])
        if info is None:
            yield doc.issue(("measures", i, "field"), missing("field", m["field"], fields))
        elif m["kind"] == "count_distinct":
            if info[0] in UNGROUPABLE:
                yield doc.issue(("measures", i, "field"), f"distinct values of a "
                                                          f"{info[0].value} field cannot be "
                                                          "counted")
        elif info[0] not in SUMMABLE:
            yield doc.issue(("measures", i, "field"), f"field {m['field']!r} of type "
                                                      f"{info[0].value!r} is not a number")
    if "weight" in m:
        info = fields.get(m["weight"])
        if info is None or info[0] is not FieldType.PERCENT:
            yield doc.issue(("measures", i, "weight"), f"{m['weight']!r} is not a percent "
                                                       "field of the measure's entity")


def _dimensions(doc: LocatedDoc, world: World, base: str, fields: Mapping[str, FieldInfo],
                joined: Mapping[str, Mapping[str, FieldInfo]],
                measures: Mapping[str, Mapping[str, Any]],
                entities_of: Mapping[str, str]) -> Iterator[MetadataIssue]:
    names: set[str] = set()
    foreign = sorted({e for e in entities_of.values() if e != base})
    for i, d in enumerate(doc.body.get("dimensions") or ()):
        if d["name"] in names:
            yield doc.issue(("dimensions", i, "name"), f"duplicate dimension name {d['name']!r}")
        names.add(d["name"])
        kind = d["kind"]
        timed = sorted(n for n, m in measures.items()
                       if m["kind"] in ("stage_days_avg", "stage_days_median"))
        if timed and kind in ("field", "period"):
            yield doc.issue(("dimensions", i, "kind"), f"stage times ({', '.join(timed)}) break "
                                                       "down by stage, owner or department only")
            continue
        if kind in ("field", "stage") and foreign:
            yield doc.issue(("dimensions", i, "kind"), f"a {kind} breakdown needs every measure "
                                                       f"on {base!r}; measures also count "
                                                       f"{', '.join(foreign)}")
            continue
        if kind in ("owner", "department"):
            for entity in sorted(set(entities_of.values())):
                if "owned" not in (world.entities[entity].body.get("features") or ()):
                    yield doc.issue(("dimensions", i, "kind"), f"entity {entity!r} has no "
                                                               "owners to break down by")
        if kind == "department":
            for name, m in measures.items():
                if m["kind"] == "count_distinct":
                    yield doc.issue(("dimensions", i, "kind"), f"measure {name!r} counts "
                                                               "distinct values, which do not "
                                                               "add up to a department's")
        elif kind == "stage" and "stage" not in fields:
            yield doc.issue(("dimensions", i, "kind"), f"entity {base!r} has no pipeline")
        elif kind == "period" and "field" in d:
            if "." in d["field"] or foreign:
                yield doc.issue(("dimensions", i, "field"), "a period takes each measure's own "
                                                            "date field; leave field out")
            else:
                yield from _dated(doc, ("dimensions", i, "field"), d["field"], fields)
        elif kind == "field":
            prefix, _, name = d["field"].rpartition(".")
            scope = joined.get(prefix) if prefix else fields
            if scope is None:
                yield doc.issue(("dimensions", i, "field"), missing("join", prefix, joined))
                continue
            info = scope.get(name)
            if info is None:
                yield doc.issue(("dimensions", i, "field"), missing("field", name, scope))
            elif info[0] in UNGROUPABLE:
                yield doc.issue(("dimensions", i, "field"), f"cannot break down by a "
                                                            f"{info[0].value} field")


def _leaderboard(doc: LocatedDoc, world: World,
                 names: dict[str, str]) -> Iterator[MetadataIssue]:
    for i, m in enumerate(doc.body["measures"]):
        if m["name"] in names:
            yield doc.issue(("measures", i, "name"), f"measure {m['name']!r} is already "
                                                     f"declared by leaderboard "
                                                     f"{names[m['name']]!r}")
            continue
        names[m["name"]] = doc.name
        problem = world.entity_problem(doc.app, m["entity"])
        if problem is not None:
            if problem:
                yield doc.issue(("measures", i, "entity"), problem)
            continue
        features = world.entities[m["entity"]].body.get("features") or ()
        if "owned" not in features:
            yield doc.issue(("measures", i, "entity"), f"entity {m['entity']!r} has no owners "
                                                       "to rank")
            continue
        if "event" in m and "pooled" not in features:
            yield doc.issue(("measures", i, "event"), f"entity {m['entity']!r} has no pool, "
                                                      "so no pool events")
            continue
        fields = entity_fields(world, m["entity"])
        yield from _dated(doc, ("measures", i, "date_field"), m.get("date_field", "created_at"),
                          fields)
        yield from _conditions(doc, ("measures", i, "filters"), m.get("filters"), fields,
                               ops=ROLLUP_OPS)
        if "field" in m:
            info = fields.get(m["field"])
            if info is None:
                yield doc.issue(("measures", i, "field"), missing("field", m["field"], fields))
            elif info[0] not in SUMMABLE:
                yield doc.issue(("measures", i, "field"), f"field {m['field']!r} of type "
                                                          f"{info[0].value!r} is not a number")


def _dashboard(doc: LocatedDoc, world: World,
               board_measures: Mapping[str, str]) -> Iterator[MetadataIssue]:
    for j, role in enumerate(doc.body["roles"]):
        if not world.exists("role", role):
            yield doc.issue(("roles", j), missing("role", role, world.roles))
    for i, tile in enumerate(doc.body["tiles"]):
        if tile["kind"] == "report" and not world.exists("report", tile["report"]):
            yield doc.issue(("tiles", i, "report"), missing("report", tile["report"],
                                                            world.reports))
        if tile["kind"] == "due_today":
            problem = world.entity_problem(doc.app, tile["entity"])
            if problem:
                yield doc.issue(("tiles", i, "entity"), problem)
            elif problem is None:
                yield from _dated(doc, ("tiles", i, "field"), tile["field"],
                                  entity_fields(world, tile["entity"]))
        if tile["kind"] == "about_to_drop":
            problem = world.entity_problem(doc.app, tile["entity"])
            if problem:
                yield doc.issue(("tiles", i, "entity"), problem)
            elif problem is None and not any(
                    p.body.get("entity") == tile["entity"] and
                    any(r.get("kind") == "drop" for r in p.body.get("rules", ()))
                    for p in world.pools.values()):
                yield doc.issue(("tiles", i, "entity"),
                                f"no pool of {tile['entity']!r} has a drop rule")
        if "measure" in tile and tile["measure"] not in board_measures:
            yield doc.issue(("tiles", i, "measure"), missing("leaderboard measure",
                                                             tile["measure"], board_measures))
        if tile["kind"] in ("my_numbers", "my_rank") and not board_measures:
            yield doc.issue(("tiles", i, "kind"), "no leaderboard declares a measure to show")
