"""List state and its translation to SQL: filters, search, sort and keyset pages.

A ``ListQuery`` is one frozen value (the UI parses it from the URL once; saved
views store it). Every field, operator and sort it names is checked against the
entity before any SQL is built; values only ever travel as bound parameters.
Pages are keyset pages: the opaque ``next_token`` carries the last row's sort
value and id, and the sort is always (field, id) so that ties are stable.
NULLs sort last in both directions.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, false, or_, tuple_

from engine.errors import QueryError
from engine.messages import M, message_of
from engine.metadata.conditions import condition_ops
from engine.metadata.model import TEXT_LIKE_TYPES, Condition, Field, FieldType, LocalText
from engine.records._plan import SYSTEM_FIELDS, EntityPlan
from engine.records.coerce import MAX_ID, CoercionError, InputSource, coercer, to_json
from engine.records.record import Record
from engine.storage.conditions import MAX_TEXT_OPERAND, ConditionError, escape_like
from engine.storage.conditions import condition_clause as compile_condition

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
#: Longest search text: a person types a name or a phone number, not a page. SQLite also
#: refuses LIKE patterns past 50,000 bytes, which would otherwise be a server error.
MAX_SEARCH_LENGTH = 200
#: Longest text a filter compares with (eq, contains, starts_with...): the longest text column.
MAX_FILTER_TEXT = MAX_TEXT_OPERAND
#: Longest page token: a sort value (at most a text column's 2,048 characters) and an id.
MAX_TOKEN_LENGTH = 12_000


class Op(str, enum.Enum):
    """Filter operators."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    BETWEEN = "between"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    IS_EMPTY = "is_empty"
    NOT_EMPTY = "not_empty"


_ORDER_OPS = frozenset({Op.LT, Op.LTE, Op.GT, Op.GTE, Op.BETWEEN})
_EQUALITY_OPS = frozenset({Op.EQ, Op.NE, Op.IN})
_EMPTY_OPS = frozenset({Op.IS_EMPTY, Op.NOT_EMPTY})
_TEXT_OPS = frozenset({Op.CONTAINS, Op.STARTS_WITH})


@dataclass(frozen=True)
class Filter:
    """``field op value``; filtering by a reference is ``eq`` on the reference field."""

    field: str
    op: Op | str
    value: Any = None


@dataclass(frozen=True)
class Sort:
    """Sort on one indexed field; ties are broken by id in the same direction."""

    field: str = "updated_at"
    descending: bool = True

    @classmethod
    def parse(cls, text: str) -> Sort:
        """``"-updated_at"`` sorts newest first, ``"name"`` ascending."""
        text = text.strip()
        if text.startswith("-"):
            return cls(text[1:], True)
        return cls(text, False)


@dataclass(frozen=True)
class ListQuery:
    """Everything a list screen, saved view or API call asks for."""

    filters: tuple[Filter, ...] = ()
    search: str = ""
    sort: Sort = field(default_factory=Sort)
    limit: int = DEFAULT_LIMIT
    after: str | None = None          # the previous page's next_token
    include_deleted: bool = False
    only_deleted: bool = False        # the recycle bin


@dataclass(frozen=True)
class Page:
    rows: list[Record]
    next_token: str | None
    has_more: bool


@dataclass(frozen=True)
class ValuesPage:
    """A page for a JSON writer (``RecordService.list_json``): each record's values,
    some of them ``orjson.Fragment`` s, so only for orjson to write."""

    rows: list[dict[str, Any]]
    next_token: str | None


def _field(plan: EntityPlan, name: str, hidden: frozenset[str], what: str) -> Field:
    found = plan.lookup(name) if isinstance(name, str) else None
    if found is None or name in hidden:
        raise QueryError(plan.name, str(name), M("unknown field for %(what)s", what=what))
    return found


def _amount_field(f: Field) -> Field:
    return Field(name=f.name, type=FieldType.DECIMAL, label=LocalText())


