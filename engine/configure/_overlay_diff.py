"""The overlay that turns a package's document into the document the admin wants.

A package's entity or pipeline is never copied into the database: the admin's
edits to it are stored as one overlay (the difference), so the package stays
upgradable. Overlays can add fields, options, stages, unique keys and indexes,
and change labels, help, options and stage properties; every other difference
(a package field's type, a removed option, a new feature...) cannot be kept in
an overlay and is refused here with the property it concerns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.messages import M

Doc = Mapping[str, Any]
Refusals = dict[str, str]

_FIELD_DEFAULTS: Mapping[str, Any] = {"required": False, "unique": False, "help": {},
                                      "default": None, "options": [], "on_delete": "restrict"}
_STAGE_CHANGEABLE = ("label", "probability", "order", "required_fields", "next_stages")


def entity_overlay_name(entity: str) -> str:
    """The customisation name of the overlay on package entity ``entity``."""
    return f"entity_{entity}"


def pipeline_overlay_name(pipeline: str) -> str:
    return f"pipeline_{pipeline}"


def _field_norm(doc: Doc) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if _FIELD_DEFAULTS.get(k, object()) != v}
    if "options" in out:
        out["options"] = [_option_norm(o, i) for i, o in enumerate(out["options"])]
    return out


def _option_norm(option: Doc, position: int) -> dict[str, Any]:
    out = {k: v for k, v in option.items() if v is not None}
    out.setdefault("order", position)
    return out


def entity_overlay(base: Doc, desired: Doc, *, app: str) -> tuple[dict[str, Any], Refusals]:
    """The overlay from ``base`` (declared by ``app``) to ``desired``, and what cannot be one."""
    name = base["name"]
    overlay: dict[str, Any] = {"entity": name}
    refusals: Refusals = {}
    owner = f"entity {name!r} comes from app {app!r}"
    for key in ("label", "plural_label"):
        if desired.get(key) != base.get(key):
            if desired.get(key):
                overlay[key] = desired[key]
            else:
                refusals[key] = f"{owner}: its {key.replace('_', ' ')} can change but not go"
    handled = {"name", "label", "plural_label", "fields", "unique_keys", "indexes"}
    for key in sorted((set(base) | set(desired)) - handled):
        before, after = base.get(key), desired.get(key)
        if key == "features":
            before, after = sorted(before or ()), sorted(after or ())
        if before != after:
            refusals[key] = (f"{owner}: a customisation may change its labels and add fields, "
                             f"not its {key.replace('_', ' ')}")
    _fields(base, desired, overlay, refusals, owner=owner)
    for list_key, add_key in (("unique_keys", "add_unique_keys"), ("indexes", "add_indexes")):
        before, after = list(base.get(list_key) or ()), list(desired.get(list_key) or ())
        if after[:len(before)] != before:
            refusals[list_key] = f"{owner}: its {list_key.replace('_', ' ')} cannot change here"
        elif after[len(before):]:
            overlay[add_key] = after[len(before):]
    return overlay, refusals


def _fields(base: Doc, desired: Doc, overlay: dict[str, Any], refusals: Refusals, *,
            owner: str) -> None:
    base_fields = list(base["fields"])
    wanted = {f["name"]: f for f in desired["fields"]}
    for f in base_fields:
        if f["name"] not in wanted:
            refusals["fields"] = (f"{owner}: its field {f['name']!r} cannot be removed "
                                  "(only fields added here can)")
            return
    names = [f["name"] for f in desired["fields"]]
    if names[:len(base_fields)] != [f["name"] for f in base_fields]:
        refusals["fields"] = (f"{owner}: its own fields keep their order; fields added here "
                              "come after them and may be reordered among themselves")
        return
    added = list(desired["fields"][len(base_fields):])
    if added:
        overlay["add_fields"] = added
    changes: dict[str, Any] = {}
    for f in base_fields:
        change = field_change(f, wanted[f["name"]], refusals, owner=owner)
        if change:
            changes[f["name"]] = change
    if changes:
        overlay["fields"] = changes


def field_change(base: Doc, desired: Doc, refusals: Refusals, *, owner: str) -> dict[str, Any]:
    """The overlay ``fields.<name>`` entry for a package field; refusals keyed by property."""
    before, after = _field_norm(base), _field_norm(desired)
    name = base["name"]
    change: dict[str, Any] = {}
    for key in sorted((set(before) | set(after)) - {"label", "help", "options"}):
        if before.get(key) != after.get(key):
            refusals[key] = (f"{owner}: its field {name!r} keeps its {key.replace('_', ' ')}; "
                             "a customisation may change only labels, help and options")
    if after.get("label") != before.get("label"):
        change["label"] = after.get("label")
    if after.get("help") != before.get("help"):
        if after.get("help"):
            change["help"] = after["help"]
        else:
            refusals["help"] = f"{owner}: the help of field {name!r} can change but not go"
    _options(before.get("options") or [], after.get("options") or [], change, refusals,
             what=f"field {name!r}")
    return change


def _options(before: list[dict[str, Any]], after: list[dict[str, Any]], change: dict[str, Any],
             refusals: Refusals, *, what: str) -> None:
    old = {o["value"]: o for o in before}
    new = {o["value"]: o for o in after}
    gone = [v for v in old if v not in new]
    if gone:
        refusals["options"] = (f"option {gone[0]!r} of {what} comes from its app and cannot be "
                               "removed (options added here can)")
        return
    added = [o for o in after if o["value"] not in old]
    if added:
        change["add_options"] = added
    edits: dict[str, Any] = {}
    for value, option in old.items():
        target = new[value]
        diff = {k: target.get(k) for k in ("label", "color", "order")
                if target.get(k) != option.get(k)}
        if any(v is None for v in diff.values()):
            refusals["options"] = (f"the colour of option {value!r} of {what} can change but "
                                   "not go")
            return
        if diff:
            edits[value] = diff
    if edits:
        change["options"] = edits


def pipeline_overlay(base: Doc, desired: Doc, *, app: str) -> tuple[dict[str, Any], Refusals]:
    """The overlay from package pipeline ``base`` to ``desired``, and what cannot be one."""
    name = base["name"]
    owner = f"pipeline {name!r} comes from app {app!r}"
    overlay: dict[str, Any] = {"pipeline": name}
    refusals: Refusals = {}
    if desired.get("label") != base.get("label"):
        overlay["label"] = desired.get("label")
    for key in sorted((set(base) | set(desired)) - {"name", "label", "stages"}):
        if base.get(key) != desired.get(key):
            refusals[key] = M("pipeline %(name)s comes from app %(app)s: its %(property)s "
                              "cannot change here", name=repr(name), app=repr(app),
                              property=key.replace("_", " "))
    old = {s["key"]: (i, s) for i, s in enumerate(base["stages"])}
    new = {s["key"]: s for s in desired["stages"]}
    for key in old:
        if key not in new:
            refusals["stages"] = f"{owner}: its stage {key!r} cannot be removed"
    added = [s for s in desired["stages"] if s["key"] not in old]
    if added:
        overlay["add_stages"] = added
    changes: dict[str, Any] = {}
    for key, (position, stage) in old.items():
        if key not in new:
            continue
        target = {"kind": "open", **new[key]}
        before = {"kind": "open", **stage, "order": stage.get("order", position)}
        diff: dict[str, Any] = {}
        for prop in sorted(set(before) | set(target)):
            if before.get(prop) == target.get(prop):
                continue
            if prop in _STAGE_CHANGEABLE and target.get(prop) is not None:
                diff[prop] = target[prop]
            elif prop == "required_fields" and not target.get(prop):
                diff[prop] = []
            else:
                refusals[prop] = (f"{owner}: the {prop.replace('_', ' ')} of its stage {key!r} "
                                  "cannot change here")
        if diff:
            changes[key] = diff
    if changes:
        overlay["stages"] = changes
    return overlay, refusals
