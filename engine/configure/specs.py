"""What an admin edits, as typed values: a field, an option, a stage, a grant.

Each spec converts to and from the JSON document its schema in schemas/
describes, so a change is checked by exactly the same schemas and
cross-checks as a package file. Specs are plain data: they do not check
themselves (the loader does, and says where).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

Label = Mapping[str, str]

#: Field properties a spec names explicitly; every other schema property rides in ``extra``.
_FIELD_KEYS = ("name", "type", "label", "help", "required", "unique", "default", "options",
               "target", "on_delete")


def _label(value: Mapping[str, str] | None) -> dict[str, str]:
    """A label without empty locales (the schema wants non-empty texts)."""
    return {k: v for k, v in (value or {}).items() if isinstance(v, str) and v.strip()}


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class OptionSpec:
    """One choice of a select field. ``order`` None keeps the list position."""

    value: str
    label: Label
    color: str | None = None
    order: int | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"value": self.value, "label": _label(self.label)}
        if self.color:
            doc["color"] = self.color
        if self.order is not None:
            doc["order"] = self.order
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> OptionSpec:
        return cls(value=doc["value"], label=_frozen(doc.get("label")), color=doc.get("color"),
                   order=doc.get("order"))


@dataclass(frozen=True)
class FieldSpec:
    """One field as the admin sets it; ``extra`` holds type-specific properties
    (max_length, precision, scale, currency, format, min, max, pattern...)."""

    name: str
    type: str
    label: Label
    help: Label = field(default_factory=lambda: _frozen({}))
    required: bool = False
    unique: bool = False
    default: Any = None
    options: tuple[OptionSpec, ...] = ()
    target: str | None = None
    on_delete: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "type": self.type, "label": _label(self.label)}
        if _label(self.help):
            doc["help"] = _label(self.help)
        if self.required:
            doc["required"] = True
        if self.unique:
            doc["unique"] = True
        if self.default is not None and self.default != "":
            doc["default"] = self.default
        if self.options:
            doc["options"] = [o.to_document() for o in self.options]
        if self.target:
            doc["target"] = self.target
        if self.on_delete:
            doc["on_delete"] = self.on_delete
        doc.update({k: v for k, v in self.extra.items() if k not in _FIELD_KEYS})
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> FieldSpec:
        return cls(
            name=doc["name"], type=doc["type"], label=_frozen(doc.get("label")),
            help=_frozen(doc.get("help")), required=bool(doc.get("required", False)),
            unique=bool(doc.get("unique", False)), default=doc.get("default"),
            options=tuple(OptionSpec.from_document(o) for o in doc.get("options") or ()),
            target=doc.get("target"), on_delete=doc.get("on_delete"),
            extra=_frozen({k: v for k, v in doc.items() if k not in _FIELD_KEYS}),
        )


@dataclass(frozen=True)
class StageSpec:
    """One stage of a pipeline. ``next_stages`` None lets any stage follow."""

    key: str
    label: Label
    order: int
    kind: str = "open"
    probability: int | None = None
    required_fields: tuple[str, ...] = ()
    next_stages: tuple[str, ...] | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"key": self.key, "label": _label(self.label),
                               "order": self.order, "kind": self.kind}
        if self.probability is not None:
            doc["probability"] = self.probability
        if self.required_fields:
            doc["required_fields"] = list(self.required_fields)
        if self.next_stages is not None:
            doc["next_stages"] = list(self.next_stages)
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, position: int = 0) -> StageSpec:
        nexts = doc.get("next_stages")
        return cls(key=doc["key"], label=_frozen(doc.get("label")),
                   order=int(doc.get("order", position)), kind=doc.get("kind", "open"),
                   probability=doc.get("probability"),
                   required_fields=tuple(doc.get("required_fields") or ()),
                   next_stages=None if nexts is None else tuple(nexts))


@dataclass(frozen=True)
class SelectorSpec:
    """The records a pipeline drives: those whose select ``field`` holds one of ``values``."""

    field: str
    values: tuple[str, ...]

    def to_document(self) -> dict[str, Any]:
        return {"field": self.field, "values": list(self.values)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> SelectorSpec | None:
        return cls(field=doc["field"], values=tuple(doc["values"])) if doc else None


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline: the stage machine of one entity (of the records its selector names;
    ``selector`` None: the entity's default pipeline)."""

    name: str
    entity: str
    label: Label
    initial_stage: str
    stages: tuple[StageSpec, ...]
    selector: SelectorSpec | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "entity": self.entity,
                               "label": _label(self.label)}
        if self.selector is not None:
            doc["selector"] = self.selector.to_document()
        doc["initial_stage"] = self.initial_stage
        doc["stages"] = [s.to_document() for s in self.stages]
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> PipelineSpec:
        return cls(name=doc["name"], entity=doc["entity"], label=_frozen(doc.get("label")),
                   initial_stage=doc["initial_stage"],
                   stages=tuple(StageSpec.from_document(s, position=i)
                                for i, s in enumerate(doc.get("stages") or ())),
                   selector=SelectorSpec.from_document(doc.get("selector")))


@dataclass(frozen=True)
class GrantSpec:
    """One row of the permission matrix: a role's actions on an entity's rows in a scope."""

    entity: str
    actions: tuple[str, ...]
    scope: str
    hidden_fields: tuple[str, ...] = ()
    readonly_fields: tuple[str, ...] = ()

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"entity": self.entity, "actions": list(self.actions),
                               "scope": self.scope}
        if self.hidden_fields:
            doc["hidden_fields"] = list(self.hidden_fields)
        if self.readonly_fields:
            doc["readonly_fields"] = list(self.readonly_fields)
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> GrantSpec:
        return cls(entity=doc["entity"], actions=tuple(doc.get("actions") or ()),
                   scope=doc["scope"], hidden_fields=tuple(doc.get("hidden_fields") or ()),
                   readonly_fields=tuple(doc.get("readonly_fields") or ()))


def grants_of(documents: Sequence[Mapping[str, Any]]) -> tuple[GrantSpec, ...]:
    return tuple(GrantSpec.from_document(g) for g in documents)
