"""The immutable registry: what app packages (plus customisations) declare.

These dataclasses are the contract between the loader, storage, the records
service and everything above. They are frozen; a metadata change builds a new
``Registry`` and swaps it in whole. Nothing here knows about any particular
app: the engine has no CRM words in it.

Each object keeps ``source`` (file and JSON pointer of its declaration) so a
later cross-check or migration can point a consultant at the right line.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES: tuple[str, ...] = ("zh-CN", "en")


@dataclass(frozen=True)
class Source:
    """Where a piece of metadata was declared (package file + JSON pointer)."""

    file: str = ""
    pointer: str = ""


@dataclass(frozen=True)
class LocalText:
    """A localised label: locale -> text. Falls back to English, then any locale."""

    values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, str] | None) -> LocalText:
        return cls(tuple(sorted((mapping or {}).items())))

    def get(self, locale: str = DEFAULT_LOCALE) -> str:
        found = dict(self.values)
        if locale in found:
            return found[locale]
        if DEFAULT_LOCALE in found:
            return found[DEFAULT_LOCALE]
        return next(iter(found.values()), "")

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)

    def __bool__(self) -> bool:
        return bool(self.values)


class FieldType(str, enum.Enum):
    """Every field type a package may declare (the ``type`` key of a field)."""

    TEXT = "text"
    LONG_TEXT = "long_text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    MONEY = "money"
    PERCENT = "percent"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    SELECT = "select"
    MULTI_SELECT = "multi_select"
    REFERENCE = "reference"
    USER = "user"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    GEO_POINT = "geo_point"
    ADDRESS = "address"
    RICH_TEXT = "rich_text"
    RATING = "rating"
    FILE = "file"
    AUTO_NUMBER = "auto_number"


#: Types whose values are free text that search and ``contains`` apply to.
TEXT_LIKE_TYPES = frozenset(
    {FieldType.TEXT, FieldType.LONG_TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL,
     FieldType.RICH_TEXT, FieldType.AUTO_NUMBER}
)
#: Types with options.
OPTION_TYPES = frozenset({FieldType.SELECT, FieldType.MULTI_SELECT})
#: Types with a numeric range (min/max).
NUMERIC_TYPES = frozenset(
    {FieldType.INTEGER, FieldType.DECIMAL, FieldType.MONEY, FieldType.PERCENT, FieldType.RATING}
)


class OnDelete(str, enum.Enum):
    """What happens to referencing rows when the referenced record is deleted."""

    RESTRICT = "restrict"
    CASCADE = "cascade"
    SET_NULL = "set_null"


class Feature(str, enum.Enum):
    """Behaviours an entity opts into; each adds system columns or services."""

    OWNED = "owned"            # owner_id column; row scopes "own", "department"...
    POOLED = "pooled"          # pool_id column; needs OWNED
    PIPELINED = "pipelined"    # stage column; needs a pipeline declared for the entity
    ACTIVITY = "activity"      # an activity feed of every change
    SOFT_DELETE = "soft_delete"  # deleted_at column; delete goes to the recycle bin


@dataclass(frozen=True)
class Option:
    """One choice of a select / multi-select field."""

    value: str
    label: LocalText
    color: str | None = None
    order: int = 0


@dataclass(frozen=True)
class Field:
    """One field of an entity. Which attributes apply depends on ``type``."""

    name: str
    type: FieldType
    label: LocalText
    help: LocalText = LocalText()
    required: bool = False
    default: Any = None
    unique: bool = False
    # numeric range (integer, decimal, money, percent, rating)
    min: float | None = None
    max: float | None = None
    # text length (text, long_text, email, phone, url, rich_text)
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_message: LocalText = LocalText()  # shown instead of the expression
    # decimal / money: total digits and digits after the point
    precision: int | None = None
    scale: int | None = None
    # select / multi_select
    options: tuple[Option, ...] = ()
    # reference
    target: str | None = None
    on_delete: OnDelete = OnDelete.RESTRICT
    # money: the default currency (ISO 4217) of new values
    currency: str | None = None
    # file: accepted content types and largest size in bytes
    accept: tuple[str, ...] = ()
    max_size: int | None = None
    # auto_number: e.g. "CUS-{YYYY}{MM}-{seq:5}"
    format: str | None = None
    source: Source = Source()

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)


@dataclass(frozen=True)
class UniqueKey:
    """A single or composite unique key, e.g. (licence_no, phone)."""

    name: str
    fields: tuple[str, ...]
    message: LocalText = LocalText()
    source: Source = Source()


class DedupMatch(str, enum.Enum):
    """How a fuzzy dedup rule compares (engine/records/dedup.py)."""

    SIMILAR_NAME = "similar_name"   # the name stem (suffixes, spaces, punctuation gone)
    OTHER_ENTITY = "other_entity"   # the field's match key held by another entity's field


@dataclass(frozen=True)
class DedupRule:
    """A fuzzy duplicate rule: a match warns (the user may save anyway), never refuses.

    Exact duplicates are the entity's unique keys, which refuse.
    """

    name: str
    match: DedupMatch
    field: str
    entity: str = ""          # other_entity: the entity whose records are probed
    entity_field: str = ""    # other_entity: its field (defaults to ``field``)
    message: LocalText = LocalText()
    source: Source = Source()

    @property
    def target_field(self) -> str:
        return self.entity_field or self.field


@dataclass(frozen=True)
class Index:
    """A declared (non-unique) index to speed filters and sorts."""

    name: str
    fields: tuple[str, ...]
    source: Source = Source()


@dataclass(frozen=True)
class Entity:
    """A business object: becomes one table with typed columns."""

    name: str
    label: LocalText
    plural_label: LocalText
    fields: tuple[Field, ...]
    title_field: str
    features: frozenset[Feature] = frozenset()
    unique_keys: tuple[UniqueKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    search_fields: tuple[str, ...] = ()
    #: Fields that get a match key column (normalised, indexed, not unique), so that
    #: other entities' ``other_entity`` rules can probe them.
    dedup_keys: tuple[str, ...] = ()
    dedup_rules: tuple[DedupRule, ...] = ()
    app: str = ""
    source: Source = Source()

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def has_field(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    def has(self, feature: Feature) -> bool:
        return feature in self.features


class StageKind(str, enum.Enum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class Stage:
    key: str
    label: LocalText
    order: int
    kind: StageKind = StageKind.OPEN
    probability: int | None = None          # 0..100
    required_fields: tuple[str, ...] = ()   # must be filled to enter this stage
    next_stages: tuple[str, ...] | None = None  # None = any stage may follow
    source: Source = Source()


@dataclass(frozen=True)
class PipelineSelector:
    """Which records a pipeline drives: those whose select ``field`` holds one of ``values``."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Pipeline:
    """The stage machine of one pipelined entity (of some of its records, with a selector).

    An entity may have several pipelines, each driving the records whose selector
    field holds one of its values; the one without a selector (the default) drives
    the others. Stage keys are unique across an entity's pipelines, so a stored
    stage says which pipeline it belongs to.
    """

    name: str
    entity: str
    label: LocalText
    stages: tuple[Stage, ...]
    initial_stage: str
    app: str = ""
    source: Source = Source()
    probability_field: str | None = None  # takes the stage's probability on entry
    selector: PipelineSelector | None = None  # None: the entity's default pipeline

    def stage(self, key: str) -> Stage:
        for s in self.stages:
            if s.key == key:
                return s
        raise KeyError(f"pipeline {self.name} has no stage {key!r}")


