"""A rule run as text, for `tidepool rules run` (and logs): per rule, then per record."""

from __future__ import annotations

from typing import TextIO

from engine.workflow.rule_runner import RunReport


def write_report(report: RunReport, out: TextIO) -> None:
    """One line per rule with its count; in a dry run, one line per record and why."""
    verb = "would move" if report.dry_run else "moved"
    out.write(f"pool rules at {report.now:%Y-%m-%d %H:%M:%S} UTC"
              f"{' (dry run: nothing changed)' if report.dry_run else ''}\n")
    for o in report.outcomes:
        extra = ""
        if o.warned:
            extra += f", warned {o.warned}"
        if o.unassigned:
            extra += f", {o.unassigned} without a leader or role holder (left in place)"
        if o.skipped:
            extra += f" (skipped: {o.skipped})"
        out.write(f"  {o.pool}.{o.rule}: {verb} {o.moved}{extra}\n")
    for m in report.moves:
        owner = "pool" if m.owner_id is None else f"owner {m.owner_id}"
        out.write(f"    {m.entity} {m.record_id} ({owner}) -> {m.action}: {m.why()}\n")
    out.write(f"total: {verb} {report.moved}\n")
