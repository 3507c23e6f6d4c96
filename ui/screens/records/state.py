"""The list screen's state, parsed once from the URL.

Everything a list shows lives in its query string, so a list can be bookmarked,
shared, restored by the back button and saved as a view:

- ``q``: search text
- ``f.<field>.<op>``: filters (``op`` as in ``engine.records.query.Op``; ``in``
  may repeat, ``is_empty``/``not_empty`` take ``1``)
- ``sort``: ``field`` or ``-field``
- ``cols``: the columns shown (repeat)
- ``n``: rows per page; ``after``: the keyset token of the next page

Fields, operators and sorts are checked by the records service (400 on a bad
one, before any SQL); columns are checked here against what the actor sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from engine.errors import QueryError
from engine.records.query import DEFAULT_LIMIT, Filter, ListQuery, Op, Sort

FILTER_PREFIX = "f."
DEFAULT_SORT = "-updated_at"
PAGE_SIZES = (25, 50, 100, 200)
#: Parameters a saved view keeps (not the page position).
VIEW_PARAMS = ("q", "sort", "cols", "n")
_LIST_OPS = frozenset({Op.IN.value})
_FLAG_OPS = frozenset({Op.IS_EMPTY.value, Op.NOT_EMPTY.value})


@dataclass(frozen=True)
class FilterParam:
    field: str
    op: str
    values: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{FILTER_PREFIX}{self.field}.{self.op}"

    def to_filter(self) -> Filter:
        if self.op in _LIST_OPS:
            # "f.id.in=1,2" means 1 and 2, as in the API: commas separate the values.
            items = [v.strip() for raw in self.values for v in raw.split(",") if v.strip()]
            return Filter(self.field, self.op, items)
        if self.op in _FLAG_OPS:
            return Filter(self.field, self.op)
        return Filter(self.field, self.op, self.values[0])


@dataclass(frozen=True)
class ListState:
    entity: str
    q: str = ""
    filters: tuple[FilterParam, ...] = ()
    sort: str = DEFAULT_SORT
    cols: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    after: str | None = None

    @classmethod
    def parse(cls, entity: str, params: Iterable[tuple[str, str]]) -> ListState:
        """Read the state from query parameters (multi-valued ``(key, value)`` pairs)."""
        q, sort, after, limit = "", DEFAULT_SORT, None, DEFAULT_LIMIT
        cols: list[str] = []
        grouped: dict[tuple[str, str], list[str]] = {}
        for key, raw in params:
            value = raw.strip()
            if key == "q":
                q = value
            elif key == "sort" and value:
                sort = value
            elif key == "cols" and value:
                cols.extend(c for c in value.split(",") if c)
            elif key == "after" and value:
                after = value
            elif key == "n" and value:
                if not re.fullmatch(r"[0-9]{1,4}", value):
                    raise QueryError(entity, "limit", f"must be one of {PAGE_SIZES}")
                limit = int(value)
            elif key.startswith(FILTER_PREFIX) and value:
                name, _, op = key[len(FILTER_PREFIX):].rpartition(".")
                if not name or not op:
                    raise QueryError(entity, key, "filters look like f.<field>.<operator>")
                grouped.setdefault((name, op), []).append(value)
        filters = tuple(FilterParam(name, op, tuple(values))
                        for (name, op), values in grouped.items())
        return cls(entity=entity, q=q, filters=filters, sort=sort, cols=tuple(dict.fromkeys(cols)),
                   limit=limit, after=after)

    def query(self, *, limit: int | None = None, after: str | None = None) -> ListQuery:
        return ListQuery(filters=tuple(f.to_filter() for f in self.filters), search=self.q,
                         sort=Sort.parse(self.sort), limit=limit or self.limit,
                         after=after if after is not None else self.after)

    def filter_values(self, field: str, op: str) -> tuple[str, ...]:
        return next((f.values for f in self.filters if f.field == field and f.op == op), ())

    def params(self, *, keep_after: bool = False) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        if self.q:
            pairs.append(("q", self.q))
        for f in self.filters:
            pairs.extend((f.key, v) for v in f.values)
        if self.sort != DEFAULT_SORT:
            pairs.append(("sort", self.sort))
        pairs.extend(("cols", c) for c in self.cols)
        if self.limit != DEFAULT_LIMIT:
            pairs.append(("n", str(self.limit)))
        if keep_after and self.after:
            pairs.append(("after", self.after))
        return pairs

    def url(self, **changes: object) -> str:
        """This list's URL with some parts changed (the page position always resets)."""
        state = replace(self, after=None, **changes)  # type: ignore[arg-type]
        query = urlencode(state.params())
        return f"/e/{self.entity}" + (f"?{query}" if query else "")

    def next_url(self, token: str) -> str:
        query = urlencode([*replace(self, after=None).params(), ("after", token)])
        return f"/e/{self.entity}?{query}"

    def saved(self) -> dict[str, list[str]]:
        """The state a saved view keeps: everything but the page position."""
        out: dict[str, list[str]] = {}
        for key, value in self.params():
            out.setdefault(key, []).append(value)
        return out

    @classmethod
    def from_saved(cls, entity: str, saved: dict[str, list[str]]) -> ListState:
        return cls.parse(entity, [(k, v) for k, vs in saved.items() for v in vs
                                  if k in VIEW_PARAMS or k.startswith(FILTER_PREFIX)])

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.filters)


def sorted_by(state: ListState, field: str) -> str:
    """"asc", "desc" or "" for a column header."""
    if state.sort == field:
        return "asc"
    if state.sort == f"-{field}":
        return "desc"
    return ""


def toggled_sort(state: ListState, field: str) -> str:
    return f"-{field}" if state.sort == field else field


def choose_columns(requested: Sequence[str], allowed: Sequence[str], default: Sequence[str],
                   entity: str) -> list[str]:
    if not requested:
        return list(default)
    unknown = [c for c in requested if c not in allowed]
    if unknown:
        raise QueryError(entity, unknown[0], "unknown column")
    return list(requested)