@dataclass(frozen=True)
class PoolMembers:
    """Who works a pool: departments (with their subtrees), roles, single users."""

    departments: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolLimits:
    max_held: int | None = None             # records a member may hold from this pool
    daily_claims: int | None = None         # claims per member per day
    reclaim_cooldown_days: int | None = None  # a previous owner may not reclaim within N days
    held_excludes: tuple[Condition, ...] = ()  # held records matching these do not count
    new_record_hours: int | None = None     # no claim within N hours of entering the pool
    max_locked: int | None = None           # locks per member (None: members may not lock)
    time_zone: str = "UTC"                  # whose midnight starts a day for daily_claims


@dataclass(frozen=True)
class RuleAfter:
    """How long a rule's clock may run, in hours, optionally per value of one field."""

    hours: int
    field: str | None = None
    per_value: tuple[tuple[str, int], ...] = ()   # (option value, hours)

    @property
    def shortest(self) -> int:
        return min((self.hours, *(h for _, h in self.per_value)))


@dataclass(frozen=True)
class PoolRule:
    """An automatic pool rule: a clock that ran out (drop), N returns, an inactive owner.

    ``when`` narrows the records the rule looks at and ``exempt`` spares some;
    both are condition trees (``Condition`` / ``ConditionGroup``) compiled by the
    one condition compiler. Locked records never drop.
    """

    name: str
    kind: str                       # drop | returned | owner_inactive
    clock: str | None = None        # claimed | touched | stage_changed | created (drop)
    after: RuleAfter | None = None  # drop
    times: int | None = None        # returned
    when: Any = None
    exempt: Any = None
    warn_before_hours: int | None = None
    action: str = "return_to_pool"  # return_to_pool | assign_to_leader | assign_to_role
    role: str | None = None         # assign_to_role
    label: LocalText = LocalText()
    source: Source = Source()


@dataclass(frozen=True)
class Touch:
    """Creating a record of ``entity`` whose reference ``field`` names a pooled record touches it."""

    entity: str
    field: str


@dataclass(frozen=True)
class Target:
    """Where distribution sends records: a department (its users in turn) or one user."""

    kind: str   # department | user
    key: str    # department code or user login


@dataclass(frozen=True)
class Territory:
    name: str
    polygon: tuple[tuple[float, float], ...]   # (longitude, latitude) corners
    target: Target

    @cached_property
    def box(self) -> tuple[float, float, float, float]:
        """(min longitude, min latitude, max longitude, max latitude) of the corners: a
        point outside this box is outside the polygon (distribution tests it first)."""
        xs = [x for x, _ in self.polygon]
        ys = [y for _, y in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True)
