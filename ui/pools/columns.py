"""Owner and pool as list columns and filters of a pooled entity.

They are system columns, not fields of the entity; here they become field-like
definitions so the generic list draws, filters and labels them like any field:
the owner as a user, the pool as a choice of the entity's pools (by label).
"""

from __future__ import annotations

from engine.metadata.model import Entity, Feature, Field, FieldType, LocalText, Option, Registry
from ui.i18n import t

POOL_COLUMNS = ("owner_id", "pool_id")


def pool_columns(registry: Registry, entity: Entity, hidden: frozenset[str]) -> list[Field]:
    """Field-like definitions of owner and pool for a pooled entity's list (else none)."""
    if not entity.has(Feature.POOLED):
        return []

    def label(text: str) -> LocalText:
        return LocalText.of({"en": text, "zh-CN": t("zh-CN", text)})

    pools = sorted((p for p in registry.pools.values() if p.entity == entity.name),
                   key=lambda p: p.name)
    out = []
    if "owner_id" not in hidden:
        out.append(Field(name="owner_id", type=FieldType.USER, label=label("Owner")))
    if "pool_id" not in hidden:
        out.append(Field(name="pool_id", type=FieldType.SELECT, label=label("Pool"),
                         options=tuple(Option(p.name, p.label) for p in pools)))
    return out
