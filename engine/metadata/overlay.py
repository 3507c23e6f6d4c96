"""Apply overlays: an app changing entities and pipelines of apps it depends on.

An overlay may add fields, options, unique keys, indexes and stages, and
override labels, options and stages. Additions never replace: adding a field or
option that exists is a conflict. Overrides are ordered by dependency: an app
may override what its dependencies set, but two apps that do not depend on each
other may not both change the same thing, since their load order would then
silently decide the result.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.located import LocatedDoc, Path
from engine.metadata.model import OPTION_TYPES, FieldType
from engine.metadata.package import DocumentFile


class _Overlay:
    """One overlay being applied onto its target; collects issues as it goes."""

    def __init__(self, overlay: DocumentFile, target: LocatedDoc,
                 ancestors: Mapping[str, frozenset[str]]) -> None:
        self.overlay = overlay
        self.target = target
        self.app = overlay.app
        self.ancestors = ancestors.get(overlay.app, frozenset())
        self.issues: list[MetadataIssue] = []

    def issue(self, ptr: str, message: str) -> None:
        self.issues.append(MetadataIssue(self.overlay.file, ptr, message))

    def where(self, path: Path) -> str:
        file, ptr = self.target.locate(*path)
        return f"{file}:{ptr or '/'}"

    def set(self, path: Path, value: Any, *, ptr: str, what: str) -> None:
        """Override the value at ``path`` unless an unrelated app changed it already."""
        previous = self.target.changed_by.get(path)
        if previous and previous != self.app and previous not in self.ancestors:
            self.issue(ptr, f"conflicts with app {previous!r}, which also changes {what} "
                            f"({self.where(path)}); neither app depends on the other")
            return
        node: Any = self.target.body
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = copy.deepcopy(value)
        self.target.origins[path] = (self.overlay.file, ptr)
        self.target.changed_by[path] = self.app

    def append(self, path: Path, value: Any, *, ptr: str) -> None:
        """Append ``value`` to the list at ``path``, remembering the overlay as its origin."""
        node: Any = self.target.body
        for part in path:
            node = node.setdefault(part, []) if isinstance(node, dict) else node[part]
        node.append(copy.deepcopy(value))
        added = (*path, len(node) - 1)
        self.target.origins[added] = (self.overlay.file, ptr)
        self.target.changed_by[added] = self.app


def find_target(overlay: DocumentFile, *, entities: Mapping[str, LocatedDoc],
                pipelines: Mapping[str, LocatedDoc], ancestors: Mapping[str, frozenset[str]],
                broken: set[tuple[str, str]]) -> tuple[LocatedDoc | None, list[MetadataIssue]]:
    """The document an overlay changes, or the reason it may not change it."""
    doc = overlay.document
    kind, key, pool = (("entity", "entity", entities) if "entity" in doc
                       else ("pipeline", "pipeline", pipelines))
    name = doc[key]
    target = pool.get(name)
    ptr = f"/{key}"
    if target is None:
        if (kind, name) in broken:
            return None, []  # its own file is already reported
        return None, [MetadataIssue(overlay.file, ptr, f"no {kind} {name!r} in the loaded apps")]
    if target.app == overlay.app:
        return None, [MetadataIssue(overlay.file, ptr,
                                    f"{kind} {name!r} is declared by this app; edit "
                                    f"{target.file} instead of overlaying it")]
    if target.app not in ancestors.get(overlay.app, frozenset()):
        return None, [MetadataIssue(overlay.file, ptr,
                                    f"{kind} {name!r} belongs to app {target.app!r}, which app "
                                    f"{overlay.app!r} does not depend on (add it to depends_on)")]
    return target, []


def apply_overlay(overlay: DocumentFile, *, entities: Mapping[str, LocatedDoc],
                  pipelines: Mapping[str, LocatedDoc], ancestors: Mapping[str, frozenset[str]],
                  broken: set[tuple[str, str]]) -> list[MetadataIssue]:
    """Apply one schema-valid overlay in place; return the conflicts it ran into."""
    target, issues = find_target(overlay, entities=entities, pipelines=pipelines,
                                 ancestors=ancestors, broken=broken)
    if target is None:
        return issues
    job = _Overlay(overlay, target, ancestors)
    if target.kind == "entity":
        _apply_entity(job, overlay.document)
    else:
        _apply_pipeline(job, overlay.document)
    return job.issues


def _apply_entity(job: _Overlay, doc: Mapping[str, Any]) -> None:
    entity = job.target
    for key in ("label", "plural_label"):
        if key in doc:
            job.set((key,), doc[key], ptr=f"/{key}", what=f"the {key} of entity {entity.name!r}")
    fields: list[dict[str, Any]] = entity.body["fields"]
    for i, new in enumerate(doc.get("add_fields") or ()):
        existing = _index_of(fields, "name", new["name"])
        if existing is not None:
            job.issue(f"/add_fields/{i}/name",
                      f"entity {entity.name!r} already has a field {new['name']!r} "
                      f"({job.where(('fields', existing))})")
        else:
            job.append(("fields",), new, ptr=f"/add_fields/{i}")
    for name, change in (doc.get("fields") or {}).items():
        index = _index_of(fields, "name", name)
        if index is None:
            job.issue(f"/fields/{name}", f"entity {entity.name!r} has no field {name!r}")
            continue
        _apply_field_change(job, index, fields[index], change, ptr=f"/fields/{name}")
    for list_key, add_key in (("unique_keys", "add_unique_keys"), ("indexes", "add_indexes")):
        for i, new in enumerate(doc.get(add_key) or ()):
            existing = _index_of(entity.body.get(list_key) or [], "name", new.get("name"))
            if new.get("name") and existing is not None:
                job.issue(f"/{add_key}/{i}/name",
                          f"entity {entity.name!r} already has a {list_key[:-1].replace('_', ' ')}"
                          f" named {new['name']!r} ({job.where((list_key, existing))})")
            else:
                job.append((list_key,), new, ptr=f"/{add_key}/{i}")


def _apply_field_change(job: _Overlay, index: int, field: dict[str, Any],
                        change: Mapping[str, Any], *, ptr: str) -> None:
    what = f"field {field['name']!r} of entity {job.target.name!r}"
    for key in ("label", "help"):
        if key in change:
            job.set(("fields", index, key), change[key], ptr=f"{ptr}/{key}",
                    what=f"the {key} of {what}")
    if ("add_options" in change or "options" in change) and \
            FieldType(field["type"]) not in OPTION_TYPES:
        key = "add_options" if "add_options" in change else "options"
        job.issue(f"{ptr}/{key}", f"{what} is of type {field['type']!r}, which has no options")
        return
    options: list[dict[str, Any]] = field.get("options") or []
    for j, option in enumerate(change.get("add_options") or ()):
        existing = _index_of(options, "value", option["value"])
        if existing is not None:
            job.issue(f"{ptr}/add_options/{j}/value",
                      f"{what} already has an option {option['value']!r} "
                      f"({job.where(('fields', index, 'options', existing))})")
        else:
            job.append(("fields", index, "options"), option, ptr=f"{ptr}/add_options/{j}")
    for value, option_change in (change.get("options") or {}).items():
        k = _index_of(options, "value", value)
        if k is None:
            job.issue(f"{ptr}/options/{value}", f"{what} has no option {value!r}")
            continue
        for key, new in option_change.items():
            job.set(("fields", index, "options", k, key), new,
                    ptr=f"{ptr}/options/{value}/{key}",
                    what=f"the {key} of option {value!r} of {what}")


def _apply_pipeline(job: _Overlay, doc: Mapping[str, Any]) -> None:
    pipeline = job.target
    if "label" in doc:
        job.set(("label",), doc["label"], ptr="/label",
                what=f"the label of pipeline {pipeline.name!r}")
    stages: list[dict[str, Any]] = pipeline.body["stages"]
    for i, new in enumerate(doc.get("add_stages") or ()):
        existing = _index_of(stages, "key", new["key"])
        if existing is not None:
            job.issue(f"/add_stages/{i}/key",
                      f"pipeline {pipeline.name!r} already has a stage {new['key']!r} "
                      f"({job.where(('stages', existing))})")
        else:
            # Without an explicit order an added stage goes after every existing one
            # (its position in the overlay's list would collide with theirs).
            staged = dict(new)
            staged.setdefault("order", 1 + max(
                (s.get("order", n) for n, s in enumerate(stages)), default=-1))
            job.append(("stages",), staged, ptr=f"/add_stages/{i}")
    for key, change in (doc.get("stages") or {}).items():
        index = _index_of(stages, "key", key)
        if index is None:
            job.issue(f"/stages/{key}", f"pipeline {pipeline.name!r} has no stage {key!r}")
            continue
        for prop, value in change.items():
            job.set(("stages", index, prop), value, ptr=f"/stages/{key}/{prop}",
                    what=f"the {prop} of stage {key!r} of pipeline {pipeline.name!r}")


def _index_of(items: list[dict[str, Any]], key: str, value: Any) -> int | None:
    return next((i for i, item in enumerate(items) if item.get(key) == value), None)
