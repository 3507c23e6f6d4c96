"""Merged documents -> the immutable Registry, with sources at the real files.

``parse`` turns each merged document into dataclasses; this module then points
every field, key, index, stage, rule and grant at the file and pointer that
declared it (an overlay's field at the overlay), which parse alone cannot know.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from engine.metadata.located import LocatedDoc
from engine.metadata.model import AppInfo, Entity, Pipeline, Pool, Registry, Role, Source
from engine.metadata.parse import (
    parse_entity,
    parse_manifest,
    parse_pipeline,
    parse_pool,
    parse_role,
)


def _source(doc: LocatedDoc, *path: Any) -> Source:
    return Source(*doc.locate(*path))


def build_entity(doc: LocatedDoc) -> Entity:
    entity = parse_entity(doc.body, app=doc.app, file=doc.file)
    return dataclasses.replace(
        entity,
        fields=tuple(dataclasses.replace(f, source=_source(doc, "fields", i))
                     for i, f in enumerate(entity.fields)),
        unique_keys=tuple(dataclasses.replace(k, source=_source(doc, "unique_keys", i))
                          for i, k in enumerate(entity.unique_keys)),
        indexes=tuple(dataclasses.replace(x, source=_source(doc, "indexes", i))
                      for i, x in enumerate(entity.indexes)),
        dedup_rules=tuple(dataclasses.replace(r, source=_source(doc, "dedup", "warn", i))
                          for i, r in enumerate(entity.dedup_rules)),
    )


def build_pipeline(doc: LocatedDoc) -> Pipeline:
    pipeline = parse_pipeline(doc.body, app=doc.app, file=doc.file)
    position = {s["key"]: i for i, s in enumerate(doc.body["stages"])}
    return dataclasses.replace(pipeline, stages=tuple(
        dataclasses.replace(s, source=_source(doc, "stages", position[s.key]))
        for s in pipeline.stages))


def build_pool(doc: LocatedDoc) -> Pool:
    pool = parse_pool(doc.body, app=doc.app, file=doc.file)
    return dataclasses.replace(pool, rules=tuple(
        dataclasses.replace(r, source=_source(doc, "rules", i)) for i, r in enumerate(pool.rules)))


def build_role(doc: LocatedDoc) -> Role:
    role = parse_role(doc.body, app=doc.app, file=doc.file)
    return dataclasses.replace(
        role,
        grants=tuple(dataclasses.replace(g, source=_source(doc, "grants", i))
                     for i, g in enumerate(role.grants)),
        sharing_rules=tuple(dataclasses.replace(r, source=_source(doc, "sharing_rules", i))
                            for i, r in enumerate(role.sharing_rules)))


def build_registry(*, apps: Sequence[tuple[Mapping[str, Any], str]],
                   entities: Mapping[str, LocatedDoc], pipelines: Mapping[str, LocatedDoc],
                   pools: Mapping[str, LocatedDoc], roles: Mapping[str, LocatedDoc],
                   reporting: Mapping[str, Mapping[str, LocatedDoc]] | None = None) -> Registry:
    """The registry of validated, merged documents; ``apps`` are (manifest, folder) pairs.

    ``reporting`` holds the reports, dashboards and leaderboards by kind; they ride in
    the canonical document only (engine/metadata/reports.py reads them from there), and
    only when there are some, so packages without reports keep their fingerprint.
    """
    infos: tuple[AppInfo, ...] = tuple(parse_manifest(m, path=path) for m, path in apps)
    document = {
        "apps": [copy.deepcopy(dict(m)) for m, _ in apps],
        "entities": {n: copy.deepcopy(d.body) for n, d in entities.items()},
        "pipelines": {n: copy.deepcopy(d.body) for n, d in pipelines.items()},
        "pools": {n: copy.deepcopy(d.body) for n, d in pools.items()},
        "roles": {n: copy.deepcopy(d.body) for n, d in roles.items()},
    }
    apps_of: dict[str, str] = {}
    for key, docs in (reporting or {}).items():
        if docs:
            document[key] = {n: copy.deepcopy(d.body) for n, d in docs.items()}
            apps_of.update({f"{d.kind}:{n}": d.app for n, d in docs.items()})
    if apps_of:
        document["report_apps"] = apps_of
    return Registry(
        apps=infos,
        entities={n: build_entity(d) for n, d in entities.items()},
        pipelines={n: build_pipeline(d) for n, d in pipelines.items()},
        pools={n: build_pool(d) for n, d in pools.items()},
        roles={n: build_role(d) for n, d in roles.items()},
        document=document,
    )
