"""A list request's query and next link kept per query string (ui/api/links.py): the same
``ListQuery`` and the same next link, byte for byte, as parsing and building them on every
request (``params.list_query``, ``app.with_query_param``); refusals are not kept."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from engine.errors import QueryError
from ui.api.app import with_query_param
from ui.api.links import ListRequests
from ui.api.params import list_query

QUERIES = [
    b"", b"limit=50", b"limit=2&after=eyJzIjoibmFtZSJ9", b"after=old&limit=5",
    b"q=a%20b&after=old&filter[name][eq]=&limit=5", b"q=caf%C3%A9+%E5%AE%A2%E6%88%B7",
    b"filter[grade][in]=A,B&filter[grade][in]=C&sort=-name", b"q=&include_deleted=true",
    b"q=%26%3D%3F%23&sort=name", b"limit=50&", b"limit=50&&q=x",
]
SCOPES: list[dict[str, Any]] = [
    {"scheme": "http", "server": ("127.0.0.1", 8000), "headers": [(b"host", b"127.0.0.1:8000")]},
    {"scheme": "https", "server": ["testserver", 443], "headers": [(b"host", b"crm.example.org")]},
    {"scheme": "http", "server": ("10.0.0.1", 80), "headers": []},  # no Host: the server's
    {"scheme": "http", "server": None, "headers": [(b"x", b"y")]},  # neither: a relative URL
    {"scheme": "http", "server": ("h", 80),
     "headers": [(b"host", b"[::1]:8080"), (b"host", b"other")]},
]


def _request(query: bytes, extra: dict[str, Any], path: str = "/api/v1/customer") -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "",
             "query_string": query, **extra}
    return Request(scope)


@pytest.mark.parametrize("extra", SCOPES)
def test_kept_queries_and_links_equal_those_built_per_request(extra: dict[str, Any]) -> None:
    kept = ListRequests()
    for _ in range(2):  # first built, then read back
        for query in QUERIES:
            for path in ("/api/v1/customer", "/crm/api/v1/contact"):
                request = _request(query, extra, path)
                found, link_query = kept.query("customer", request)
                fresh = _request(query, extra, path)
                assert found == list_query("customer", fresh.query_params), query
                for token in ("eyJzIjoidXBkYXRlZF9hdCJ9", "new+/=token", "a b&c"):
                    assert kept.next_url(request, link_query, token) \
                        == with_query_param(fresh, "after", token), (query, path, token)


def test_a_query_that_does_not_parse_is_refused_every_time_and_not_kept() -> None:
    kept = ListRequests()
    for _ in range(2):
        with pytest.raises(QueryError):
            kept.query("customer", _request(b"nonsense=1", SCOPES[0]))
    with pytest.raises(QueryError):
        kept.query("customer", _request(b"limit=1&limit=2", SCOPES[0]))
    assert kept._queries == {}


def test_the_kept_entries_are_bounded() -> None:
    kept = ListRequests(max_kept=3)
    for n in range(10):
        request = _request(f"limit=2&after=t{n}".encode(), SCOPES[0], f"/api/v1/e{n}")
        query, link_query = kept.query("customer", request)
        assert query.after == f"t{n}" and link_query == "limit=2&after="
        assert kept.next_url(request, link_query, "x") \
            == f"http://127.0.0.1:8000/api/v1/e{n}?limit=2&after=x"
        assert len(kept._queries) <= 3 and len(kept._bases) <= 3