class Distribution:
    mode: str = "none"            # none | round_robin | by_field | territory
    field: str | None = None       # by_field: a select field; territory: a geo_point field
    team: Target | None = None     # round_robin
    targets: tuple[tuple[str, Target], ...] = ()  # by_field: (option value, target)
    territories: tuple[Territory, ...] = ()       # territory, by name


@dataclass(frozen=True)
class Pool:
    name: str
    entity: str
    label: LocalText
    members: PoolMembers = PoolMembers()
    limits: PoolLimits = PoolLimits()
    rules: tuple[PoolRule, ...] = ()
    distribution: Distribution = Distribution()
    touch: tuple[Touch, ...] = ()
    app: str = ""
    source: Source = Source()


class RowScope(str, enum.Enum):
    OWN = "own"
    DEPARTMENT = "department"
    SUBTREE = "subtree"
    POOL = "pool"
    SHARED = "shared"
    ALL = "all"


ACTIONS: tuple[str, ...] = (
    "read", "create", "update", "delete", "export", "import", "assign", "claim",
    "return", "recycle", "merge", "configure", "convert",
)


@dataclass(frozen=True)
class EntityGrant:
    """What one role may do on one entity, and on which rows."""

    entity: str
    actions: tuple[str, ...]
    scope: RowScope
    hidden_fields: tuple[str, ...] = ()
    readonly_fields: tuple[str, ...] = ()
    source: Source = Source()


#: Operators of sharing-rule conditions: the same names and meanings as list filters.
CONDITION_OPS: tuple[str, ...] = (
    "eq", "ne", "in", "lt", "lte", "gt", "gte", "between", "contains", "starts_with",
    "is_empty", "not_empty",
)


@dataclass(frozen=True)
class Condition:
    """``field op value`` on one record (``value`` is the JSON operand, checked at load)."""

    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class ConditionGroup:
    """Conditions joined by AND (``any`` false) or OR (``any`` true); groups nest.

    JSON: ``{"all": [...]}`` or ``{"any": [...]}``, each item a condition or a group.
    """

    any: bool
    items: tuple[Any, ...]


@dataclass(frozen=True)
class SharingRule:
    """Records of ``entity`` matching every condition, shared with a role's holders.

    ``access`` is ``read`` (read, export) or ``write`` (also update);
    ``departments`` (codes) narrows the holders to those departments and below.
    """

    name: str
    entity: str
    where: tuple[Condition, ...]
    access: str = "read"
    departments: tuple[str, ...] = ()
    source: Source = Source()


@dataclass(frozen=True)
class Role:
    name: str
    label: LocalText
    grants: tuple[EntityGrant, ...] = ()
    app: str = ""
    source: Source = Source()
    sharing_rules: tuple[SharingRule, ...] = ()


@dataclass(frozen=True)
class AppInfo:
    """An app package's manifest."""

    name: str
    version: str
    label: LocalText
    depends_on: tuple[str, ...] = ()
    path: str = ""


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Registry:
    """Everything the loaded apps declare, merged with overlays and customisations.

    ``document`` is the canonical JSON form (entities etc. after overlays), which
    storage records as the applied metadata and which ``fingerprint`` hashes.
    """

    apps: tuple[AppInfo, ...]
    entities: Mapping[str, Entity]
    pipelines: Mapping[str, Pipeline] = field(default_factory=lambda: _frozen({}))
    pools: Mapping[str, Pool] = field(default_factory=lambda: _frozen({}))
    roles: Mapping[str, Role] = field(default_factory=lambda: _frozen({}))
    document: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    def __post_init__(self) -> None:
        for name in ("entities", "pipelines", "pools", "roles", "document"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, _frozen(value))

    def entity(self, name: str) -> Entity:
        try:
            return self.entities[name]
        except KeyError:
            raise KeyError(f"no entity {name!r}") from None

    def pipelines_of(self, entity: str) -> tuple[Pipeline, ...]:
        """The entity's pipelines, the default one (no selector) first, then by name."""
        return tuple(sorted((p for p in self.pipelines.values() if p.entity == entity),
                            key=lambda p: (p.selector is not None, p.name)))

    def pipeline_for(self, entity: str) -> Pipeline | None:
        """The entity's default pipeline (the first one when every pipeline has a selector)."""
        return next(iter(self.pipelines_of(entity)), None)

    def find_stage(self, entity: str, key: Any) -> tuple[Pipeline, Stage] | None:
        """The pipeline holding stage ``key`` of ``entity`` and the stage (keys are unique
        across an entity's pipelines)."""
        for pipeline in self.pipelines_of(entity):
            stage = next((s for s in pipeline.stages if s.key == key), None)
            if stage is not None:
                return pipeline, stage
        return None

    def __iter__(self) -> Iterator[Entity]:
        return iter(self.entities.values())

    @property
    def fingerprint(self) -> str:
        """A stable hash of the canonical document: equal metadata, equal hash."""
        # default=dict: the document is a read-only mapping proxy, which json cannot encode
        canonical = json.dumps(self.document, sort_keys=True, ensure_ascii=False,
                               separators=(",", ":"), default=dict)
        return hashlib.sha256(canonical.encode()).hexdigest()
