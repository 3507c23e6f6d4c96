"""The workflow layer: pools, their operations, limits and ledger, on the records service.

``install(records)`` is this layer's hook provider (engine/runtime.py runs it on
every service it builds): it registers the in-transaction hook that keeps the
pool-event ledger (engine/workflow/ledger.py) and the one that holds a plain assignment
to the pools' capacity (engine/workflow/pools.py), and the after-commit hook that
writes in-app notifications (engine/workflow/notifications.py).
"""

from __future__ import annotations

from engine.records.service import RecordService
from engine.workflow import notifications
from engine.workflow.ledger import record_pool_events
from engine.workflow.pools import enforce_capacity


def install(records: RecordService) -> None:
    """Register the workflow layer's write hooks on ``records``."""
    records.hooks.in_transaction(record_pool_events, batches=True)
    records.hooks.in_transaction(enforce_capacity, batches=True)
    notifications.install(records)
