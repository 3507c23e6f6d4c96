"""Admin changes to dashboards: add a report tile, remove a tile.

A dashboard declared by a package is replaced whole by a ``dashboard``
customisation (like a role), so the admin's edit survives a package upgrade
and exports back into a package with ``tidepool customisations export``.
They run through ``ConfigService`` like every configuration change.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.configure.workspace import ChangeRefused, Workspace
from engine.messages import M


@dataclass(frozen=True)
class AddReportTile:
    """Append a report (with an optional period) to a dashboard's tiles."""

    dashboard: str
    report: str
    period: str | None = None

    @property
    def subject(self) -> str:
        return f"dashboard {self.dashboard}"

    focus = None

    def summary(self) -> str:
        return f"add report {self.report} to dashboard {self.dashboard}"

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("dashboard", self.dashboard, subject=self.subject)
        if not ws.exists("report", self.report):
            raise ChangeRefused(self.subject, {"report": M("there is no report %(report)s",
                                                           report=repr(self.report))})
        tile: dict[str, str] = {"kind": "report", "report": self.report}
        if self.period:
            tile["period"] = self.period
        if tile in doc["tiles"]:
            raise ChangeRefused(self.subject, {"report": M("the dashboard already shows it")})
        doc["tiles"] = [*doc["tiles"], tile]


@dataclass(frozen=True)
class RemoveTile:
    """Remove the tile at ``index`` of a dashboard."""

    dashboard: str
    index: int

    @property
    def subject(self) -> str:
        return f"dashboard {self.dashboard}"

    focus = None

    def summary(self) -> str:
        return f"remove tile {self.index + 1} from dashboard {self.dashboard}"

    def apply(self, ws: Workspace) -> None:
        doc = ws.get("dashboard", self.dashboard, subject=self.subject)
        if not 0 <= self.index < len(doc["tiles"]):
            raise ChangeRefused(self.subject, {"tile": M("no such tile")})
        doc["tiles"] = [t for i, t in enumerate(doc["tiles"]) if i != self.index]
