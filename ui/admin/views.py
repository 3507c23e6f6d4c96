"""View models of the admin pages: everything a template shows, computed before render.

Metadata pages read the *configured* documents (packages plus customisations),
since that is what the admin edits; ``package_owned`` says which parts come
from an app package and so keep their definition (only labels, help and
options of such a field can change, and its fields keep their order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.configure.history import HistoryEntry
from engine.configure.specs import FieldSpec
from engine.metadata.model import ACTIONS, FieldType, LocalText, Registry
from engine.storage.plan import MigrationPlan

FIELD_TYPES = tuple(t.value for t in FieldType)
STAGE_KINDS = ("open", "won", "lost")
BLANK_OPTION_ROWS = 3
#: Actions that need an owned / a pooled entity, and scopes likewise.
_OWNED_ACTIONS, _POOL_ACTIONS = {"assign"}, {"claim", "return", "recycle"}
_OWNED_SCOPES = {"own", "department", "subtree"}


def text(label: Mapping[str, str] | None, locale: str, fallback: str = "") -> str:
    return LocalText.of(label).get(locale) or fallback


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    note: str = ""


@dataclass(frozen=True)
class Home:
    entities: list[Link]
    pipelines: list[Link]
    roles: list[Link]
    new_pipeline_url: str = "/admin/pipelines/new"


def home_view(doc: Mapping[str, Any], registry: Registry, locale: str) -> Home:
    custom = {e.name for e in registry.entities.values() if e.app == "custom"}
    return Home(
        entities=[Link(text(e["label"], locale, n), f"/admin/entities/{n}",
                       f"{n} · {len(e['fields'])} · " + ("custom" if n in custom else
                                                         registry.entities[n].app))
                  for n, e in doc["entities"].items()],
        pipelines=[Link(text(p["label"], locale, n), f"/admin/pipelines/{n}", p["entity"])
                   for n, p in doc["pipelines"].items()],
        roles=[Link(text(r["label"], locale, n), f"/admin/roles/{n}", n)
               for n, r in doc["roles"].items()])


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: str
    type: str
    required: bool
    unique: bool
    package_owned: bool
    position: int
    edit_url: str
    remove_url: str


@dataclass(frozen=True)
class Check:
    name: str
    label: str
    checked: bool
    disabled: bool = False


@dataclass
class EntityPage:
    name: str
    title: str
    values: dict[str, str]
    features: list[Check]
    features_editable: bool
    title_choices: list[Check]
    fields: list[FieldRow]
    add_field_url: str
    pipeline: Link | None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return f"/admin/entities/{self.name}"


def entity_view(doc: Mapping[str, Any], *, registry: Registry, locale: str,
                package_fields: Sequence[str], package_entity: bool,
                errors: Mapping[str, str] | None = None) -> EntityPage:
    name = doc["name"]
    fields = doc["fields"]
    pipeline = registry.pipeline_for(name)
    return EntityPage(
        name=name, title=text(doc["label"], locale, name),
        values={"label_en": doc["label"].get("en", ""), "label_zh": doc["label"].get("zh-CN", ""),
                "plural_en": (doc.get("plural_label") or {}).get("en", ""),
                "plural_zh": (doc.get("plural_label") or {}).get("zh-CN", "")},
        features=[Check(f, f, f in (doc.get("features") or ()), disabled=package_entity)
                  for f in ("owned", "pooled", "activity", "soft_delete")],
        features_editable=not package_entity,
        title_choices=[Check(f["name"], text(f["label"], locale, f["name"]),
                             f["name"] == doc["title_field"])
                       for f in fields if f["type"] in ("text", "long_text", "email", "phone",
                                                        "url", "rich_text", "auto_number")],
        fields=[FieldRow(name=f["name"], label=text(f["label"], locale, f["name"]),
                         type=f["type"], required=bool(f.get("required")),
                         unique=bool(f.get("unique")),
                         package_owned=f["name"] in package_fields, position=i + 1,
                         edit_url=f"/admin/entities/{name}/fields/{f['name']}",
                         remove_url=f"/admin/entities/{name}/fields/{f['name']}/remove")
                for i, f in enumerate(fields)],
        add_field_url=f"/admin/entities/{name}/fields/new",
        pipeline=Link(text(pipeline.label.as_dict(), locale, pipeline.name),
                      f"/admin/pipelines/{pipeline.name}") if pipeline else None,
        errors=dict(errors or {}))


def _shown(value: Any) -> str:
    """A default value as the form's text input shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class OptionRow:
    value: str
    en: str
    zh: str
    color: str
    order: str
    locked: bool  # declared by the package: its value cannot change or go


@dataclass
class FieldPage:
    entity: str
    entity_title: str
    is_new: bool
    package_owned: bool
    values: dict[str, Any]
    options: list[OptionRow]
    types: tuple[str, ...]
    targets: list[str]
    action: str
    back_url: str
    errors: dict[str, str] = field(default_factory=dict)


