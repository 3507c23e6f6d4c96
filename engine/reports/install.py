"""The reporting layer's hook provider: keep the leaderboard rollups in every write.

``engine.runtime`` calls ``install(records)`` whenever it builds services; the
in-transaction handler adds each unit of work's rollup deltas on the unit's own
connection, so the rollups commit or roll back with the write itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.records.events import WriteEvent
from engine.records.service import RecordService
from engine.reports.rollups import RollupKeeper


def install(records: RecordService) -> None:
    """Register the rollup keeper on ``records`` (nothing when no leaderboard is declared)."""
    keeper = RollupKeeper(records.schema, records.schema.registry)
    if not keeper.active:
        return

    def keep_rollups(tx: Any, events: Sequence[WriteEvent]) -> None:
        keeper.apply(tx.conn, events)

    records.hooks.in_transaction(keep_rollups)
