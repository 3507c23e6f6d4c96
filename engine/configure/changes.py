"""The edits an admin can make, one typed change each.

Every change edits the merged metadata documents in a ``Workspace``; it checks
only what it must to find its way (the entity exists, the field is new...).
Everything else — names, labels in both languages, types, options, defaults,
references, stage rules, grants that fit the entity's features — is left to the
schemas and cross-checks that every package passes, run on the result.

``focus`` names the field or stage the change is about, so that the loader's
issues about it can be shown beside the right form input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from engine.configure.specs import (
    FieldSpec,
    GrantSpec,
    Label,
    PipelineSpec,
    SelectorSpec,
    StageSpec,
)
from engine.configure.workspace import ChangeRefused, Workspace
from engine.messages import M

#: Actions any entity supports; owned and pooled entities support more.
_BASE_ACTIONS = ("read", "create", "update", "delete", "export", "import", "merge", "configure")


class Change(Protocol):
    """One admin edit: what it is about, what it does, and how it edits the documents."""

    @property
    def subject(self) -> str: ...

    @property
    def focus(self) -> str | None: ...

    def summary(self) -> str: ...

    def apply(self, ws: Workspace) -> None: ...


def full_actions(features: tuple[str, ...] | list[str]) -> list[str]:
    """Every action the entity's features allow: what an admin role gets on a new entity."""
    actions = list(_BASE_ACTIONS)
    if "owned" in features:
        actions.append("assign")
    if "pooled" in features:
        actions += ["claim", "return", "recycle"]
    return actions


def _fields(doc: dict[str, Any]) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = doc["fields"]
    return fields


def _index(items: list[dict[str, Any]], key: str, value: str) -> int | None:
    return next((i for i, item in enumerate(items) if item.get(key) == value), None)


@dataclass(frozen=True)
class AddEntity:
    """A new entity with its first fields; ``grant_roles`` get every action on all its rows
    (so the admin can use it at once)."""

    name: str
    label: Label
    fields: tuple[FieldSpec, ...]
    plural_label: Label | None = None
    features: tuple[str, ...] = ()
    title_field: str | None = None
    grant_roles: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        return f"entity {self.name}"

    focus = None

    def summary(self) -> str:
        return f"add entity {self.name} ({len(self.fields)} fields)"

    def apply(self, ws: Workspace) -> None:
        if "pipelined" in self.features:
            raise ChangeRefused(self.subject, {"features": M("add the entity first, then its "
                                                           "pipeline (which makes it pipelined)")})
        if not self.fields:
            raise ChangeRefused(self.subject, {"fields": M("an entity needs at least one field")})
        doc: dict[str, Any] = {"name": self.name, "label": dict(self.label)}
        if self.plural_label:
            doc["plural_label"] = dict(self.plural_label)
        doc["title_field"] = self.title_field or self.fields[0].name
        if self.features:
            doc["features"] = list(self.features)
        doc["fields"] = [f.to_document() for f in self.fields]
        ws.create("entity", doc)
        for role in self.grant_roles:
            grants = ws.get("role", role, subject=self.subject).setdefault("grants", [])
            grants.append({"entity": self.name, "actions": full_actions(self.features),
                           "scope": "all"})


@dataclass(frozen=True)
class EditEntity:
    """Labels, features and title field of an entity (a package's: labels only)."""

    entity: str
    label: Label
    plural_label: Label | None = None
    features: tuple[str, ...] | None = None
    title_field: str | None = None

    @property
    def subject(self) -> str:
        return f"entity {self.entity}"

    focus = None

    def summary(self) -> str:
        return f"edit entity {self.entity}"

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("entity", self.entity)
        doc["label"] = dict(self.label)
        if self.plural_label:
            doc["plural_label"] = dict(self.plural_label)
        if self.features is not None:
            kept = [f for f in doc.get("features") or () if f in self.features]
            doc["features"] = kept + [f for f in self.features if f not in kept]
            if not doc["features"]:
                del doc["features"]
        if self.title_field:
            doc["title_field"] = self.title_field


