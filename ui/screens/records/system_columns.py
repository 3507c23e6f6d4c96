"""Created and updated times, the stage and the owner as list columns and filters.

Like owner and pool (``ui/pools/columns.py``) they are system columns, not fields
of the entity; here they become field-like definitions so the generic list draws,
sorts, filters and labels them like any field: the times as date-times (a range
read in the viewer's zone, with today / this week / this month), the stage as a
choice of the entity's pipeline stages (by label, in pipeline order).
"""

from __future__ import annotations

from engine.metadata.model import Entity, Feature, Field, FieldType, LocalText, Option, Registry
from ui.i18n import t
from ui.screens.records.display import SYSTEM_LABELS

TIME_COLUMNS = ("created_at", "updated_at")


def _label(name: str) -> LocalText:
    text = SYSTEM_LABELS[name]
    return LocalText.of({"en": text, "zh-CN": t("zh-CN", text)})


def system_columns(registry: Registry, entity: Entity, hidden: frozenset[str]) -> list[Field]:
    """Field-like definitions of the owner (owned entities without pools), the stage
    (pipelined entities) and the created and updated times, for the list's column
    chooser and filter panel."""
    out = []
    if entity.has(Feature.OWNED) and not entity.has(Feature.POOLED) and "owner_id" not in hidden:
        # a pooled entity lists its owner with its pool (ui/pools/columns.py)
        out.append(Field(name="owner_id", type=FieldType.USER, label=_label("owner_id")))
    pipelines = registry.pipelines_of(entity.name)
    if entity.has(Feature.PIPELINED) and pipelines and "stage" not in hidden:
        # every pipeline's stages (keys are unique across them), so a renewal's stage
        # shows its own label; the filter panel's stage picker is ``stage_filter``
        out.append(Field(name="stage", type=FieldType.SELECT, label=_label("stage"),
                         options=tuple(Option(s.key, s.label) for p in pipelines
                                       for s in sorted(p.stages, key=lambda s: s.order))))
    out += [Field(name=n, type=FieldType.DATETIME, label=_label(n))
            for n in TIME_COLUMNS if n not in hidden and not entity.has_field(n)]
    return out
