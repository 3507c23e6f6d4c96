"""Report screens: reports with charts and drill-down, the leaderboard, targets, the
dashboard on the home page and the admin's dashboard editor (docs/reports.md)."""
