"""The hook provider of pool rules and distribution (engine/runtime.py runs it on every
service). A stage's probability is applied by the stage rules themselves, in the same
write that enters the stage (engine/records/stages.py, ``entry_defaults``).

Order matters and is deliberate: ``distribute`` places new records first, so the
ownership its writes produce reaches ``keep_clocks`` (and the ledger) in the
next round of the same unit of work (engine/records/hooks.py).
"""

from __future__ import annotations

from engine.records.service import RecordService
from engine.workflow.clocks import keep_clocks
from engine.workflow.distribution import distribute


def install(records: RecordService) -> None:
    """Register distribution and the rule clocks as in-transaction hooks."""
    records.hooks.in_transaction(distribute, batches=True)
    records.hooks.in_transaction(keep_clocks, batches=True)
