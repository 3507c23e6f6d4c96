"""A list request's query and next link, parsed and built once per query string.

Every ``GET /{entity}`` page parsed its query string into a ``ListQuery`` and, when
a next page exists, built its next link from Starlette's ``URL`` of the request and
the parsed parameters: together ~8 % of a rep's 50-record list page on SQLite, where
the whole request costs about twice its statement (issue 13). Clients repeat the
same few query strings (a first page, a filter they page through), so both are kept
here, keyed by what they are computed from:

- ``(entity, query string)`` -> the ``ListQuery`` (``params.list_query``, which only
  parses: fields are checked by the records service on every call) and the next
  link's query without its ``after`` (``with_query_param``'s order: the others in
  their order, blanks kept, ``after`` last);
- ``(scheme, server, path, Host header)`` -> the URL up to its query, as
  ``Request.url`` writes it.

A query string that does not parse is not kept (it raises on every request, as
before). Each map is emptied when full, so a client sending ever new query strings
(each page's ``after`` is new) costs a parse per request, as before, and bounded memory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus, urlencode

from starlette.requests import Request

from engine.records.query import ListQuery
from ui.api.params import list_query

#: Entries per map before it is emptied.
MAX_KEPT = 512
_AFTER = "after"


class ListRequests:
    """The kept queries and URL bases (one per process; safe across threads: a lost
    insert only means a parse more)."""

    def __init__(self, *, max_kept: int = MAX_KEPT) -> None:
        self.max_kept = max_kept
        self._queries: dict[tuple[str, bytes], tuple[ListQuery, str]] = {}
        self._bases: dict[tuple[Any, ...], str] = {}

    def query(self, entity: str, request: Request) -> tuple[ListQuery, str]:
        """``list_query`` of the request, and its next link's query up to the token."""
        key = (entity, request.scope["query_string"])
        found = self._queries.get(key)
        if found is None:
            params = request.query_params
            query = list_query(entity, params)
            rest = urlencode([(k, v) for k, v in params.multi_items() if k != _AFTER])
            found = (query, f"{rest}&{_AFTER}=" if rest else f"{_AFTER}=")
            if len(self._queries) >= self.max_kept:
                self._queries.clear()
            self._queries[key] = found
        return found

    def next_url(self, request: Request, link_query: str, token: str) -> str:
        """``with_query_param(request, "after", token)``, from the kept parts."""
        scope = request.scope
        host = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        server = scope.get("server")  # (host, port), a list under some servers
        key = (scope.get("scheme"), None if server is None else tuple(server),
               scope["path"], host)
        base = self._bases.get(key)
        if base is None:
            base = str(request.url).partition("?")[0]
            if len(self._bases) >= self.max_kept:
                self._bases.clear()
            self._bases[key] = base
        return f"{base}?{link_query}{quote_plus(token)}"
