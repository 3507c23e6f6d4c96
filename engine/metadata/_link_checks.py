"""Cross-checks of pipelines, pools and roles against the entities they name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import MetadataIssue
from engine.messages import M
from engine.metadata._sharing_checks import sharing_rule_issues
from engine.metadata.conditions import condition_problem, tree_problems
from engine.metadata.located import LocatedDoc
from engine.metadata.model import FieldType
from engine.metadata.world import World, field_types, missing

_OWNED_SCOPES = frozenset({"own", "department", "subtree"})
_POOL_ACTIONS = frozenset({"claim", "return", "recycle"})


def link_issues(world: World) -> Iterator[MetadataIssue]:
    """Issues of every pipeline, pool and role, and of pipelined entities without a pipeline."""
    for pipeline in world.pipelines.values():
        yield from _pipeline_issues(pipeline, world)
    for entity in world.entities.values():
        if "pipelined" in (entity.body.get("features") or ()):
            driving = [p for p in world.pipelines.values() if p.body["entity"] == entity.name]
            if not driving and not any(kind == "pipeline" for kind, _ in world.broken):
                yield entity.issue(("features",),
                                   f"entity {entity.name!r} is pipelined but no pipeline drives "
                                   f"it (add a pipeline with \"entity\": \"{entity.name}\")")
            yield from _several_pipeline_issues(entity, driving)
    for pool in world.pools.values():
        yield from _pool_issues(pool, world)
    for role in world.roles.values():
        yield from _role_issues(role, world)
        yield from sharing_rule_issues(role, world)


def _entity_problem(doc: LocatedDoc, world: World, *, feature: str,
                    path: tuple[Any, ...] = ("entity",)) -> MetadataIssue | None:
    name = doc.body["entity"] if path == ("entity",) else _get(doc.body, path)
    entity = world.entities.get(name)
    if entity is None:
        if world.exists("entity", name):
            return None
        return doc.issue(path, missing("entity", name, world.entities))
    if not world.sees(doc.app, entity.app):
        return doc.issue(path, f"entity {name!r} belongs to app {entity.app!r}, which app "
                               f"{doc.app!r} does not depend on (add it to depends_on)")
    if feature and feature not in (entity.body.get("features") or ()):
        return doc.issue(path, f"entity {name!r} lacks the {feature!r} feature")
    return None


def _get(body: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        body = body[part]
    return body


def _pipeline_issues(pipeline: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    problem = _entity_problem(pipeline, world, feature="pipelined")
    if problem:
        yield problem
    # Field names are judged only against the entity the pipeline may drive.
    entity = None if problem else world.entities.get(pipeline.body["entity"])
    types = field_types(entity) if entity else None
    stages: list[dict[str, Any]] = pipeline.body["stages"]
    keys: dict[str, int] = {}
    orders: dict[int, str] = {}
    for i, stage in enumerate(stages):
        if stage["key"] in keys:
            yield pipeline.issue(("stages", i, "key"), f"duplicate stage key {stage['key']!r}")
        keys.setdefault(stage["key"], i)
        order = stage.get("order", i)
        if order in orders:
            path = ("stages", i, "order") if "order" in stage else ("stages", i)
            yield pipeline.issue(path, f"order {order} is already used by stage "
                                       f"{orders[order]!r}")
        orders.setdefault(order, stage["key"])
    kinds = {s["key"]: s.get("kind", "open") for s in stages}
    if "open" not in kinds.values():
        yield pipeline.issue(("stages",), "a pipeline needs at least one open stage")
    initial = pipeline.body.get("initial_stage")
    if initial is not None:
        if initial not in keys:
            yield pipeline.issue(("initial_stage",), missing("stage", initial, keys))
        elif kinds[initial] != "open":
            yield pipeline.issue(("initial_stage",), f"the initial stage {initial!r} must be "
                                                     f"open, not {kinds[initial]!r}")
    yield from _selector_issues(pipeline, entity)
    prob = pipeline.body.get("probability_field")
    if prob is not None and types is not None:
        if prob not in types:
            yield pipeline.issue(("probability_field",), missing("field", prob, types))
        elif types[prob] not in (FieldType.PERCENT, FieldType.DECIMAL, FieldType.INTEGER):
            yield pipeline.issue(("probability_field",),
                                 f"the probability field must be percent, decimal or integer; "
                                 f"{prob!r} is {types[prob].value!r}")
    for i, stage in enumerate(stages):
        for j, nxt in enumerate(stage.get("next_stages") or ()):
            if nxt not in keys:
                yield pipeline.issue(("stages", i, "next_stages", j), missing("stage", nxt, keys))
        for j, fname in enumerate(stage.get("required_fields") or ()):
            if types is not None and fname not in types:
                yield pipeline.issue(("stages", i, "required_fields", j),
                                     missing("field", fname, types))


def _selector_issues(pipeline: LocatedDoc, entity: LocatedDoc | None
                     ) -> Iterator[MetadataIssue]:
    """A selector names a select field of the entity and option values of it."""
    selector = pipeline.body.get("selector")
    if not selector or entity is None:
        return
    fields = {f["name"]: f for f in entity.body["fields"]}
    found = fields.get(selector["field"])
    if found is None:
        yield pipeline.issue(("selector", "field"), missing("field", selector["field"], fields))
        return
    if found["type"] != FieldType.SELECT.value:
        yield pipeline.issue(("selector", "field"),
                             M("the selector field must be a select; %(field)s is %(type)s",
                               field=repr(selector["field"]), type=repr(found["type"])))
        return
    options = [o["value"] for o in found.get("options") or ()]
    for j, value in enumerate(selector["values"]):
        if value not in options:
            yield pipeline.issue(("selector", "values", j),
                                 missing(f"option of {selector['field']!r}", value, options))


def _several_pipeline_issues(entity: LocatedDoc, driving: list[LocatedDoc]
                             ) -> Iterator[MetadataIssue]:
    """One entity's pipelines: one default at most, one selector field, values and stage
    keys never shared (a record's field value and its stored stage name one pipeline)."""
    defaults = [p for p in driving if not p.body.get("selector")]
    for extra in defaults[1:]:
        yield extra.issue(("entity",),
                          M("entity %(entity)s already has the default pipeline %(name)s; "
                            "another pipeline of it needs a \"selector\"",
                            entity=repr(entity.name), name=repr(defaults[0].name)))
    field_of: tuple[str, str] | None = None
    taken: dict[str, str] = {}
    stage_of: dict[str, str] = {}
    for pipeline in driving:
        selector = pipeline.body.get("selector")
        if selector:
            if field_of is None:
                field_of = (selector["field"], pipeline.name)
            elif selector["field"] != field_of[0]:
                yield pipeline.issue(("selector", "field"),
                                     M("pipeline %(name)s of entity %(entity)s selects by "
                                       "%(field)s; all pipelines of an entity select by one "
                                       "field", name=repr(field_of[1]),
                                       entity=repr(entity.name), field=repr(field_of[0])))
            for j, value in enumerate(selector["values"]):
                if value in taken:
                    yield pipeline.issue(("selector", "values", j),
                                         M("value %(value)s already selects pipeline "
                                           "%(name)s", value=repr(value),
                                           name=repr(taken[value])))
                taken.setdefault(value, pipeline.name)
        for i, stage in enumerate(pipeline.body["stages"]):
            owner = stage_of.setdefault(stage["key"], pipeline.name)
            if owner != pipeline.name:
                yield pipeline.issue(("stages", i, "key"),
                                     f"stage key {stage['key']!r} is already a stage of "
                                     f"pipeline {owner!r} of entity {entity.name!r}; stage "
                                     f"keys are unique across an entity's pipelines")


def _pool_issues(pool: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    problem = _entity_problem(pool, world, feature="pooled")
    if problem:
        yield problem
    body = pool.body
    for j, role in enumerate((body.get("members") or {}).get("roles") or ()):
        if not world.exists("role", role):
            yield pool.issue(("members", "roles", j), missing("role", role, world.roles))
    entity = world.entities.get(body["entity"])
    if entity is None or problem:
        return
    types = field_types(entity)
    options = {f["name"]: [o["value"] for o in f.get("options") or ()]
               for f in entity.body["fields"]}
    fields = {f["name"]: f for f in entity.body["fields"]}
    pipelined = "pipelined" in (entity.body.get("features") or ())
    names: set[str] = set()
    for i, rule in enumerate(body.get("rules") or ()):
        if rule["name"] in names:
            yield pool.issue(("rules", i, "name"), f"duplicate rule name {rule['name']!r}")
        names.add(rule["name"])
        yield from _rule_issues(pool, i, rule, fields, world, pipelined=pipelined)
    yield from _touch_issues(pool, world)
    yield from _limit_issues(pool, entity)
    distribution = body.get("distribution") or {}
    fname = distribution.get("field")
    if fname is None:
        return
    mode = distribution["mode"]
    if fname not in types:
        yield pool.issue(("distribution", "field"), missing("field", fname, types))
    elif mode == "by_field" and types[fname] is not FieldType.SELECT:
        yield pool.issue(("distribution", "field"), f"by_field distribution needs a select "
                                                    f"field; {fname!r} is {types[fname].value!r}")
    elif mode == "territory" and types[fname] is not FieldType.GEO_POINT:
        yield pool.issue(("distribution", "field"), f"territory distribution needs a geo_point "
                                                    f"field; {fname!r} is {types[fname].value!r}")
    elif mode == "by_field":
        for value in distribution.get("targets") or {}:
            if value not in options[fname]:
                yield pool.issue(("distribution", "targets", value),
                                 f"field {fname!r} has no option {value!r}")
    for name, territory in (distribution.get("territories") or {}).items():
        for k, (lng, lat) in enumerate(territory["polygon"]):
            if not (-180 <= lng <= 180 and -90 <= lat <= 90):
                yield pool.issue(("distribution", "territories", name, "polygon", k),
                                 f"[{lng}, {lat}] is not a [longitude, latitude] point "
                                 f"(longitude -180..180, latitude -90..90)")
        if len({tuple(p) for p in territory["polygon"]}) < 3:
            yield pool.issue(("distribution", "territories", name, "polygon"),
                             "a polygon needs at least 3 distinct corners")


def _rule_issues(pool: LocatedDoc, i: int, rule: dict[str, Any],
                 fields: dict[str, dict[str, Any]], world: World, *,
                 pipelined: bool) -> Iterator[MetadataIssue]:
    """A rule's clock, durations, conditions and assignee against the pool's entity."""
    after = rule.get("after") or {}
    per = after.get("per_value")
    if per is not None:
        f = fields.get(per["field"])
        if f is None:
            yield pool.issue(("rules", i, "after", "per_value", "field"),
                             missing("field", per["field"], fields))
        elif f["type"] != "select":
            yield pool.issue(("rules", i, "after", "per_value", "field"),
                             f"durations per value need a select field; {per['field']!r} is "
                             f"{f['type']!r}")
        else:
            known = [o["value"] for o in f.get("options") or ()]
            for value in per["values"]:
                if value not in known:
                    yield pool.issue(("rules", i, "after", "per_value", "values", value),
                                     f"field {per['field']!r} has no option {value!r}")
    if "warn_before_hours" in rule and after:
        unit = 24 if "days" in after else 1
        durations = [after.get("days", after.get("hours", 0)),
                     *((per or {}).get("values") or {}).values()]
        if rule["warn_before_hours"] >= min(durations) * unit:
            yield pool.issue(("rules", i, "warn_before_hours"),
                             "the warning must come before the rule fires (less than the "
                             "shortest duration in after)")
    if rule.get("clock") == "stage_changed" and not pipelined:
        yield pool.issue(("rules", i, "clock"), "the stage_changed clock needs a pipelined "
                                                "entity")
    for key in ("when", "exempt"):
        if key in rule:
            for path, message in tree_problems(rule[key], fields):
                yield pool.issue(("rules", i, key, *path), message)
    role = rule.get("role")
    if role is not None and not world.exists("role", role):
        yield pool.issue(("rules", i, "role"), missing("role", role, world.roles))


def _touch_issues(pool: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    """Each touching entity exists and its field references the pool's entity."""
    target = pool.body["entity"]
    for i, touch in enumerate(pool.body.get("touch") or ()):
        entity = world.entities.get(touch["entity"])
        if entity is None:
            if not world.exists("entity", touch["entity"]):
                yield pool.issue(("touch", i, "entity"),
                                 missing("entity", touch["entity"], world.entities))
            continue
        field = next((f for f in entity.body["fields"] if f["name"] == touch["field"]), None)
        if field is None:
            yield pool.issue(("touch", i, "field"),
                             missing("field", touch["field"], field_types(entity)))
        elif field["type"] != "reference" or field.get("target") != target:
            yield pool.issue(("touch", i, "field"),
                             f"{touch['entity']}.{touch['field']} must be a reference to "
                             f"{target!r} to touch its records")


def _limit_issues(pool: LocatedDoc, entity: LocatedDoc) -> Iterator[MetadataIssue]:
    """held_excludes conditions name fields of the pool's entity; time_zone is a real zone."""
    limits = pool.body.get("limits") or {}
    zone = limits.get("time_zone")
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            yield pool.issue(("limits", "time_zone"), f"unknown time zone {zone!r}")
    by_name = {f["name"]: f for f in entity.body["fields"]}
    for k, cond in enumerate(limits.get("held_excludes") or ()):
        f = by_name.get(cond["field"])
        if f is None:
            yield pool.issue(("limits", "held_excludes", k, "field"),
                             missing("field", cond["field"], by_name))
            continue
        options = [o["value"] for o in f.get("options") or ()]
        problem = condition_problem(FieldType(f["type"]), cond["op"], cond.get("value"),
                                    options=options)
        if problem:
            at = "op" if problem.startswith("operator") else "value"
            yield pool.issue(("limits", "held_excludes", k, at), f"{cond['field']}: {problem}")


def _role_issues(role: LocatedDoc, world: World) -> Iterator[MetadataIssue]:
    seen: dict[tuple[str, str], int] = {}
    for i, grant in enumerate(role.body.get("grants") or ()):
        name = grant["entity"]
        pair = (name, grant["scope"])
        if pair in seen:
            yield role.issue(("grants", i, "scope"),
                             f"entity {name!r} already has a grant with scope "
                             f"{grant['scope']!r} (/grants/{seen[pair]}); merge them")
        seen.setdefault(pair, i)
        problem = _entity_problem(role, world, feature="", path=("grants", i, "entity"))
        if problem:
            yield problem
        entity = world.entities.get(name)
        if entity is None:
            continue
        features = set(entity.body.get("features") or ())
        types = field_types(entity)
        if grant["scope"] in _OWNED_SCOPES and "owned" not in features:
            yield role.issue(("grants", i, "scope"), f"scope {grant['scope']!r} needs an owned "
                                                     f"entity; {name!r} is not owned")
        if grant["scope"] == "pool" and "pooled" not in features:
            yield role.issue(("grants", i, "scope"), f"scope 'pool' needs a pooled entity; "
                                                     f"{name!r} is not pooled")
        for j, action in enumerate(grant["actions"]):
            if action in _POOL_ACTIONS and "pooled" not in features:
                yield role.issue(("grants", i, "actions", j),
                                 f"action {action!r} needs a pooled entity; {name!r} is not")
            if action == "assign" and "owned" not in features:
                yield role.issue(("grants", i, "actions", j),
                                 f"action 'assign' needs an owned entity; {name!r} is not")
        for key in ("hidden_fields", "readonly_fields"):
            for j, fname in enumerate(grant.get(key) or ()):
                if fname not in types:
                    yield role.issue(("grants", i, key, j), missing("field", fname, types))