def _value(plan: EntityPlan, f: Field, raw: Any) -> Any:
    """A filter operand, coerced like a payload value of the field."""
    if f.type is FieldType.MONEY:
        if isinstance(raw, dict):
            raw = raw.get("amount")
        f = _amount_field(f)
    if f.type is FieldType.MULTI_SELECT:
        f = Field(name=f.name, type=FieldType.SELECT, label=LocalText(), options=f.options)
    if isinstance(raw, str) and len(raw) > MAX_FILTER_TEXT:
        raise QueryError(plan.name, f.name, M("the value is longer than %(max_filter_text)s "
                                              "characters",
                                              max_filter_text=MAX_FILTER_TEXT))
    source = InputSource.STRING if isinstance(raw, str) else InputSource.JSON
    fp = plan.fields.get(f.name)
    try:
        if fp is not None and fp.field is f:
            value = fp.coerce(raw, source)
        else:
            value = coercer(f, source)(raw)
    except CoercionError as exc:
        raise QueryError(plan.name, f.name, message_of(exc)) from None
    if value is None:
        raise QueryError(plan.name, f.name, M("needs a value (use is_empty for empty)"))
    return value


def _allowed_ops(f: Field) -> frozenset[Op]:
    return frozenset(Op(o) for o in condition_ops(f.type))


def filter_clause(plan: EntityPlan, flt: Filter, hidden: frozenset[str]) -> ColumnElement[bool]:
    """One filter as a SQL clause; refuses unknown fields, operators and bad values.

    The translation is the one condition compiler's (engine/storage/conditions.py);
    a list filter reads its operand as a form field would and refuses misfits.
    """
    f = _field(plan, flt.field, hidden, "a filter")
    op = flt.op.value if isinstance(flt.op, Op) else flt.op
    if not isinstance(op, str):
        raise QueryError(plan.name, f.name, M("unknown operator %(op)s", op=repr(op)))
    try:
        return compile_condition(Condition(field=f.name, op=op, value=flt.value), field=f,
                                 column=plan.table.c[f.name],
                                 operand=lambda fld, raw: _value(plan, fld, raw))
    except ConditionError as exc:
        raise QueryError(plan.name, f.name, exc.message) from None


def search_clause(plan: EntityPlan, text: str, hidden: frozenset[str]) -> ColumnElement[bool]:
    """Case-insensitive substring search over the entity's visible text search fields."""
    names = [n for n in plan.entity.search_fields if n not in hidden and n in plan.fields
             and plan.fields[n].field.type in TEXT_LIKE_TYPES]
    if not names:
        raise QueryError(plan.name, "search", M("this list has no searchable fields"))
    if len(text) > MAX_SEARCH_LENGTH:
        raise QueryError(plan.name, "search", M("is longer than %(max_search_length)s characters",
                                                max_search_length=MAX_SEARCH_LENGTH))
    pattern = f"%{escape_like(text.strip())}%"
    return or_(*(plan.table.c[n].ilike(pattern, escape="\\") for n in names))


def deleted_clause(plan: EntityPlan, query: ListQuery) -> ColumnElement[bool] | None:
    """Hide the recycle bin unless asked; ``only_deleted`` lists it."""
    if not plan.soft_delete:
        if query.only_deleted:
            raise QueryError(plan.name, "only_deleted", M("this entity has no recycle bin"))
        return None
    col = plan.table.c.deleted_at
    if query.only_deleted:
        return col.is_not(None)
    if query.include_deleted:
        return None
    return col.is_(None)


def where_clauses(plan: EntityPlan, query: ListQuery,
                  hidden: frozenset[str]) -> list[ColumnElement[bool]]:
    """Filters, search and the recycle-bin clause of a list or count (no row scope)."""
    clauses = [filter_clause(plan, f, hidden) for f in query.filters]
    if query.search and query.search.strip():
        clauses.append(search_clause(plan, query.search, hidden))
    deleted = deleted_clause(plan, query)
    if deleted is not None:
        clauses.append(deleted)
    return clauses


# --- sort and keyset ----------------------------------------------------------

