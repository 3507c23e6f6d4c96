"""Reporting: report and dashboard metadata -> one permission-filtered query compiler,
per-owner-per-day rollups kept by write events, the leaderboard and sales targets.

Every number is read through the records service's row scope (``scoped_where``),
so a report counts exactly what its reader may list; see docs/reports.md.
"""
