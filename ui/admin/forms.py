"""Admin forms -> typed changes. Parsing only: every rule is checked by the engine.

Input names: ``label_en``/``label_zh`` (and ``plural_``, ``help_``), checkboxes
for flags and features, option rows ``opt_value``/``opt_en``/``opt_zh``/
``opt_color``/``opt_order`` (parallel lists; a row without a value is skipped),
stage rows ``st_*`` likewise, grants ``g:<entity>:<scope>`` (actions),
``h:<entity>:<scope>`` / ``r:<entity>:<scope>`` (hidden / read-only fields).
A value that cannot even be parsed (a number that is not one) raises
``ValidationError`` keyed by the input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import FormData

from engine.configure.changes import (
    AddEntity,
    AddField,
    AddPipeline,
    EditEntity,
    EditField,
    RemoveField,
    RemoveStage,
    ReorderFields,
    SetRole,
    SetSelector,
    SetStage,
)
from engine.configure.specs import (
    FieldSpec,
    GrantSpec,
    OptionSpec,
    PipelineSpec,
    SelectorSpec,
    StageSpec,
)
from engine.errors import ValidationError
from engine.metadata.model import Registry, RowScope
from ui.limits import whole_number

#: Type-specific field properties with an input of their own on the field form.
NUMBER_EXTRAS = ("max_length", "min", "max", "precision", "scale")
TEXT_EXTRAS = ("currency", "format", "pattern")
FEATURES = ("owned", "pooled", "activity", "soft_delete")
SCOPES = tuple(s.value for s in RowScope)
#: What a number typed into an admin form may look like: up to 18 digits, no exponent.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,18}(?:\.[0-9]{1,18})?")


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


def label(form: FormData, prefix: str = "label") -> dict[str, str]:
    return {k: v for k, v in (("en", _text(form, f"{prefix}_en")),
                              ("zh-CN", _text(form, f"{prefix}_zh"))) if v}


def _flag(form: FormData, name: str) -> bool:
    return form.get(name) in ("1", "on", "true")


def _number(value: str, key: str, *, integer: bool = True) -> int | float | None:
    if value == "":
        return None
    # Read lexically first, as every number from outside (docs/security.md): "1e999" would
    # be an infinite bound, and int() of thousands of digits costs the server.
    pattern = _INTEGER if integer else _DECIMAL
    if not pattern.fullmatch(value):
        raise ValidationError("field", {key: "a number"})
    return int(value) if integer else float(value)


def _column(form: FormData, name: str) -> list[str]:
    return [str(v).strip() for v in form.getlist(name)]


def options(form: FormData) -> tuple[OptionSpec, ...]:
    """Option rows in the order their ``opt_order`` numbers give (blank: where they are)."""
    rows = zip(_column(form, "opt_value"), _column(form, "opt_en"), _column(form, "opt_zh"),
               _column(form, "opt_color"), _column(form, "opt_order"), strict=False)
    found = []
    for position, (value, en, zh, color, order) in enumerate(rows):
        if not value:
            continue
        rank = _number(order, "options")
        found.append((rank if rank is not None else position, position,
                      OptionSpec(value=value, label={k: v for k, v in (("en", en), ("zh-CN", zh))
                                                     if v}, color=color or None)))
    found.sort(key=lambda row: (row[0], row[1]))
    return tuple(OptionSpec(o.value, o.label, o.color, order=i)
                 for i, (_, _, o) in enumerate(found))


def _default(form: FormData, field_type: str) -> Any:
    raw = _text(form, "default")
    if raw == "":
        return None
    if field_type in ("integer", "decimal", "money", "percent", "rating"):
        return _number(raw, "default", integer=field_type in ("integer", "rating"))
    if field_type == "boolean":
        return raw.lower() in ("true", "1", "yes", "on")
    if field_type == "multi_select":
        return [v.strip() for v in raw.split(",") if v.strip()]
    return raw


def field_spec(form: FormData, *, current: FieldSpec | None = None) -> FieldSpec:
    """The field form as a spec; properties the form has no input for keep their values."""
    field_type = _text(form, "type") or (current.type if current else "")
    extra: dict[str, Any] = dict(current.extra) if current else {}
    for key in NUMBER_EXTRAS:
        if key in form:
            value = _number(_text(form, key), key, integer=key in ("max_length", "precision",
                                                                   "scale"))
            extra.pop(key, None) if value is None else extra.__setitem__(key, value)
    for key in TEXT_EXTRAS:
        if key in form:
            given = _text(form, key)
            extra.pop(key, None) if not given else extra.__setitem__(key, given)
    def kept(key: str, value: Any) -> Any:  # no input on the form: keep the current value
        return value if key in form or current is None else getattr(current, key)

    return FieldSpec(
        name=current.name if current else _text(form, "name"), type=field_type,
        label=label(form), help=label(form, "help"), required=_flag(form, "required"),
        unique=_flag(form, "unique"), default=kept("default", _default(form, field_type)),
        options=options(form) if field_type in ("select", "multi_select") else (),
        target=kept("target", _text(form, "target") or None),
        on_delete=kept("on_delete", _text(form, "on_delete") or None), extra=extra)


def add_field(entity: str, form: FormData) -> AddField:
    return AddField(entity, field_spec(form))


def edit_field(entity: str, form: FormData, current: FieldSpec) -> EditField:
    return EditField(entity, field_spec(form, current=current))


def remove_field(entity: str, field: str) -> RemoveField:
    return RemoveField(entity, field)


def reorder(entity: str, form: FormData, fields: Sequence[str]) -> ReorderFields:
    """``pos_<field>`` numbers -> an order (ties keep the current order)."""
    ranked = []
    for index, name in enumerate(fields):
        rank = _number(_text(form, f"pos_{name}"), f"pos_{name}")
        ranked.append((rank if rank is not None else index, index, name))
    return ReorderFields(entity, tuple(name for *_, name in sorted(ranked)))


def edit_entity(entity: str, form: FormData, *, features_editable: bool) -> EditEntity:
    return EditEntity(entity, label=label(form), plural_label=label(form, "plural") or None,
                      features=tuple(f for f in FEATURES if _flag(form, f"feature_{f}"))
                      if features_editable else None,
                      title_field=_text(form, "title_field") or None)


def add_entity(form: FormData) -> AddEntity:
    title = FieldSpec(name=_text(form, "title_name") or "name", type="text",
                      label=label(form, "title_label"), required=True)
    return AddEntity(
        name=_text(form, "name"), label=label(form), plural_label=label(form, "plural") or None,
        features=tuple(f for f in FEATURES if _flag(form, f"feature_{f}")), fields=(title,),
        grant_roles=tuple(str(r) for r in form.getlist("grant_role")))


def stage_spec(form: FormData) -> StageSpec:
    order = _number(_text(form, "order"), "order")
    probability = _number(_text(form, "probability"), "probability")
    nexts = None if _flag(form, "any_next") else tuple(str(v) for v in form.getlist("next"))
    return StageSpec(key=_text(form, "key"), label=label(form), order=int(order or 0),
                     kind=_text(form, "kind") or "open",
                     probability=None if probability is None else int(probability),
                     required_fields=tuple(str(v) for v in form.getlist("required_field")),
                     next_stages=nexts)


def set_stage(pipeline: str, form: FormData) -> SetStage:
    return SetStage(pipeline, stage_spec(form))


def remove_stage(pipeline: str, key: str) -> RemoveStage:
    return RemoveStage(pipeline, key)


def add_pipeline(form: FormData) -> AddPipeline:
    rows = zip(_column(form, "st_key"), _column(form, "st_en"), _column(form, "st_zh"),
               _column(form, "st_kind"), _column(form, "st_probability"), strict=False)
    stages: list[StageSpec] = []
    for key, en, zh, kind, probability in rows:
        if not key:
            continue
        chance = _number(probability, "stages")
        stages.append(StageSpec(key=key, label={k: v for k, v in (("en", en), ("zh-CN", zh))
                                                if v},
                                order=len(stages) + 1, kind=kind or "open",
                                probability=None if chance is None else int(chance)))
    return AddPipeline(PipelineSpec(
        name=_text(form, "name"), entity=_text(form, "entity"), label=label(form),
        initial_stage=stages[0].key if stages else "", stages=tuple(stages),
        selector=selector(form)))


def selector(form: FormData) -> SelectorSpec | None:
    """``selector_field`` (empty: the default pipeline) and the values ticked under it
    (``sel_<field>`` checkboxes; ticks under other fields are ignored)."""
    field = _text(form, "selector_field")
    if not field:
        return None
    return SelectorSpec(field=field, values=tuple(dict.fromkeys(
        v for v in _column(form, f"sel_{field}") if v)))


def set_selector(pipeline: str, form: FormData) -> SetSelector:
    return SetSelector(pipeline, selector(form))


def set_role(name: str, form: FormData, registry: Registry) -> SetRole:
    """The permission matrix: a grant per (entity, scope) row with any action ticked."""
    grants = []
    for entity in registry.entities:
        for scope in SCOPES:
            actions = tuple(str(a) for a in form.getlist(f"g:{entity}:{scope}"))
            if actions:
                grants.append(GrantSpec(
                    entity=entity, actions=actions, scope=scope,
                    hidden_fields=tuple(str(v) for v in form.getlist(f"h:{entity}:{scope}")),
                    readonly_fields=tuple(str(v) for v in form.getlist(f"r:{entity}:{scope}"))))
    return SetRole(name=name, label=label(form), grants=tuple(grants))


def carried(form: FormData) -> list[tuple[str, str]]:
    """The form's own inputs, to post again from the confirm page."""
    skip = {"csrf_token", "confirm", "version"}
    return [(k, str(v)) for k, v in form.multi_items() if k not in skip and isinstance(v, str)]


def expected_version(form: FormData) -> int | None:
    return whole_number(_text(form, "version"))

