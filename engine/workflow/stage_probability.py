"""A record entering a stage takes the stage's probability, unless it was set by hand.

A pipeline may name a ``probability_field`` (a percent, decimal or integer
field). ``apply_stage_probability`` is an in-transaction write hook (registered
by engine/workflow/automation.py): for each record created in a stage, or
moved into one, whose stage declares a probability, it writes that probability
into the field in the same transaction -- unless the same write set the field
itself (a value given on create, or changed in the same move), which is the
rep's judgement and wins. Stages without a probability leave the field alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from engine.metadata.model import FieldType
from engine.records.events import CREATE, STAGE, WriteEvent

if TYPE_CHECKING:
    from engine.records.transaction import Transaction


def _value(field_type: FieldType, probability: int) -> Any:
    return probability if field_type is FieldType.INTEGER else Decimal(probability)


def apply_stage_probability(tx: Transaction, events: Sequence[WriteEvent]) -> None:
    """In-transaction hook: see the module doc."""
    registry = tx.service.schema.registry
    pending: dict[tuple[str, str, Any], list[int]] = {}
    for event in events:
        if event.kind not in (CREATE, STAGE) or event.after is None:
            continue
        pipeline = registry.pipeline_for(event.entity)
        if pipeline is None or not pipeline.probability_field:
            continue
        name = pipeline.probability_field
        key = event.after.get("stage")
        stage = next((s for s in pipeline.stages if s.key == key), None)
        if stage is None or stage.probability is None:
            continue
        if event.kind == CREATE and event.after.get(name) is not None:
            continue  # given on create: set by hand
        if event.kind == STAGE and event.changed(name):
            continue  # changed in the same move: set by hand
        field = next((f for f in registry.entity(event.entity).fields if f.name == name), None)
        if field is None:
            continue
        value = _value(field.type, stage.probability)
        if event.after.get(name) == value:
            continue
        pending.setdefault((event.entity, name, value), []).append(event.record_id)
    for (entity, column, value), ids in pending.items():
        table = tx.service.schema.table(entity)
        tx.conn.execute(update(table).where(table.c.id.in_(ids)).values({column: value}))
