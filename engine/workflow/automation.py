"""The hook provider of pool rules, distribution and stage probabilities (engine/runtime.py
runs it on every service).

Order matters and is deliberate: ``distribute`` places new records first, so the
ownership its writes produce reaches ``keep_clocks`` (and the ledger) in the
next round of the same unit of work (engine/records/hooks.py).
"""

from __future__ import annotations

from engine.records.service import RecordService
from engine.workflow.clocks import keep_clocks
from engine.workflow.distribution import distribute
from engine.workflow.stage_probability import apply_stage_probability


def install(records: RecordService) -> None:
    """Register distribution, the rule clocks and stage probabilities as in-transaction hooks."""
    records.hooks.in_transaction(distribute)
    records.hooks.in_transaction(keep_clocks)
    records.hooks.in_transaction(apply_stage_probability)
