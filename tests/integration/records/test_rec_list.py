"""Lists: every filter operator, search, sort and keyset pages that visit each row once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from engine.actor import Actor
from engine.records import Filter, ListQuery, RecordService, Sort

ROWS: list[dict[str, Any]] = [
    {"name": "Alpha 100%", "employees": 10, "founded": "2020-01-01", "tier": "gold",
     "tags": ["a", "b"], "active": True, "revenue": "100", "location": "1,2",
     "next_call": "2026-01-01T08:00:00Z", "city": "Wuhan", "notes": "likes snake_case"},
    {"name": "Beta_1", "employees": 20, "founded": "2021-06-15", "tier": "silver",
     "tags": ["b"], "active": False, "revenue": "250.50", "city": "",
     "next_call": "2026-03-01T08:00:00Z"},
    {"name": "Gamma", "employees": None, "founded": None, "tier": None, "tags": None,
     "active": None, "revenue": None, "notes": "back\\slash"},
    {"name": "delta", "employees": 20, "founded": "2019-12-31", "tier": "gold",
     "tags": ["c"], "active": True, "revenue": "99.99", "city": "Xian"},
    {"name": "Epsilon", "employees": 5, "founded": None, "tier": "bronze",
     "tags": ["a"], "active": True, "email": "e@example.com"},
]


@pytest.fixture
def ids(service: RecordService, system: Actor) -> dict[str, int]:
    created = service.bulk_create(system, "account", ROWS)
    parent = created[0]
    service.update(system, "account", created[1], {"parent": parent}, version=1)
    service.update(system, "account", created[3], {"parent": parent}, version=1)
    return {row["name"]: rid for row, rid in zip(ROWS, created)}


def names(service: RecordService, system: Actor, *filters: Filter, search: str = "") -> set[str]:
    page = service.list(system, "account", ListQuery(filters=filters, search=search))
    return {r["name"] for r in page.rows}


CASES: list[tuple[Filter, set[str]]] = [
    (Filter("employees", "eq", 20), {"Beta_1", "delta"}),
    (Filter("employees", "eq", "20"), {"Beta_1", "delta"}),
    (Filter("employees", "ne", 20), {"Alpha 100%", "Gamma", "Epsilon"}),
    (Filter("employees", "in", [5, 10]), {"Alpha 100%", "Epsilon"}),
    (Filter("employees", "lt", 10), {"Epsilon"}),
    (Filter("employees", "lte", 10), {"Alpha 100%", "Epsilon"}),
    (Filter("employees", "gt", 10), {"Beta_1", "delta"}),
    (Filter("employees", "gte", 20), {"Beta_1", "delta"}),
    (Filter("employees", "between", [6, 20]), {"Alpha 100%", "Beta_1", "delta"}),
    (Filter("employees", "is_empty"), {"Gamma"}),
    (Filter("employees", "not_empty"), {"Alpha 100%", "Beta_1", "delta", "Epsilon"}),
    (Filter("name", "contains", "ALPHA"), {"Alpha 100%"}),
    (Filter("name", "contains", "%"), {"Alpha 100%"}),
    (Filter("name", "contains", "_"), {"Beta_1"}),
    (Filter("name", "starts_with", "del"), {"delta"}),
    (Filter("name", "starts_with", "_"), set()),
    (Filter("city", "is_empty"), {"Beta_1", "Gamma", "Epsilon"}),
    (Filter("city", "not_empty"), {"Alpha 100%", "delta"}),
    (Filter("founded", "between", ["2020-01-01", "2021-12-31"]), {"Alpha 100%", "Beta_1"}),
    (Filter("founded", "lt", date(2020, 1, 1)), {"delta"}),
    (Filter("next_call", "gt", datetime(2026, 2, 1, tzinfo=UTC)), {"Beta_1"}),
    (Filter("next_call", "gte", "2026-01-01 08:00"), {"Alpha 100%", "Beta_1"}),
    (Filter("tier", "eq", "gold"), {"Alpha 100%", "delta"}),
    (Filter("tier", "in", ["silver", "bronze"]), {"Beta_1", "Epsilon"}),
    (Filter("tier", "ne", "gold"), {"Beta_1", "Gamma", "Epsilon"}),
    (Filter("tags", "contains", "a"), {"Alpha 100%", "Epsilon"}),
    (Filter("tags", "is_empty"), {"Gamma"}),
    (Filter("tags", "not_empty"), {"Alpha 100%", "Beta_1", "delta", "Epsilon"}),
    (Filter("location", "not_empty"), {"Alpha 100%"}),
    (Filter("address", "is_empty"), {r["name"] for r in ROWS}),
    (Filter("active", "eq", True), {"Alpha 100%", "delta", "Epsilon"}),
    (Filter("active", "eq", "否"), {"Beta_1"}),
    (Filter("revenue", "gt", "99.99"), {"Alpha 100%", "Beta_1"}),
    (Filter("revenue", "lte", {"amount": "99.99", "currency": "CNY"}), {"delta"}),
    (Filter("email", "eq", "e@example.com"), {"Epsilon"}),
]


def test_filter_ops(service: RecordService, system: Actor, ids: dict[str, int]) -> None:
    # One database for the whole table (a fresh one per case costs more than the cases).
    wrong = {f"{flt.field} {flt.op} {flt.value!r}": (got, expected)
             for flt, expected in CASES
             if (got := names(service, system, flt)) != expected}
    assert wrong == {}


def test_filter_by_reference_and_system_columns(service: RecordService, system: Actor,
                                                ids: dict[str, int]) -> None:
    parent = ids["Alpha 100%"]
    assert names(service, system, Filter("parent", "eq", parent)) == {"Beta_1", "delta"}
    assert names(service, system, Filter("parent", "eq", str(parent))) == {"Beta_1", "delta"}
    assert names(service, system, Filter("id", "in", [parent, ids["Gamma"]])) == \
        {"Alpha 100%", "Gamma"}
    assert names(service, system, Filter("parent", "is_empty"), Filter("tier", "eq", "gold")) \
        == {"Alpha 100%"}


SEARCHES: list[tuple[str, set[str]]] = [
    ("100%", {"Alpha 100%"}),
    ("%", {"Alpha 100%"}),
    ("_", {"Beta_1", "Alpha 100%"}),  # Alpha's notes say snake_case
    ("ta_1", {"Beta_1"}),
    ("a_1", {"Beta_1"}),
    ("\\", {"Gamma"}),
    ("EXAMPLE.COM", {"Epsilon"}),
    ("zzz", set()),
]


def test_search_escapes_like_wildcards(service: RecordService, system: Actor,
                                       ids: dict[str, int]) -> None:
    wrong = {text: (got, expected) for text, expected in SEARCHES
             if (got := names(service, system, search=text)) != expected}
    assert wrong == {}


def test_count_caps(service: RecordService, system: Actor, ids: dict[str, int]) -> None:
    assert service.count(system, "account") == 5
    assert service.count(system, "account", cap=3) == 3
    assert service.count(system, "account", [Filter("tier", "eq", "gold")]) == 2
    assert service.count(system, "account", ListQuery(search="alpha")) == 1


def _expected_order(rows: list[dict[str, Any]], key: str, descending: bool) -> list[int]:
    present = [r for r in rows if r[key] is not None]
    empty = [r for r in rows if r[key] is None]
    present.sort(key=lambda r: (r[key], r["id"]), reverse=descending)
    empty.sort(key=lambda r: r["id"], reverse=descending)
    return [r["id"] for r in present + empty]


def test_keyset_pages_visit_every_row_once(service: RecordService, system: Actor) -> None:
    # Many ties and NULLs: the hard case for keyset predicates.
    rows = [{"name": f"n{i % 4}", "employees": None if i % 3 == 0 else i % 5,
             "founded": None if i % 4 == 1 else f"2020-01-0{1 + i % 3}"} for i in range(23)]
    service.bulk_create(system, "account", rows)
    stored = [dict(r) for r in service.list(system, "account", ListQuery(limit=200)).rows]
    for sort_field in ("employees", "founded", "name", "id", "updated_at", "parent"):
        for descending in (False, True):
            _walk(service, system, stored, sort_field, descending)


def _walk(service: RecordService, system: Actor, stored: list[dict[str, Any]],
          sort_field: str, descending: bool) -> None:
    expected = _expected_order(stored, sort_field, descending)
    for limit in (1, 4, 7):
        seen: list[int] = []
        query = ListQuery(sort=Sort(sort_field, descending), limit=limit)
        while True:
            page = service.list(system, "account", query)
            assert len(page.rows) <= limit
            seen += [r.id for r in page.rows]
            if not page.has_more:
                assert page.next_token is None
                break
            query = ListQuery(sort=Sort(sort_field, descending), limit=limit,
                              after=page.next_token)
        assert seen == expected, (sort_field, descending, limit)


def test_filters_hold_across_pages(service: RecordService, system: Actor) -> None:
    service.bulk_create(system, "account", [{"name": f"r{i}", "employees": i % 3}
                                            for i in range(30)])
    flt = (Filter("employees", "eq", 1),)
    query = ListQuery(filters=flt, sort=Sort("name", False), limit=4)
    got = []
    while True:
        page = service.list(system, "account", query)
        got += [r["name"] for r in page.rows]
        if not page.has_more:
            break
        query = ListQuery(filters=flt, sort=Sort("name", False), limit=4,
                          after=page.next_token)
    assert got == sorted(f"r{i}" for i in range(30) if i % 3 == 1)


def test_sort_plans_kept_per_hidden_fields(db_engine: Any) -> None:
    """A sort is planned once per entity, field, direction and hidden fields: each reader
    keeps their own answer (a hidden field is unknown to a rep, an unindexed one is
    refused to a supervisor who sees it), every time; both directions page as asked."""
    from engine.errors import QueryError
    from tests.integration.permissions._crm_org import seed_crm

    crm = seed_crm(db_engine)
    records = crm.records
    rep, supervisor = crm.actor("r1"), crm.actor("sn")
    by_revenue = ListQuery(sort=Sort("annual_revenue", True), limit=2)
    for _ in range(2):
        with pytest.raises(QueryError, match="unknown field"):
            records.list(rep, "customer", by_revenue)
        with pytest.raises(QueryError, match="without an index"):
            records.list(supervisor, "customer", by_revenue)
        for reader in (rep, supervisor):
            names = {descending: [r["name"] for r in records.list(
                reader, "customer", ListQuery(sort=Sort("name", descending), limit=50)).rows]
                for descending in (False, True)}
            assert len(names[False]) > 1
            assert names[False] == sorted(names[False], key=lambda n: (n is None, n))
            assert names[True] == list(reversed(names[False]))
