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

On PostgreSQL a subtree's walk does not rebuild its member set on every page
(0.3 ms of a 0.5 ms page for 1,000 users, issue 13): the set is taken from the org
snapshot of the policy state as the scope compiles (``known_members``; compiled scopes
are kept per state), and the walk tests it only while the stamp in the database still is
the snapshot's (``owner_walk``); any other stamp, even inside the transaction that
moved someone, sends the row to the live per-row test. Every change to who sits where
(``org.move_user``, ``create_user``, department moves) bumps the stamp in its own
transaction, so the cached form reads exactly what the live one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import UserDefinedType

from engine.permissions import _tables as t
from engine.permissions import versions
from engine.permissions.org import OrgSnapshot, subtree_condition

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


@dataclass(frozen=True)
class KnownMembers:
    """Who sat in a subtree at one org stamp (PostgreSQL walks only)."""

    stamp: int
    #: The user ids as PostgreSQL array text (``{3,5,8}``): bound as one parameter it is
    #: a constant of the page's (custom) plan, which PostgreSQL hashes for ``= ANY``; a
    #: Python list costs the driver 0.5 ms to adapt for 1,000 ids.
    ids: str
    #: Every user of the database was in it: any owner is one of them.
    everyone: bool
    #: The subtree's path, for the live per-row test.
    path: str


class _IdArray(UserDefinedType[str]):
    """``bigint[]`` bound from its text form (the driver passes it as an untyped literal)."""

    cache_ok = True
    render_bind_cast = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BIGINT[]"


def known_members(org: OrgSnapshot, path: str, owners: frozenset[int]) -> KnownMembers | None:
    """A subtree's ``owners`` (``org.users_under``) as the members cached for its walk.

    Taken as the scope compiles from the policy state's org snapshot, whose compiled
    scopes are kept per state, so compiling reads nothing and a subtree no grant uses
    costs nothing. The snapshot's stamp was read before its users
    (``org.load_org_snapshot``), so a change committed while it loaded moved the stamp
    past it: the walk's stamp check then sends rows to the live test. None (the live
    test alone) for a subtree with no users, or before the first org change was stamped.
    """
    if not org.version or not owners:
        return None
    return KnownMembers(stamp=org.version, ids="{" + ",".join(map(str, sorted(owners))) + "}",
                        everyone=len(owners) == len(org.user_login), path=path)


def _owner_now(table: Table, known: KnownMembers) -> ColumnElement[bool]:
    """The live test, per row: the owner's department now (two primary-key seeks).

    Planned on every page although it runs only after an org change, so it is kept
    to two one-table subqueries (0.04 ms to plan, against 0.14 ms for the join).
    """
    # Correlated by hand: two levels down, auto-correlation would not reach the row.
    department = select(t.user.c.department_id).where(
        t.user.c.id == table.c.owner_id + 0).correlate(table).scalar_subquery()
    return select(subtree_condition(t.department.c.path, known.path)).where(
        t.department.c.id == department).scalar_subquery()


def owner_walk(dialect: str, table: Table, members: Select[Any],
               known: KnownMembers | None = None) -> ColumnElement[bool]:
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

    With ``known`` (PostgreSQL), the members read at one org stamp stand in while that
    stamp holds (see the module's docstring); a set holding every user is any owner
    (``owner_id`` references the users).
    """
    owner = table.c.owner_id
    if dialect == "postgresql" and known is not None:
        holds = select(t.policy_version.c.version).where(
            t.policy_version.c.name == versions.ORG,
            t.policy_version.c.version == known.stamp).exists()
        fast = owner.is_not(None) if known.everyone and _references_users(table) else \
            (owner + 0) == any_(bindparam("owners", known.ids, type_=_IdArray(), unique=True))
        return case((holds, fast), else_=_owner_now(table, known))
    if dialect == "postgresql":
        return (owner + 0).in_(members)
    return members.where(members.selected_columns[0] == owner).exists()


def _references_users(table: Table) -> bool:
    return any(fk.target_fullname == f"{t.user.name}.id" for fk in table.c.owner_id.foreign_keys)