@dataclass(frozen=True)
class SortPlan:
    """A checked sort: the column, whether it can be NULL, and how to encode its values."""

    name: str
    descending: bool
    nullable: bool
    key_field: Field

    def order_by(self, columns: Any) -> list[Any]:
        col, id_col = columns[self.name], columns["id"]
        if self.descending:
            main = col.desc().nulls_last() if self.nullable else col.desc()
            return [main, id_col.desc()]
        main = col.asc().nulls_last() if self.nullable else col.asc()
        return [main, id_col.asc()]

    def key_of(self, record: Mapping[str, Any]) -> Any:
        value = record[self.name]
        if isinstance(value, dict) and "amount" in value:
            return value["amount"]
        return value

    def after(self, columns: Any, token: Any) -> ColumnElement[bool]:
        """Rows strictly after (value, id) in this order, NULLs last."""
        value, last_id = token
        col, id_col = columns[self.name], columns["id"]
        def beyond(a: Any, b: Any) -> ColumnElement[bool]:
            return (a < b) if self.descending else (a > b)  # type: ignore[no-any-return]

        if value is None:
            return and_(col.is_(None), beyond(id_col, last_id))
        # A row-value comparison lets both databases seek the (field, id) index.
        later = beyond(tuple_(col, id_col), tuple_(value, last_id))
        return or_(later, col.is_(None)) if self.nullable else later


def sort_plan(plan: EntityPlan, sort: Sort, hidden: frozenset[str]) -> SortPlan:
    f = _field(plan, sort.field, hidden, "sorting")
    if sort.field not in plan.sortable:
        raise QueryError(plan.name, sort.field, M("cannot sort on a field without an index"))
    nullable = bool(plan.table.c[sort.field].nullable) and sort.field != "id"
    key = _amount_field(f) if f.type is FieldType.MONEY else f
    return SortPlan(sort.field, bool(sort.descending), nullable, key)


def encode_token(sort: SortPlan, record: Mapping[str, Any]) -> str:
    payload = {"s": sort.name, "d": int(sort.descending),
               "v": to_json(sort.key_field, sort.key_of(record)), "i": int(record["id"])}
    # orjson writes the same compact UTF-8 JSON as json.dumps(separators=(",", ":"),
    # ensure_ascii=False), at a fraction of the cost: every list page with a next one
    # makes a token (issue 13).
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_token(plan: EntityPlan, sort: SortPlan, token: str) -> tuple[Any, int]:
    """The (sort value, id) a page token carries; refuses tokens of another sort."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise QueryError(plan.name, "", M("the page token is not valid"))
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        name, desc, value, last_id = payload["s"], payload["d"], payload["v"], payload["i"]
    except (binascii.Error, ValueError, TypeError, KeyError, RecursionError):
        raise QueryError(plan.name, "", M("the page token is not valid")) from None
    if name != sort.name or bool(desc) != sort.descending:
        raise QueryError(plan.name, "", M("the page token belongs to another sort order"))
    if not isinstance(last_id, int) or isinstance(last_id, bool) or not 0 < last_id <= MAX_ID:
        raise QueryError(plan.name, "", M("the page token is not valid"))
    if not isinstance(value, (str, int, float, bool, type(None))):
        raise QueryError(plan.name, "", M("the page token is not valid"))
    try:
        key = None if value is None else coercer(sort.key_field)(value)
    except CoercionError:
        raise QueryError(plan.name, "", M("the page token is not valid")) from None
    return key, last_id


def check_limit(plan: EntityPlan, limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(plan.name, "limit", M("must be between 1 and %(max_limit)s", max_limit=MAX_LIMIT))
    return limit


def no_rows() -> ColumnElement[bool]:
    return false()


def as_query(filters: ListQuery | Sequence[Filter]) -> ListQuery:
    return filters if isinstance(filters, ListQuery) else ListQuery(filters=tuple(filters))


__all__ = ["SYSTEM_FIELDS", "Filter", "ListQuery", "Op", "Page", "Sort", "escape_like"]
