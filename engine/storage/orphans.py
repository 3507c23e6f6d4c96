"""What a migration orphans: declarations and stored data naming a removed field or entity.

Removing a field that the *target* metadata still names is a metadata error,
caught by the loader's cross-checks before any plan is made. What remains is
everything that named it in the metadata applied so far (roles, pool rules,
stage requirements, unique keys, indexes) and in data that lives in the
database rather than in packages (saved views and filters, later). A plan
lists them as ``Orphan`` warnings so the admin sees what stops working.

Extension point: ``register_orphan_finder``
-------------------------------------------
An orphan finder is a callable ``finder(context: OrphanContext) -> Iterable[Orphan]``
registered once at import time::

    from engine.storage.orphans import Orphan, OrphanContext, register_orphan_finder

    @register_orphan_finder
    def saved_views(context: OrphanContext) -> Iterable[Orphan]:
        # read the saved-view table on context.conn; for each view whose columns,
        # filters or sort name a field for which context.is_removed(entity, field)
        yield Orphan("saved_view", view_name, "filters on removed field customer.phone")

The finder runs inside the migration's transaction (read only: it must not
write) during planning and during ``--dry-run``. The built-in finders below
are registered the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from engine.metadata.conditions import tree_fields
from engine.metadata.model import Registry
from engine.storage.plan import Orphan


@dataclass(frozen=True)
class OrphanContext:
    """What a finder needs: the connection, both registries, and what goes away."""

    conn: Connection
    applied: Registry
    target: Registry
    removed_fields: Mapping[str, frozenset[str]]   # entity kept in the target -> fields removed
    removed_entities: frozenset[str]

    def is_removed(self, entity: str, field: str | None = None) -> bool:
        """True if ``entity`` (or its ``field``) exists in applied but not in target."""
        if entity in self.removed_entities:
            return True
        return field is not None and field in self.removed_fields.get(entity, frozenset())


OrphanFinder = Callable[[OrphanContext], Iterable[Orphan]]
_FINDERS: list[OrphanFinder] = []


def register_orphan_finder(finder: OrphanFinder) -> OrphanFinder:
    """Add ``finder`` to the ones every plan runs (usable as a decorator)."""
    if finder not in _FINDERS:
        _FINDERS.append(finder)
    return finder


def orphan_finders() -> tuple[OrphanFinder, ...]:
    """The registered finders, built-in ones first."""
    return tuple(_FINDERS)


def find_orphans(context: OrphanContext) -> tuple[Orphan, ...]:
    """Run every finder; nothing to find when nothing is removed."""
    if not context.removed_entities and not any(context.removed_fields.values()):
        return ()
    found: list[Orphan] = []
    for finder in _FINDERS:
        found.extend(finder(context))
    return tuple(found)


def _named(context: OrphanContext, entity: str, fields: Iterable[str]) -> list[str]:
    return [f for f in fields if context.is_removed(entity, f)]


@register_orphan_finder
def role_grants(context: OrphanContext) -> Iterable[Orphan]:
    """Role grants on a removed entity, or hiding / locking a removed field."""
    for role in context.applied.roles.values():
        for grant in role.grants:
            if grant.entity in context.removed_entities:
                yield Orphan("role", role.name, f"grant on removed entity {grant.entity}")
                continue
            for kind, fields in (("hidden", grant.hidden_fields),
                                 ("read-only", grant.readonly_fields)):
                for name in _named(context, grant.entity, fields):
                    yield Orphan("role", role.name,
                                 f"{kind} field {grant.entity}.{name} is removed")


@register_orphan_finder
def pool_rules(context: OrphanContext) -> Iterable[Orphan]:
    """Pools of a removed entity, rule exemptions and distribution by a removed field."""
    for pool in context.applied.pools.values():
        if pool.entity in context.removed_entities:
            yield Orphan("pool", pool.name, f"pool of removed entity {pool.entity}")
            continue
        for rule in pool.rules:
            named = [*tree_fields(rule.when), *tree_fields(rule.exempt)]
            if rule.after is not None and rule.after.field:
                named.append(rule.after.field)
            for name in _named(context, pool.entity, named):
                yield Orphan("pool", pool.name,
                             f"rule {rule.name} names removed field {pool.entity}.{name}")
        for touch in pool.touch:
            if touch.entity in context.removed_entities or context.is_removed(
                    touch.entity, touch.field):
                yield Orphan("pool", pool.name,
                             f"touch by removed {touch.entity}.{touch.field}")
        field = pool.distribution.field
        if field and context.is_removed(pool.entity, field):
            yield Orphan("pool", pool.name,
                         f"distribution by removed field {pool.entity}.{field}")


@register_orphan_finder
def stage_requirements(context: OrphanContext) -> Iterable[Orphan]:
    """Pipeline stages that required a removed field to be filled."""
    for pipeline in context.applied.pipelines.values():
        if pipeline.entity in context.removed_entities:
            yield Orphan("pipeline", pipeline.name,
                         f"pipeline of removed entity {pipeline.entity}")
            continue
        for stage in pipeline.stages:
            for name in _named(context, pipeline.entity, stage.required_fields):
                yield Orphan("pipeline", pipeline.name,
                             f"stage {stage.key} requires removed field {pipeline.entity}.{name}")


@register_orphan_finder
def entity_declarations(context: OrphanContext) -> Iterable[Orphan]:
    """Unique keys, indexes and references (in kept entities) that named what goes away."""
    for entity in context.applied.entities.values():
        if entity.name in context.removed_entities:
            continue
        for key in entity.unique_keys:
            names = _named(context, entity.name, key.fields)
            if names:
                yield Orphan("unique_key", f"{entity.name}.{key.name}",
                             f"named removed field(s) {', '.join(names)}; constraint dropped")
        for index in entity.indexes:
            names = _named(context, entity.name, index.fields)
            if names:
                yield Orphan("index", f"{entity.name}.{index.name}",
                             f"named removed field(s) {', '.join(names)}; index dropped")
        for field in entity.fields:
            if field.target in context.removed_entities and not context.is_removed(
                    entity.name, field.name):
                yield Orphan("field", f"{entity.name}.{field.name}",
                             f"references removed entity {field.target}")
