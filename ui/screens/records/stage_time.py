"""Time in stage on a record's page: how long the record has spent in each stage it visited.

Read from the stage history (``tp_stage_history``) through
``RecordService.time_in_stage``, which checks the reader may read the record;
a stage visited twice adds up, the current stage counts until now.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request

from engine.actor import Actor
from engine.metadata.model import Entity
from engine.records.record import Record
from engine.runtime import Runtime
from ui.context import UIContext


def format_duration(ui: UIContext, request: Request, spent: timedelta) -> str:
    """``3 d 4 h``, ``5 h 20 min`` or ``12 min``: precise enough to compare, short on a phone."""
    minutes = max(0, int(spent.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return ui.t(request, "%(days)s d %(hours)s h", days=days, hours=hours)
    if hours:
        return ui.t(request, "%(hours)s h %(minutes)s min", hours=hours, minutes=mins)
    return ui.t(request, "%(minutes)s min", minutes=mins)


def stage_times(ui: UIContext, request: Request, runtime: Runtime, actor: Actor,
                entity: Entity, record: Record) -> list[tuple[str, str]]:
    """(stage label, time spent) in pipeline order; the current stage says so. Empty
    when the entity has no pipeline. The record's own pipeline comes first, then the
    stages it spent time in under another pipeline (before its selector changed)."""
    pipelines = runtime.registry.pipelines_of(entity.name)
    current = record.get("stage")
    if not pipelines or current is None:
        return []
    spent = runtime.records.time_in_stage(actor, entity.name, record.id)
    locale = ui.locale(request)
    found = runtime.registry.find_stage(entity.name, current)
    own = found[0] if found is not None else pipelines[0]
    ordered = [own, *(p for p in pipelines if p.name != own.name)]
    out = []
    for stage in (s for p in ordered for s in sorted(p.stages, key=lambda s: s.order)):
        if stage.key not in spent:
            continue
        label = stage.label.get(locale)
        if stage.key == current:
            label = ui.t(request, "%(stage)s (current)", stage=label)
        out.append((label, format_duration(ui, request, spent[stage.key])))
    return out
