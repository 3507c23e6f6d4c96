"""The "drops in N days" badge on a rep's own pooled records (list rows, phone cards, detail).

Only the holder sees it: it tells them to follow the record up before a drop
rule sends it back to the pool. The due times come from the rule forecast
(engine/workflow/forecast.py) for the page's own records at once, one query
per drop rule, so a locked or exempt record, or one no rule governs, has none.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from engine.actor import Actor
from engine.metadata.model import Entity, Feature
from engine.records.record import Record
from engine.runtime import Runtime
from engine.workflow.forecast import days_until, drop_due
from ui import i18n
from ui.context import UIContext


def _days_text(locale: str, days: int) -> str:
    """``Drops in 3 days`` / ``Drops today`` (the due time, rounded up to days)."""
    if days == 0:
        return i18n.t(locale, "Drops today")
    return i18n.tn(locale, "Drops in %(n)s day", "Drops in %(n)s days", days)


def drop_badges(ui: UIContext, request: Request, runtime: Runtime, actor: Actor,
                entity: Entity, records: Sequence[Record]) -> dict[int, str]:
    """Badge text by record id, for the listed records ``actor`` holds (others: none)."""
    user_id = actor.user_id
    if user_id is None or not entity.has(Feature.POOLED):
        return {}
    mine = [r.id for r in records if r.get("owner_id") == user_id]
    if not mine:
        return {}
    now = runtime.records.clock()
    locale = ui.locale(request)
    found = drop_due(runtime.records, entity=entity.name, ids=mine, now=now)
    texts: dict[int, str] = {}  # by days left: a page's badges share a few texts
    out = {}
    for record_id, due in found.items():
        days = days_until(due, now)
        text = texts.get(days)
        if text is None:
            text = texts[days] = _days_text(locale, days)
        out[record_id] = text
    return out
