"""Sharing-rule conditions compiled to SQL by the one condition compiler.

The translation itself is engine/storage/conditions.py, shared with list
filters and pool rules, so a rule and the equal list filter never disagree (a
test runs both over the same rows). What is particular to sharing rules is the
misfit policy: a condition that no longer fits the entity (a field removed
since, a value no longer an option) compiles to ``false()``: a rule that
cannot be evaluated shares nothing rather than everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false

from engine.metadata.conditions import condition_problem
from engine.metadata.model import Condition, Entity
from engine.storage.conditions import ConditionError, escape_like
from engine.storage.conditions import condition_clause as compile_condition

__all__ = ["condition_clause", "conditions_clause", "escape_like"]


def conditions_clause(entity: Entity, columns: Any,
                      where: Sequence[Condition]) -> ColumnElement[bool]:
    """AND of every condition on the table columns ``columns`` (``table.c``)."""
    return and_(*(condition_clause(entity, columns, c) for c in where))


def condition_clause(entity: Entity, columns: Any, cond: Condition) -> ColumnElement[bool]:
    """One condition as a clause; ``false()`` if it does not fit the entity any more."""
    field = next((f for f in entity.fields if f.name == cond.field), None)
    if field is None or cond.field not in columns:
        return false()
    options = [o.value for o in field.options]
    if condition_problem(field.type, cond.op, cond.value, options=options) is not None:
        return false()
    try:
        return compile_condition(cond, field=field, column=columns[cond.field])
    except ConditionError:
        return false()
