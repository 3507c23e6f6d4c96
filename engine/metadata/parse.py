"""Turn schema-valid JSON documents into registry dataclasses.

Input here has already passed schemas/ (the loader checks that first), so this
module does no validation of its own beyond what the types need; cross-checks
between documents live in ``crosscheck``. ``registry_from_document`` rebuilds a
registry from its canonical document, which is how storage reads back the
metadata it applied last time.

The canonical registry document::

    {"apps": [manifest, ...],
     "entities": {name: entity document, ...},
     "pipelines": {name: pipeline document, ...},
     "pools": {name: pool document, ...},
     "roles": {name: role document, ...}}

where each document has exactly the shape its schema in schemas/ describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.metadata.conditions import parse_tree
from engine.metadata.model import (
    AppInfo,
    Condition,
    DedupMatch,
    DedupRule,
    Distribution,
    Entity,
    EntityGrant,
    Feature,
    Field,
    FieldType,
    Index,
    LocalText,
    OnDelete,
    Option,
    Pipeline,
    PipelineSelector,
    Pool,
    PoolLimits,
    PoolMembers,
    PoolRule,
    Registry,
    Role,
    RowScope,
    RuleAfter,
    SharingRule,
    Source,
    Stage,
    StageKind,
    Target,
    Territory,
    Touch,
    UniqueKey,
)

Doc = Mapping[str, Any]


def _text(doc: Doc, key: str) -> LocalText:
    return LocalText.of(doc.get(key))


def _tuple(doc: Doc, key: str) -> tuple[Any, ...]:
    return tuple(doc.get(key) or ())


def parse_field(doc: Doc, *, source: Source) -> Field:
    options = tuple(
        Option(
            value=o["value"],
            label=_text(o, "label"),
            color=o.get("color"),
            order=o.get("order", i),
        )
        for i, o in enumerate(doc.get("options") or ())
    )
    options = tuple(sorted(options, key=lambda o: o.order))
    return Field(
        name=doc["name"],
        type=FieldType(doc["type"]),
        label=_text(doc, "label"),
        help=_text(doc, "help"),
        required=bool(doc.get("required", False)),
        default=doc.get("default"),
        unique=bool(doc.get("unique", False)),
        min=doc.get("min"),
        max=doc.get("max"),
        min_length=doc.get("min_length"),
        max_length=doc.get("max_length"),
        pattern=doc.get("pattern"),
        pattern_message=_text(doc, "pattern_message"),
        precision=doc.get("precision"),
        scale=doc.get("scale"),
        options=options,
        target=doc.get("target"),
        on_delete=OnDelete(doc.get("on_delete", OnDelete.RESTRICT.value)),
        currency=doc.get("currency"),
        accept=_tuple(doc, "accept"),
        max_size=doc.get("max_size"),
        format=doc.get("format"),
        source=source,
    )


def default_index_name(entity: str, fields: tuple[str, ...]) -> str:
    return "ix_" + "_".join((entity, *fields))


def parse_entity(doc: Doc, *, app: str = "", file: str = "", pointer: str = "") -> Entity:
    name = doc["name"]
    fields = tuple(
        parse_field(f, source=Source(file, f"{pointer}/fields/{i}"))
        for i, f in enumerate(doc.get("fields") or ())
    )
    unique_keys = tuple(
        UniqueKey(
            name=u["name"],
            fields=tuple(u["fields"]),
            message=_text(u, "message"),
            source=Source(file, f"{pointer}/unique_keys/{i}"),
        )
        for i, u in enumerate(doc.get("unique_keys") or ())
    )
    indexes = tuple(
        Index(
            name=ix.get("name") or default_index_name(name, tuple(ix["fields"])),
            fields=tuple(ix["fields"]),
            source=Source(file, f"{pointer}/indexes/{i}"),
        )
        for i, ix in enumerate(doc.get("indexes") or ())
    )
    dedup = doc.get("dedup") or {}
    rules = tuple(
        DedupRule(
            name=r["name"],
            match=DedupMatch(r["match"]),
            field=r["field"],
            entity=r.get("entity", ""),
            entity_field=r.get("entity_field", ""),
            message=_text(r, "message"),
            source=Source(file, f"{pointer}/dedup/warn/{i}"),
        )
        for i, r in enumerate(dedup.get("warn") or ())
    )
    label = _text(doc, "label")
    return Entity(
        name=name,
        label=label,
        plural_label=_text(doc, "plural_label") or label,
        fields=fields,
        title_field=doc["title_field"],
        features=frozenset(Feature(f) for f in doc.get("features") or ()),
        unique_keys=unique_keys,
        indexes=indexes,
        search_fields=_tuple(doc, "search_fields") or (doc["title_field"],),
        dedup_keys=_tuple(dedup, "keys"),
        dedup_rules=rules,
        app=app,
        source=Source(file, pointer),
    )


def parse_pipeline(doc: Doc, *, app: str = "", file: str = "", pointer: str = "") -> Pipeline:
    stages = tuple(
        Stage(
            key=s["key"],
            label=_text(s, "label"),
            order=s.get("order", i),
            kind=StageKind(s.get("kind", StageKind.OPEN.value)),
            probability=s.get("probability"),
            required_fields=_tuple(s, "required_fields"),
            next_stages=tuple(s["next_stages"]) if "next_stages" in s else None,
            source=Source(file, f"{pointer}/stages/{i}"),
        )
        for i, s in enumerate(doc.get("stages") or ())
    )
    stages = tuple(sorted(stages, key=lambda s: s.order))
    return Pipeline(
        name=doc["name"],
        entity=doc["entity"],
        label=_text(doc, "label"),
        stages=stages,
        initial_stage=doc.get("initial_stage") or (stages[0].key if stages else ""),
        probability_field=doc.get("probability_field"),
        selector=PipelineSelector(field=doc["selector"]["field"],
                                  values=tuple(doc["selector"]["values"]))
        if doc.get("selector") else None,
        app=app,
        source=Source(file, pointer),
    )


def _duration(doc: Doc) -> RuleAfter:
    unit = 24 if "days" in doc else 1
    per = doc.get("per_value") or {}
    return RuleAfter(hours=doc.get("days", doc.get("hours", 0)) * unit,
                     field=per.get("field"),
                     per_value=tuple(sorted((k, v * unit)
                                            for k, v in (per.get("values") or {}).items())))


def _target(doc: Doc | None) -> Target | None:
    if not doc:
        return None
    kind, key = next(iter(doc.items()))
    return Target(kind=kind, key=key)


def _distribution(doc: Doc) -> Distribution:
    return Distribution(
        mode=doc.get("mode", "none"),
        field=doc.get("field"),
        team=_target(doc.get("team")),
        targets=tuple(sorted((k, t) for k, v in (doc.get("targets") or {}).items()
                             if (t := _target(v)) is not None)),
        territories=tuple(
            Territory(name=name, polygon=tuple((float(p[0]), float(p[1]))
                                               for p in t["polygon"]),
                      target=_target(t["target"]) or Target("user", ""))
            for name, t in sorted((doc.get("territories") or {}).items())),
    )


def parse_pool(doc: Doc, *, app: str = "", file: str = "", pointer: str = "") -> Pool:
    members = doc.get("members") or {}
    limits = doc.get("limits") or {}
    rules = tuple(
        PoolRule(
            name=r["name"],
            kind=r["kind"],
            clock=r.get("clock"),
            after=_duration(r["after"]) if "after" in r else None,
            times=r.get("times"),
            when=parse_tree(r.get("when")),
            exempt=parse_tree(r.get("exempt")),
            warn_before_hours=r.get("warn_before_hours"),
            action=r.get("action", "return_to_pool"),
            role=r.get("role"),
            label=_text(r, "label"),
            source=Source(file, f"{pointer}/rules/{i}"),
        )
        for i, r in enumerate(doc.get("rules") or ())
    )
    return Pool(
        name=doc["name"],
        entity=doc["entity"],
        label=_text(doc, "label"),
        members=PoolMembers(
            departments=_tuple(members, "departments"),
            roles=_tuple(members, "roles"),
            users=_tuple(members, "users"),
        ),
        limits=PoolLimits(
            max_held=limits.get("max_held"),
            daily_claims=limits.get("daily_claims"),
            reclaim_cooldown_days=limits.get("reclaim_cooldown_days"),
            held_excludes=tuple(Condition(field=c["field"], op=c["op"], value=c.get("value"))
                                for c in limits.get("held_excludes") or ()),
            new_record_hours=limits.get("new_record_hours"),
            max_locked=limits.get("max_locked"),
            time_zone=limits.get("time_zone", "UTC"),
        ),
        rules=rules,
        distribution=_distribution(doc.get("distribution") or {}),
        touch=tuple(Touch(entity=t["entity"], field=t["field"]) for t in doc.get("touch") or ()),
        app=app,
        source=Source(file, pointer),
    )


def parse_role(doc: Doc, *, app: str = "", file: str = "", pointer: str = "") -> Role:
    grants = tuple(
        EntityGrant(
            entity=g["entity"],
            actions=tuple(g["actions"]),
            scope=RowScope(g["scope"]),
            hidden_fields=_tuple(g, "hidden_fields"),
            readonly_fields=_tuple(g, "readonly_fields"),
            source=Source(file, f"{pointer}/grants/{i}"),
        )
        for i, g in enumerate(doc.get("grants") or ())
    )
    rules = tuple(
        SharingRule(
            name=r["name"],
            entity=r["entity"],
            where=tuple(Condition(field=c["field"], op=c["op"], value=c.get("value"))
                        for c in r["where"]),
            access=r["access"],
            departments=_tuple(r, "departments"),
            source=Source(file, f"{pointer}/sharing_rules/{i}"),
        )
        for i, r in enumerate(doc.get("sharing_rules") or ())
    )
    return Role(name=doc["name"], label=_text(doc, "label"), grants=grants, app=app,
                source=Source(file, pointer), sharing_rules=rules)


def parse_manifest(doc: Doc, *, path: str = "") -> AppInfo:
    return AppInfo(
        name=doc["name"],
        version=doc["version"],
        label=_text(doc, "label"),
        depends_on=_tuple(doc, "depends_on"),
        path=path,
    )


def registry_from_document(document: Doc) -> Registry:
    """Rebuild a registry from its canonical document (see the module docstring).

    Sources point into the document itself (``/entities/customer/fields/3``),
    since the package files it came from may have changed since.
    """
    apps = tuple(parse_manifest(a) for a in document.get("apps") or ())
    entities = {
        name: parse_entity(doc, file="<applied>",
                           pointer=f"/entities/{name}")
        for name, doc in (document.get("entities") or {}).items()
    }
    pipelines = {
        name: parse_pipeline(doc, file="<applied>", pointer=f"/pipelines/{name}")
        for name, doc in (document.get("pipelines") or {}).items()
    }
    pools = {
        name: parse_pool(doc, file="<applied>", pointer=f"/pools/{name}")
        for name, doc in (document.get("pools") or {}).items()
    }
    roles = {
        name: parse_role(doc, file="<applied>", pointer=f"/roles/{name}")
        for name, doc in (document.get("roles") or {}).items()
    }
    return Registry(apps=apps, entities=entities, pipelines=pipelines, pools=pools, roles=roles,
                    document=dict(document))