def field_view(entity: Mapping[str, Any], spec: FieldSpec | None, *, locale: str,
               registry: Registry, package_owned: bool, package_options: Sequence[str],
               errors: Mapping[str, str] | None = None) -> FieldPage:
    name = entity["name"]
    values: dict[str, Any] = {"name": "", "type": "text", "label_en": "", "label_zh": "",
                              "help_en": "", "help_zh": "", "required": False, "unique": False,
                              "default": "", "target": "", "on_delete": ""}
    options: list[OptionRow] = []
    if spec is not None:
        values.update(
            name=spec.name, type=spec.type, label_en=spec.label.get("en", ""),
            label_zh=spec.label.get("zh-CN", ""), help_en=spec.help.get("en", ""),
            help_zh=spec.help.get("zh-CN", ""), required=spec.required, unique=spec.unique,
            default=_shown(spec.default), target=spec.target or "",
            on_delete=spec.on_delete or "")
        values.update({k: "" if v is None else str(v) for k, v in spec.extra.items()})
        options = [OptionRow(o.value, o.label.get("en", ""), o.label.get("zh-CN", ""),
                             o.color or "", str(i), o.value in package_options)
                   for i, o in enumerate(spec.options)]
    start = len(options)
    options += [OptionRow("", "", "", "", str(start + i), False) for i in range(BLANK_OPTION_ROWS)]
    path = f"/admin/entities/{name}/fields/" + ("new" if spec is None else spec.name)
    return FieldPage(entity=name, entity_title=text(entity["label"], locale, name),
                     is_new=spec is None, package_owned=package_owned, values=values,
                     options=options, types=FIELD_TYPES, targets=list(registry.entities),
                     action=path, back_url=f"/admin/entities/{name}", errors=dict(errors or {}))


@dataclass
class Confirm:
    """The migration plan of a change, shown before it applies."""

    title: str
    summary: str
    steps: list[str]
    problems: list[str]
    orphans: list[str]
    carried: list[tuple[str, str]]
    action: str
    back_url: str
    version: str
    notice: str = ""

    @property
    def blocked(self) -> bool:
        return bool(self.problems)


def confirm_view(*, title: str, summary: str, plan: MigrationPlan, carried: list[tuple[str, str]],
                 action: str, back_url: str, version: int | None, notice: str = "") -> Confirm:
    return Confirm(title=title, summary=summary, steps=[s.describe() for s in plan.steps],
                   problems=list(plan.problems), orphans=[o.describe() for o in plan.orphans],
                   carried=carried, action=action, back_url=back_url,
                   version="" if version is None else str(version), notice=notice)


@dataclass(frozen=True)
class StageRow:
    key: str
    en: str
    zh: str
    order: int
    kind: str
    probability: str
    required_fields: list[Check]
    next_stages: list[Check]
    any_next: bool
    remove_url: str


@dataclass(frozen=True)
class SelectorField:
    """A select field a pipeline may select by, with its options as checkboxes;
    ``taken`` maps an option value to the other pipeline that already takes it."""

    name: str
    label: str
    chosen: bool
    options: list[Check]
    taken: dict[str, str]


def selector_fields(entity: Mapping[str, Any], selector: Mapping[str, Any] | None, *,
                    registry: Registry, pipeline: str, locale: str) -> list[SelectorField]:
    """The entity's select fields, the one ``selector`` names chosen with its values ticked."""
    taken = {v: p.name for p in registry.pipelines_of(entity["name"])
             if p.selector is not None and p.name != pipeline for v in p.selector.values}
    chosen = (selector or {}).get("field")
    ticked = set((selector or {}).get("values") or ())
    return [SelectorField(
        name=f["name"], label=text(f.get("label"), locale, f["name"]), chosen=f["name"] == chosen,
        options=[Check(o["value"], text(o.get("label"), locale, o["value"]),
                       f["name"] == chosen and o["value"] in ticked)
                 for o in f.get("options") or ()],
        taken=taken) for f in entity["fields"] if f.get("type") == FieldType.SELECT.value]


@dataclass
class PipelinePage:
    name: str
    title: str
    entity: str
    stages: list[StageRow]
    blank: StageRow
    kinds: tuple[str, ...]
    action: str
    selector_fields: list[SelectorField] = field(default_factory=list)
    package_owned: bool = False  # its selector is the package's (an overlay cannot change it)
    errors: dict[str, str] = field(default_factory=dict)