@dataclass(frozen=True)
class AddField:
    """A new field, last (or at ``position``)."""

    entity: str
    field: FieldSpec
    position: int | None = None

    @property
    def subject(self) -> str:
        return f"entity {self.entity}"

    @property
    def focus(self) -> str | None:
        return self.field.name

    def summary(self) -> str:
        return f"add field {self.entity}.{self.field.name} ({self.field.type})"

    def apply(self, ws: Workspace) -> None:
        fields = _fields(ws.get("entity", self.entity))
        if _index(fields, "name", self.field.name) is not None:
            raise ChangeRefused(self.subject, {"name": M("%(entity)s already has a field %(name)s",
                                                         entity=self.entity, name=repr(self.field.name))})
        position = len(fields) if self.position is None else self.position
        fields.insert(position, self.field.to_document())


@dataclass(frozen=True)
class EditField:
    """A field's definition as a whole (its name stays): labels, help, type, options with
    their labels, colours and order, required, unique, default... A package's field may
    change only its labels, help and options."""

    entity: str
    field: FieldSpec

    @property
    def subject(self) -> str:
        return f"entity {self.entity}"

    @property
    def focus(self) -> str | None:
        return self.field.name

    def summary(self) -> str:
        return f"edit field {self.entity}.{self.field.name}"

    def apply(self, ws: Workspace) -> None:
        fields = _fields(ws.get("entity", self.entity))
        index = _index(fields, "name", self.field.name)
        if index is None:
            raise ChangeRefused(self.subject, {"name": M("%(entity)s has no field %(name)s",
                                                         entity=self.entity, name=repr(self.field.name))})
        fields[index] = self.field.to_document()


@dataclass(frozen=True)
class ReorderFields:
    """The display order of an entity's fields (every field, each once)."""

    entity: str
    order: tuple[str, ...]

    @property
    def subject(self) -> str:
        return f"entity {self.entity}"

    focus = None

    def summary(self) -> str:
        return f"reorder fields of {self.entity}"

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("entity", self.entity)
        by_name = {f["name"]: f for f in _fields(doc)}
        if sorted(self.order) != sorted(by_name):
            raise ChangeRefused(self.subject, {"order": M("name every field of %(entity)s exactly "
                                                          "once",
                                                          entity=self.entity)})
        doc["fields"] = [by_name[name] for name in self.order]


@dataclass(frozen=True)
class RemoveField:
    """Remove a field: its column is archived with its data (the plan says how many rows)."""

    entity: str
    field: str

    @property
    def subject(self) -> str:
        return f"entity {self.entity}"

    @property
    def focus(self) -> str | None:
        return self.field

    def summary(self) -> str:
        return f"remove field {self.entity}.{self.field}"

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("entity", self.entity)
        fields = _fields(doc)
        index = _index(fields, "name", self.field)
        if index is None:
            raise ChangeRefused(self.subject, {"name": M("%(entity)s has no field %(field)s",
                                                         entity=self.entity, field=repr(self.field))})
        if doc.get("title_field") == self.field:
            raise ChangeRefused(self.subject, {"name": M("%(field)s names the records of "
                                                         "%(entity)s; choose another title field "
                                                         "first",
                                                         field=repr(self.field), entity=self.entity)})
        del fields[index]
        if self.field in (doc.get("search_fields") or ()):
            doc["search_fields"] = [f for f in doc["search_fields"] if f != self.field]


@dataclass(frozen=True)
class AddPipeline:
    """A pipeline for an entity; the entity becomes pipelined (a stage column)."""

    pipeline: PipelineSpec

    @property
    def subject(self) -> str:
        return f"pipeline {self.pipeline.name}"

    focus = None

    def summary(self) -> str:
        return (f"add pipeline {self.pipeline.name} to {self.pipeline.entity} "
                f"({len(self.pipeline.stages)} stages)")

    def apply(self, ws: Workspace) -> None:
        entity = ws.get("entity", self.pipeline.entity, subject=self.subject)
        _check_selector(self.subject, self.pipeline.selector)
        # A second pipeline needs a selector; the loader's cross-checks (the same as
        # `tidepool check`) refuse the rest: shared values, another field, shared stage keys.
        default = next((p for p in ws.current.pipelines_of(self.pipeline.entity)
                        if p.selector is None), None)
        if default is not None and self.pipeline.selector is None:
            raise ChangeRefused(self.subject, {"selector": M(
                "%(entity)s already has the default pipeline %(name)s; choose the values this "
                "pipeline takes", entity=self.pipeline.entity, name=repr(default.name))})
        ws.create("pipeline", self.pipeline.to_document())
        features = entity.setdefault("features", [])
        if "pipelined" not in features:
            features.append("pipelined")


