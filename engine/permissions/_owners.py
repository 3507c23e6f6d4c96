""""Owned by someone in these departments", written the way each planner finds a page fast.

The department and subtree scopes are the ones where the planners differ most
(bench/bench_permissions.py, 1M rows; EXPLAIN in the comments below). Every
form also checks membership *as the query runs* (a subquery on the users), so
an org snapshot older than a move can only show fewer rows, never more: a user
moved out of a department is out of its scope at once in every process.

SQLite reads ``owner_id IN (a, b, c) ORDER BY updated_at LIMIT n`` per owner
through the (owner_id, updated_at, id) index: a literal list of up to
``MAX_OWNER_LIST`` owners (0.27 ms for 11 owners, 0.58 ms for 31). Hidden in a
subquery, the same owners made it walk the whole recent index (60 ms for a team
of three at 20k rows).

PostgreSQL cannot merge per-value index scans: an IN list fetches and sorts every
row of every owner (7.9 ms for 11 owners). Up to ``MAX_OWNER_ARMS`` owners each
becomes its own UNION arm, an index scan that stops after a page (2.9 ms); past
that, walking the recent index and keeping the owners' rows wins (4.5 ms for
31 owners, 1.6 ms for 332), with the members fetched once as an array
(``= ANY(ARRAY(...))``, an InitPlan) rather than as a semi-join (8.1 ms for 31).

Many owners hold much of the table, and both planners find a page fastest by
walking the recent index: ``owner_id + 0`` hides the owner index from them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, Table, and_, any_, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY

#: SQLite: owners listed literally up to this many, then the recent-index walk.
MAX_OWNER_LIST = 100
#: PostgreSQL: one UNION arm per owner up to this many, then the recent-index walk.
MAX_OWNER_ARMS = 16


def owner_arms(dialect: str, table: Table, owners: frozenset[int],
               members: Select[Any]) -> tuple[ColumnElement[bool], ...]:
    """The UNION arms for "owner_id is one of the department's users".

    ``owners`` are the users per the org snapshot (what the planner is told);
    ``members`` selects who is there now (what decides). No owner: no arm.
    """
    if not owners:
        return ()
    owner = table.c.owner_id
    listed = sorted(owners)
    if dialect == "postgresql":
        ids = members.subquery()
        current = any_(cast(select(func.array_agg(ids.c[0])).scalar_subquery(),
                            ARRAY(BigInteger)))
        if len(listed) <= MAX_OWNER_ARMS:
            return tuple(and_(owner == uid, owner == current) for uid in listed)
        return ((owner + 0) == current,)
    if len(listed) <= MAX_OWNER_LIST:
        return (and_(owner.in_(listed), owner.in_(members)),)
    return ((owner + 0).in_(members),)


def owner_count(dialect: str, table: Table, owners: frozenset[int],
                members: Select[Any]) -> ColumnElement[bool] | None:
    """"The owner is one of the department's users now", for a count (None: the arms).

    A count keeps no order, so PostgreSQL may join the owners to the members: written
    ``owner_id IN (members)`` it becomes a semi-join whose member side the planner
    sees and estimates (67 users for a region manager), so a capped kanban head
    (``LIMIT cap+1``) either seeks ``ix_opportunity_owner_stage`` once per member in a
    nested loop that stops at the cap, or hashes the members and stops a walk of the
    stage there. As ``owner_id = ANY(ARRAY(members))`` (the list's InitPlan) the
    planner guessed 10 owners for an array it cannot see when planning and chose a
    bitmap scan of that index, which reads every matching entry before the LIMIT
    applies (54k entries for one stage at 1M rows): the region manager's seven capped
    heads took 151 ms against 58 ms joined (issue 13, bench/RESULTS.md), and the
    uncapped-list count compared each row with every member (32 against 8 ms).
    SQLite's arms seek already; a department of up to ``MAX_OWNER_ARMS`` owners
    keeps its per-owner arms, each a short index range (joined, PostgreSQL hashed
    a team's six members against a walk of the whole stage: 93 ms for one head).
    """
    if dialect != "postgresql" or len(owners) <= MAX_OWNER_ARMS:
        return None
    return table.c.owner_id.in_(members)


def owner_walk(dialect: str, table: Table, members: Select[Any]) -> ColumnElement[bool]:
    """"The owner is one of the department's users now", with the owner index hidden.

    The form for a scope OR-ed into one walk of the list's sort index
    (``scopes.WALK_MIN_SHARE``): a term either planner could seek through an
    index would tempt it into an index OR and a sort of every visible row. The
    walk reads about a page / the visible share of rows, so the membership test
    is per row: SQLite checks each owner with a correlated EXISTS (two primary-key
    seeks) instead of building the member list on every execution (0.12 against
    0.31 ms for the company's 1,000 users at 200k rows, against 0.11 ms unscoped);
    PostgreSQL hashes the members once (an IN inside an OR is a hashed SubPlan),
    where ``= ANY(array)`` compares each row with every member.
    """
    owner = table.c.owner_id
    if dialect == "postgresql":
        return (owner + 0).in_(members)
    return members.where(members.selected_columns[0] == owner).exists()
