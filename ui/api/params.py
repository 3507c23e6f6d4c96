"""Query strings and preconditions parsed once into the records service's own types.

List filters are ``filter[<field>][<op>]=<value>`` (``filter[<field>]=<value>``
means ``eq``). ``in`` takes comma-separated values (or the parameter repeated),
``between`` two of them, ``is_empty``/``not_empty`` no value. Field names and
operators are checked by the records service, which refuses unknown or hidden
fields with a ``QueryError`` (400) before any SQL is built; parameters that are
not part of the syntax are refused here the same way, so a typo never silently
widens a query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from engine.errors import QueryError
from engine.records.coerce import CoercionError, read_id
from engine.records.query import DEFAULT_LIMIT, Filter, ListQuery, Op, Sort
from ui.api.problems import Problem

LIST_PARAMS = frozenset({"q", "sort", "limit", "after", "include_deleted", "only_deleted"})
ACTIVITY_PARAMS = frozenset({"limit", "before"})
#: Largest activity page: the service reads at most 200; we ask one more to know if more exist.
MAX_ACTIVITY_LIMIT = 100
DEFAULT_ACTIVITY_LIMIT = 50
_FILTER = re.compile(r"^filter\[([^\[\]]+)\](?:\[([^\[\]]+)\])?$")
_MULTI_OPS = frozenset({Op.IN.value, Op.BETWEEN.value})
_NO_VALUE_OPS = frozenset({Op.IS_EMPTY.value, Op.NOT_EMPTY.value})
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0", ""})


def _flag(entity: str, name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise QueryError(entity, name, "must be true or false")


def _whole(entity: str, name: str, raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise QueryError(entity, name, "must be a positive whole number")
    return int(text)


def _entry_id(entity: str, raw: str) -> int:
    try:
        return read_id(raw)
    except CoercionError:
        raise QueryError(entity, "before", "must be an activity entry id") from None


def _single(entity: str, params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise QueryError(entity, name, "is given more than once")
    return values[0] if values else None


def _filter(entity: str, field: str, op: str, values: Sequence[str]) -> Filter:
    if op in _MULTI_OPS:
        items = [v.strip() for raw in values for v in raw.split(",")]
        return Filter(field, op, items)
    if len(values) > 1:
        raise QueryError(entity, field, f"filter {op} is given more than once")
    if op in _NO_VALUE_OPS:
        if values[0].strip().lower() not in ("", "true", "1"):
            raise QueryError(entity, field, f"{op} takes no value")
        return Filter(field, op)
    return Filter(field, op, values[0])


def list_query(entity: str, params: QueryParams) -> ListQuery:
    """The ``ListQuery`` of ``GET /{entity}``; unknown parameters are a 400."""
    filters: list[Filter] = []
    for name in dict.fromkeys(params.keys()):
        if name in LIST_PARAMS:
            continue
        match = _FILTER.match(name)
        if match is None:
            raise QueryError(entity, name, "unknown parameter (filters are "
                                           "filter[field][op]=value)")
        field, op = match.group(1), match.group(2) or Op.EQ.value
        filters.append(_filter(entity, field, op, params.getlist(name)))
    sort = _single(entity, params, "sort")
    limit = _single(entity, params, "limit")
    return ListQuery(
        filters=tuple(filters),
        search=_single(entity, params, "q") or "",
        sort=Sort.parse(sort) if sort else Sort(),
        limit=_whole(entity, "limit", limit) if limit is not None else DEFAULT_LIMIT,
        after=_single(entity, params, "after") or None,
        include_deleted=_flag(entity, "include_deleted", _single(entity, params,
                                                                 "include_deleted")),
        only_deleted=_flag(entity, "only_deleted", _single(entity, params, "only_deleted")),
    )


@dataclass(frozen=True)
class ActivityQuery:
    limit: int
    before: int | None


def activity_query(entity: str, params: QueryParams) -> ActivityQuery:
    """``limit`` (1..100) and ``before`` (an entry id) of ``GET /{entity}/{id}/activity``."""
    unknown = sorted(set(params.keys()) - ACTIVITY_PARAMS)
    if unknown:
        raise QueryError(entity, unknown[0], "unknown parameter")
    raw_limit = _single(entity, params, "limit")
    limit = DEFAULT_ACTIVITY_LIMIT if raw_limit is None else _whole(entity, "limit", raw_limit)
    if not 1 <= limit <= MAX_ACTIVITY_LIMIT:
        raise QueryError(entity, "limit", f"must be between 1 and {MAX_ACTIVITY_LIMIT}")
    raw_before = _single(entity, params, "before")
    before = None if raw_before is None else _entry_id(entity, raw_before)
    return ActivityQuery(limit, before)


def record_query(entity: str, params: QueryParams) -> bool:
    """``include_deleted`` of ``GET /{entity}/{id}`` (the recycle bin is hidden otherwise)."""
    unknown = sorted(set(params.keys()) - {"include_deleted"})
    if unknown:
        raise QueryError(entity, unknown[0], "unknown parameter")
    return _flag(entity, "include_deleted", _single(entity, params, "include_deleted"))


# --- versions: If-Match or a "version" member ----------------------------------------------

_ETAG = re.compile(r'^"([0-9]{1,18})"$')


def etag(version: int) -> str:
    """The strong entity tag of a record version: ``"7"``."""
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    version: int
    from_header: bool  # If-Match (412 when stale) rather than a body member (409)


def precondition(if_match: str | None, body_version: object, *,
                 required: bool) -> Precondition | None:
    """The version a write is conditional on, from ``If-Match`` or the body's ``version``.

    Both may be given if they agree. A write that needs one and has neither is a
    428 (RFC 6585): updating without saying which version you saw would
    overwrite someone else's change unseen.
    """
    header: int | None = None
    if if_match is not None:
        match = _ETAG.match(if_match.strip())
        if match is None:
            raise Problem(428 if if_match.strip() == "*" else 400,
                          'If-Match must be one ETag of this API, such as "3" '
                          "(weak tags and * do not name a version)", kind="bad-precondition")
        header = int(match.group(1))
    member: int | None = None
    if body_version is not None:
        if not isinstance(body_version, int) or isinstance(body_version, bool) \
                or not 1 <= body_version < 2**63:
            raise Problem(422, "some fields are not valid", kind="validation",
                          errors={"version": "must be the record's version, a whole number"})
        member = body_version
    if header is not None and member is not None and header != member:
        raise Problem(400, f"If-Match names version {header} but the body says {member}",
                      kind="bad-precondition")
    if header is not None:
        return Precondition(header, True)
    if member is not None:
        return Precondition(member, False)
    if required:
        raise Problem(428, "say which version you are changing: send If-Match with the "
                           "record's ETag, or a \"version\" member", kind="precondition-required")
    return None
