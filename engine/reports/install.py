"""The reporting layer's hook provider: keep the leaderboard rollups in every write.

``engine.runtime`` calls ``install(records)`` whenever it builds services; the
in-transaction handler adds each unit of work's rollup deltas on the unit's own
connection, so the rollups commit or roll back with the write itself, keyed by day in
the zone the rollups are stamped with (``engine.reports.freshness``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.records.events import Event
from engine.records.service import RecordService
from engine.reports.freshness import writer_zone
from engine.reports.rollups import RollupKeeper


def install(records: RecordService) -> None:
    """Register the rollup keeper on ``records`` (nothing when no leaderboard is declared)."""
    keeper = RollupKeeper(records.schema, records.schema.registry)
    if not keeper.active:
        return

    def keep_rollups(tx: Any, events: Sequence[Event]) -> None:
        if not any(e.entity in keeper.measures or
                   (e.entity, getattr(e, "kind", None) or "") in keeper.events
                   for e in events):
            return   # nothing ranked was written: no stamp read either
        zone = writer_zone(tx.conn, records)
        if zone is not None:   # None: stale rollups, rebuilt by the next reader
            keeper.apply(tx.conn, events, zone=zone)

    records.hooks.in_transaction(keep_rollups, batches=True)  # a batch: one pass over its rows
