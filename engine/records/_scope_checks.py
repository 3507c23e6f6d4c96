"""Writes inside the writer's scope: who may own a written row, what the writer may see.

A write must never produce a row that the writer's own scope could not have
produced. Three things a payload names can break that, and each is checked here
with the same compiled row scopes that filter every read:

- **the owner** (``owner_id`` on create and assign). Rows a user creates are
  theirs. Naming anyone else -- or nobody -- is giving the record away, so it
  needs the ``assign`` grant, and the row as written must lie inside the actor's
  ``assign`` scope (an owner in their department for ``department``, anywhere
  below it for ``subtree``, unowned in a pool they work for ``pool``, anyone for
  ``all``). A row the actor keeps must lie inside their ``create`` (or
  ``assign``) scope. The check runs on the written row, inside the write's
  transaction, so any future column the scopes read (a pool, a stage) is
  covered without another rule;
- **references**: a reference may name only a record the writer can read
  (``reference_errors`` takes the read scope from ``scope_for``); a record they
  cannot see and one that does not exist get the same message;
- **unique keys**: a duplicate names the record holding the key only when the
  writer may read it (``readable_ids``).

Files are the third kind of value a payload names; ``_file_checks`` keeps them
to storage keys the server issued for that record and field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, case, or_, select

from engine.access import AccessPolicy, RowScope
from engine.actor import Actor
from engine.records._plan import EntityPlan

CHUNK = 500

#: Messages shown on ``owner_id`` (translated by the screens; listed in the zh-CN catalog).
NEEDS_ASSIGN = "only you may own the records you create: giving one to someone else " \
               "needs the assign permission"
OUTSIDE_ASSIGN = "you may not give records to this owner"
OUTSIDE_CREATE = "you may not create records you own here"
NO_OWNER = "you may not leave this record without an owner"


def scope_for(policy: AccessPolicy, actor: Actor, registry: Any,
              tables: Callable[[str], Table], action: str) -> Callable[[str], tuple[Table, RowScope]]:
    """``entity name -> (table, the actor's scope for action)``, for reference targets."""
    def scope(entity: str) -> tuple[Table, RowScope]:
        table = tables(entity)
        return table, policy.row_scope(actor, registry.entity(entity), table, action)

    return scope


def readable_ids(conn: Connection, policy: AccessPolicy, actor: Actor, plan: EntityPlan,
                 ids: Iterable[int]) -> set[int]:
    """The ids among ``ids`` the actor may read (live or in the recycle bin)."""
    return _within(conn, plan.table, policy.row_scope(actor, plan.entity, plan.table, "read"),
                   ids)


def _outside(conn: Connection, table: Table, scope: RowScope, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` the scope does not cover (others' ids may come back: callers look
    theirs up). Only the offenders are fetched, usually none."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    if scope.is_empty:
        return set(wanted)
    # CASE, not NOT(...): a scope clause on a NULL owner is NULL, which NOT would keep NULL.
    outside = case((or_(*scope.branches), 0), else_=1) == 1
    if wanted[-1] - wanted[0] < 2 * len(wanted) + CHUNK:
        # A bulk insert's ids are (nearly) contiguous: one range scan, not IN lists.
        return set(conn.execute(select(table.c.id).where(
            table.c.id.between(wanted[0], wanted[-1]), outside)).scalars())
    found: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        found.update(conn.execute(select(table.c.id).where(table.c.id.in_(chunk),
                                                           outside)).scalars())
    return found


def _within(conn: Connection, table: Table, scope: RowScope, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` the scope covers."""
    wanted = sorted(set(ids))
    if not wanted or scope.is_empty:
        return set()
    found: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        found.update(conn.execute(select(table.c.id).where(table.c.id.in_(chunk),
                                                           or_(*scope.branches))).scalars())
    return found


def given_away_errors(policy: AccessPolicy, actor: Actor, plan: EntityPlan, *,
                      rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, str]:
    """The rows given away (to another owner, or to nobody) by an actor who may not assign.

    Known from the prepared rows alone, so a create checks it before the
    ``before_insert`` hooks work on the rows (a pool's distribution): a unit refused
    for it costs them nothing. ``owner_errors`` then checks the written rows.
    """
    if not plan.owned or actor.is_system or policy.allows(actor, plan.entity, "assign"):
        return {}
    return {keys[i]: NEEDS_ASSIGN for i, r in enumerate(rows)
            if r.get("owner_id") != actor.user_id}


def owner_errors(conn: Connection, policy: AccessPolicy, actor: Actor, plan: EntityPlan, *,
                 rows: Sequence[dict[str, Any]], ids: Sequence[int], keys: Sequence[str]
                 ) -> dict[str, str]:
    """Per written row, why its owner is outside what the actor may produce (empty: fine).

    ``rows`` are the written values (``owner_id`` among them), ``ids`` the rows'
    ids, ``keys`` the error key of each row's ``owner_id`` (``owner_id`` or
    ``3.owner_id``). Rows the actor keeps need the create (or assign) scope;
    rows given to anyone else, or to nobody, need the assign grant and scope.
    """
    if not plan.owned or actor.is_system:
        return {}
    errors: dict[str, str] = {}
    me = actor.user_id
    given = [i for i, r in enumerate(rows) if r.get("owner_id") != me]
    # Usually every row is the actor's own (a rep's bulk create): no second walk.
    kept: Sequence[int] = range(len(rows)) if not given else \
        [i for i, r in enumerate(rows) if r.get("owner_id") == me]
    may_assign = policy.allows(actor, plan.entity, "assign")
    assign = policy.row_scope(actor, plan.entity, plan.table, "assign") \
        if may_assign else RowScope.nothing()
    if given and not may_assign:  # a create has refused these already (given_away_errors)
        errors.update((keys[i], NEEDS_ASSIGN) for i in given)
    elif given:
        outside = _outside(conn, plan.table, assign, (ids[i] for i in given))
        for i in given:
            if ids[i] in outside:
                errors[keys[i]] = NO_OWNER if rows[i].get("owner_id") is None \
                    else OUTSIDE_ASSIGN
    if kept:
        create = policy.row_scope(actor, plan.entity, plan.table, "create")
        outside = _outside(conn, plan.table, RowScope(create.branches + assign.branches),
                           ids if not given else (ids[i] for i in kept))
        if outside:
            for i in kept:
                if ids[i] in outside:
                    errors[keys[i]] = OUTSIDE_CREATE
    return errors


def assign_error(conn: Connection, policy: AccessPolicy, actor: Actor, plan: EntityPlan, *,
                 record_id: int, owner_id: int | None) -> str | None:
    """Why the record, now given to ``owner_id``, is outside the actor's assign scope."""
    if actor.is_system:
        return None
    scope = policy.row_scope(actor, plan.entity, plan.table, "assign")
    if record_id not in _outside(conn, plan.table, scope, (record_id,)):
        return None
    return NO_OWNER if owner_id is None else OUTSIDE_ASSIGN
