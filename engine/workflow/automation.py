"""The hook provider of pool rules and distribution (engine/runtime.py runs it on every
service). A stage's probability is applied by the stage rules themselves, in the same
write that enters the stage (engine/records/stages.py, ``entry_defaults``).

Distribution (``place_new``) runs before a create's rows are inserted, so the
ownership it gives (``tx.reown`` once the rows have ids) reaches ``keep_clocks``
(and the ledger) with the creates themselves (engine/records/hooks.py).
"""

from __future__ import annotations

from engine.records.service import RecordService
from engine.workflow.clocks import keep_clocks
from engine.workflow.distribution import place_new


def install(records: RecordService) -> None:
    """Register distribution (before insert) and the rule clocks (in the transaction)."""
    records.hooks.before_insert(place_new)
    records.hooks.in_transaction(keep_clocks, batches=True)
