"""The reports, dashboards and leaderboards of the registry a runtime serves.

They ride in the registry's canonical document (engine/metadata/reports.py);
parsing them once per registry keeps a page from re-reading every report.
"""

from __future__ import annotations

import threading

from engine.errors import NotFoundError
from engine.metadata.model import Registry
from engine.metadata.reports import Dashboard, Leaderboard, Report, ReportCatalog

_cache: dict[int, tuple[Registry, ReportCatalog]] = {}
_lock = threading.Lock()


def catalog_of(registry: Registry) -> ReportCatalog:
    """The parsed report metadata of ``registry`` (cached while the registry lives)."""
    with _lock:
        found = _cache.get(id(registry))
        if found is not None and found[0] is registry:
            return found[1]
        catalog = ReportCatalog.from_document(registry.document)
        if len(_cache) > 16:
            _cache.clear()
        _cache[id(registry)] = (registry, catalog)
        return catalog


def report_of(registry: Registry, name: str) -> Report:
    found = catalog_of(registry).reports.get(name)
    if found is None:
        raise NotFoundError("report", name)
    return found


def leaderboard_of(registry: Registry, name: str | None = None) -> Leaderboard:
    boards = catalog_of(registry).leaderboards
    if name is None and boards:
        return next(iter(boards.values()))
    found = boards.get(name or "")
    if found is None:
        raise NotFoundError("leaderboard", name or "")
    return found


def dashboard_for(registry: Registry, roles: tuple[str, ...]) -> Dashboard | None:
    """The dashboard of the highest priority naming one of ``roles`` (None: none does)."""
    mine = [d for d in catalog_of(registry).dashboards.values() if set(d.roles) & set(roles)]
    return max(mine, key=lambda d: (d.priority, d.name), default=None)
