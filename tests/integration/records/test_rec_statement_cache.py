"""List statements are cached per shape: paging reuses one, the cache stays bounded,
and a cached statement never answers a different query."""

from __future__ import annotations

import pytest

from engine.actor import Actor
from engine.records import RecordService
from engine.records import service as service_module
from engine.records.query import Filter, ListQuery, Op


def _names(service: RecordService, system: Actor, query: ListQuery) -> list[str]:
    return [r["name"] for r in service.list(system, "account", query).rows]


def test_paging_reuses_one_statement_and_results_stay_right(
        service: RecordService, system: Actor) -> None:
    for i in range(7):
        service.create(system, "account", {"name": f"Acme {i}"})
    seen: list[str] = []
    query = ListQuery(limit=2)
    while True:
        page = service.list(system, "account", query)
        seen += [r["name"] for r in page.rows]
        if not page.has_more:
            break
        query = ListQuery(limit=2, after=page.next_token)
    assert sorted(seen) == [f"Acme {i}" for i in range(7)]
    # first page and "after" pages are two shapes, whatever the position
    assert len(service._statements) == 2


def test_cache_is_bounded_least_recently_used_first(
        service: RecordService, system: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "MAX_CACHED_STATEMENTS", 2)
    service.create(system, "account", {"name": "Alpha"})
    service.create(system, "account", {"name": "Beta"})
    by_name = {n: ListQuery(filters=(Filter("name", Op.EQ, n),)) for n in ("Alpha", "Beta")}
    everything = ListQuery()
    assert _names(service, system, by_name["Alpha"]) == ["Alpha"]
    assert _names(service, system, by_name["Beta"]) == ["Beta"]
    assert _names(service, system, by_name["Alpha"]) == ["Alpha"]  # Alpha now most recent
    assert sorted(_names(service, system, everything)) == ["Alpha", "Beta"]  # evicts Beta
    assert len(service._statements) == 2
    assert _names(service, system, by_name["Beta"]) == ["Beta"]  # rebuilt, still right


def test_unhashable_filter_values_are_not_cached_but_work(
        service: RecordService, system: Actor) -> None:
    service.create(system, "account", {"name": "Alpha"})
    service.create(system, "account", {"name": "Beta"})
    query = ListQuery(filters=(Filter("name", Op.IN, ["Alpha", "Beta"]),))
    assert sorted(_names(service, system, query)) == ["Alpha", "Beta"]
    assert len(service._statements) == 0