@dataclass(frozen=True)
class EditPipeline:
    """A pipeline as a whole: label, initial stage, stages (a package's: no removals)."""

    pipeline: PipelineSpec

    @property
    def subject(self) -> str:
        return f"pipeline {self.pipeline.name}"

    focus = None

    def summary(self) -> str:
        return f"edit pipeline {self.pipeline.name}"

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("pipeline", self.pipeline.name)
        doc.update(self.pipeline.to_document())


@dataclass(frozen=True)
class SetSelector:
    """Which records a pipeline drives: a select field's values, or None for the default."""

    pipeline: str
    selector: SelectorSpec | None

    @property
    def subject(self) -> str:
        return f"pipeline {self.pipeline}"

    focus = None

    def summary(self) -> str:
        if self.selector is None:
            return f"make pipeline {self.pipeline} the default pipeline (no selector)"
        return (f"pipeline {self.pipeline} takes {self.selector.field} = "
                f"{', '.join(self.selector.values)}")

    def apply(self, ws: Workspace) -> None:
        _check_selector(self.subject, self.selector)
        doc = ws.get("pipeline", self.pipeline, subject=self.subject)
        if self.selector is None:
            doc.pop("selector", None)
        else:
            doc["selector"] = self.selector.to_document()


def _check_selector(subject: str, selector: SelectorSpec | None) -> None:
    if selector is not None and not selector.values:
        raise ChangeRefused(subject, {"selector": M("tick at least one value of %(field)s for "
                                                    "this pipeline to take",
                                                    field=repr(selector.field))})


@dataclass(frozen=True)
class SetStage:
    """Add a stage, or change the one with the same key."""

    pipeline: str
    stage: StageSpec

    @property
    def subject(self) -> str:
        return f"pipeline {self.pipeline}"

    @property
    def focus(self) -> str | None:
        return self.stage.key

    def summary(self) -> str:
        return f"set stage {self.stage.key} of pipeline {self.pipeline}"

    def apply(self, ws: Workspace) -> None:
        stages: list[dict[str, Any]] = ws.get("pipeline", self.pipeline)["stages"]
        index = _index(stages, "key", self.stage.key)
        if index is None:
            stages.append(self.stage.to_document())
        else:
            stages[index] = self.stage.to_document()


@dataclass(frozen=True)
class RemoveStage:
    pipeline: str
    key: str

    @property
    def subject(self) -> str:
        return f"pipeline {self.pipeline}"

    @property
    def focus(self) -> str | None:
        return self.key

    def summary(self) -> str:
        return f"remove stage {self.key} of pipeline {self.pipeline}"

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("pipeline", self.pipeline)
        index = _index(doc["stages"], "key", self.key)
        if index is None:
            raise ChangeRefused(self.subject, {"key": M("no stage %(key)s", key=repr(self.key))})
        if doc.get("initial_stage") == self.key:
            raise ChangeRefused(self.subject, {"key": M("new records start in this stage; "
                                                      "choose another initial stage first")})
        del doc["stages"][index]
        for stage in doc["stages"]:
            if self.key in (stage.get("next_stages") or ()):
                stage["next_stages"] = [k for k in stage["next_stages"] if k != self.key]


@dataclass(frozen=True)
class SetRole:
    """A role's label and grants (the permission matrix: entity x actions x scope, hidden and
    read-only fields). A new name adds a role; other properties of an existing role stay."""

    name: str
    label: Label
    grants: tuple[GrantSpec, ...]

    @property
    def subject(self) -> str:
        return f"role {self.name}"

    focus = None

    def summary(self) -> str:
        return f"set role {self.name} ({len(self.grants)} grants)"

    def apply(self, ws: Workspace) -> None:
        grants = [g.to_document() for g in self.grants]
        if ws.exists("role", self.name):
            doc = ws.get("role", self.name)
            doc["label"] = dict(self.label)
            doc["grants"] = grants
        else:
            ws.create("role", {"name": self.name, "label": dict(self.label), "grants": grants})