def pipeline_view(doc: Mapping[str, Any], entity: Mapping[str, Any], *, locale: str,
                  registry: Registry, selector: Mapping[str, Any] | None = None,
                  package_owned: bool = False,
                  errors: Mapping[str, str] | None = None) -> PipelinePage:
    """``selector``: what the form posted (after a refusal), else the pipeline's own."""
    keys = [s["key"] for s in doc["stages"]]
    fields = [(f["name"], text(f["label"], locale, f["name"])) for f in entity["fields"]]

    def row(stage: Mapping[str, Any], position: int) -> StageRow:
        nexts = stage.get("next_stages")
        return StageRow(
            key=stage.get("key", ""), en=stage.get("label", {}).get("en", ""),
            zh=stage.get("label", {}).get("zh-CN", ""),
            order=int(stage.get("order", position)), kind=stage.get("kind", "open"),
            probability="" if stage.get("probability") is None else str(stage["probability"]),
            required_fields=[Check(n, lbl, n in (stage.get("required_fields") or ()))
                             for n, lbl in fields],
            next_stages=[Check(k, k, nexts is not None and k in nexts) for k in keys],
            any_next=nexts is None and bool(stage),
            remove_url=f"/admin/pipelines/{doc['name']}/stages/{stage.get('key', '')}/remove")

    stages = sorted((row(s, i) for i, s in enumerate(doc["stages"])), key=lambda s: s.order)
    blank = row({"order": max((s.order for s in stages), default=0) + 1}, 0)
    return PipelinePage(name=doc["name"], title=text(doc["label"], locale, doc["name"]),
                        entity=doc["entity"], stages=stages, blank=blank, kinds=STAGE_KINDS,
                        action=f"/admin/pipelines/{doc['name']}/stages",
                        selector_fields=selector_fields(
                            entity, doc.get("selector") if selector is None else selector,
                            registry=registry, pipeline=doc["name"], locale=locale),
                        package_owned=package_owned, errors=dict(errors or {}))


@dataclass
class NewPipelinePage:
    entities: list[Link]
    values: dict[str, str]
    rows: int = 5
    kinds: tuple[str, ...] = STAGE_KINDS
    selector_fields: list[SelectorField] = field(default_factory=list)
    package_owned: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def new_pipeline_view(registry: Registry, locale: str, *, entity: str = "",
                      selector: Mapping[str, Any] | None = None,
                      errors: Mapping[str, str] | None = None) -> NewPipelinePage:
    """Any entity may get a pipeline (a second one with a selector); the selector inputs
    are those of the chosen ``entity``."""
    entities = [Link(e.label.get(locale), e.name) for e in registry.entities.values()]
    doc = registry.document["entities"].get(entity)
    fields = selector_fields(doc, selector, registry=registry, pipeline="",
                             locale=locale) if doc else []
    return NewPipelinePage(entities=entities, values={"entity": entity},
                           selector_fields=fields, errors=dict(errors or {}))


@dataclass(frozen=True)
class MatrixRow:
    entity: str
    entity_label: str
    scope: str
    actions: list[Check]
    hidden: list[Check]
    readonly: list[Check]


@dataclass
class RolePage:
    name: str
    is_new: bool
    values: dict[str, str]
    actions: tuple[str, ...]
    rows: list[MatrixRow]
    action: str
    errors: dict[str, str] = field(default_factory=dict)


def role_view(doc: Mapping[str, Any] | None, registry: Registry, *, locale: str, name: str = "",
              errors: Mapping[str, str] | None = None) -> RolePage:
    grants = {(g["entity"], g["scope"]): g for g in (doc or {}).get("grants") or ()}
    rows = []
    for entity in registry.entities.values():
        features = {f.value for f in entity.features}
        for scope in ("own", "department", "subtree", "pool", "shared", "all"):
            if (scope in _OWNED_SCOPES and "owned" not in features) or \
                    (scope == "pool" and "pooled" not in features):
                continue
            grant = grants.get((entity.name, scope), {})
            allowed = [a for a in ACTIONS
                       if not (a in _OWNED_ACTIONS and "owned" not in features)
                       and not (a in _POOL_ACTIONS and "pooled" not in features)]
            rows.append(MatrixRow(
                entity=entity.name, entity_label=entity.label.get(locale), scope=scope,
                actions=[Check(a, a, a in grant.get("actions", ()), disabled=a not in allowed)
                         for a in ACTIONS],
                hidden=[Check(f.name, f.label.get(locale), f.name in grant.get("hidden_fields",
                                                                               ()))
                        for f in entity.fields],
                readonly=[Check(f.name, f.label.get(locale),
                                f.name in grant.get("readonly_fields", ()))
                          for f in entity.fields]))
    label = (doc or {}).get("label") or {}
    role = (doc or {}).get("name") or name
    return RolePage(name=role, is_new=doc is None,
                    values={"name": role, "label_en": label.get("en", ""),
                            "label_zh": label.get("zh-CN", "")},
                    actions=ACTIONS, rows=rows,
                    action=f"/admin/roles/{role}" if doc else "/admin/roles/new",
                    errors=dict(errors or {}))


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]


@dataclass
class NewEntityPage:
    values: dict[str, str]
    roles: list[str]
    granted: list[str]
    errors: dict[str, str] = field(default_factory=dict)
