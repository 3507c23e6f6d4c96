"""AND/OR condition trees of the one condition compiler, on SQLite and PostgreSQL.

A group must select exactly what set algebra over its items' list filters
selects (intersection for all, union for any), for every shape of nesting;
misfits raise ``ConditionError`` naming the field.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.metadata.conditions import parse_tree
from engine.metadata.model import Condition, ConditionGroup
from engine.records import Filter, RecordService
from engine.records.query import filter_clause
from engine.storage.conditions import ConditionError, tree_clause
from tests.integration.permissions.conftest import make_tables
from tests.integration.permissions.test_perm_conditions import DOCUMENT, ROWS

TREES: list[dict[str, Any]] = [
    {"all": [{"field": "kind", "op": "eq", "value": "a"}, {"field": "qty", "op": "is_empty"}]},
    {"any": [{"field": "kind", "op": "eq", "value": "c"}, {"field": "tags", "op": "contains",
                                                           "value": "vip"}]},
    {"any": [{"field": "name", "op": "contains", "value": "alpha"},
             {"all": [{"field": "qty", "op": "gte", "value": 5},
                      {"field": "active", "op": "ne", "value": True}]}]},
    {"all": [{"any": [{"field": "kind", "op": "in", "value": ["a", "b"]},
                      {"field": "price", "op": "gt", "value": 9}]},
             {"field": "name", "op": "not_empty"}]},
    {"field": "day", "op": "between", "value": ["2026-01-01", "2026-06-30"]},
]


@pytest.fixture
def service(db_engine: Engine) -> RecordService:
    service = RecordService(engine=db_engine, schema=make_tables(db_engine, DOCUMENT))
    service.bulk_create(Actor.system(), "item", ROWS)
    return service


def _by_filters(service: RecordService, node: Any, conn: Any) -> set[int]:
    plan = service.plan("item")
    every = set(conn.execute(select(plan.table.c.id)).scalars())
    if isinstance(node, ConditionGroup):
        parts = [_by_filters(service, n, conn) for n in node.items]
        return set.union(*parts) if node.any else set.intersection(every, *parts)
    assert isinstance(node, Condition)
    return set(conn.execute(select(plan.table.c.id).where(
        filter_clause(plan, Filter(node.field, node.op, node.value), frozenset()))).scalars())


@pytest.mark.parametrize("doc", TREES, ids=[str(i) for i in range(len(TREES))])
def test_groups_select_the_set_algebra_of_their_filters(service: RecordService,
                                                        db_engine: Engine,
                                                        doc: dict[str, Any]) -> None:
    plan = service.plan("item")
    fields = {f.name: f for f in plan.entity.fields}
    tree = parse_tree(doc)
    with db_engine.connect() as conn:
        compiled = set(conn.execute(select(plan.table.c.id).where(
            tree_clause(tree, fields=fields, columns=plan.table.c))).scalars())
        expected = _by_filters(service, tree, conn)
    assert compiled == expected
    assert 0 < len(compiled) < len(ROWS) or doc is TREES[-1]


def test_misfits_name_the_field(service: RecordService) -> None:
    plan = service.plan("item")
    fields = {f.name: f for f in plan.entity.fields}
    cases = [({"field": "nope", "op": "eq", "value": 1}, "nope", "unknown field"),
             ({"any": [{"field": "qty", "op": "contains", "value": "x"}]}, "qty",
              "does not apply"),
             ({"all": [{"field": "qty", "op": "in", "value": []}]}, "qty", "non-empty list")]
    for doc, name, fragment in cases:
        with pytest.raises(ConditionError) as err:
            tree_clause(parse_tree(doc), fields=fields, columns=plan.table.c)
        assert err.value.field == name and fragment in err.value.message
