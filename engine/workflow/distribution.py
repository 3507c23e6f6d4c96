"""Distribution: records created without an owner find one, by the pool's declared policy.

``place_new`` is a ``before_insert`` write hook (registered by
engine/workflow/automation.py). For each record created without an owner in a
pooled entity it takes the entity's pool (the first by name when several
exist) and, unless the pool's distribution mode is ``none``:

- works out the target: the ``team`` (round_robin; the pool's members when
  none is given), the target of the record's value of ``field`` (by_field),
  or the target of the territory polygon its geo point lies in (territory);
- picks the next user of the target in turn (a persistent cursor per pool
  and target in ``tp_distribution_cursor``), skipping inactive users and users
  already holding ``max_held`` records of the pool;
- gives the record to that user through the records service (one conditional
  UPDATE, an "assign" entry in the feed and the ledger with the reason).

A record that cannot be placed (no target for its value, outside every
territory, nobody with room) enters the pool and the reason is kept in
``tp_unplaced`` for the pool screens. Everything happens in the creating
transaction: the record is never seen unowned and out of its pool. The choice is
made before the insert, so a record that stays in the pool is written once, with
its pool (a bulk create of thousands of records paid a second ``UPDATE`` of each).

Concurrency: the cursor row is read FOR UPDATE on PostgreSQL (SQLite writers
are serialised by BEGIN IMMEDIATE), so two records created at once go to two
different users in turn.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Select,
    Table,
    delete,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.metadata.model import Pool, Registry, Target, Territory
from engine.permissions import _tables as t
from engine.permissions.org import subtree_condition
from engine.records._bulk import DriverInsert
from engine.records.hooks import AfterInsert
from engine.storage.rule_tables import CURSOR_TABLE, UNPLACED_TABLE
from engine.workflow import limits
from engine.workflow.rules import default_pool
from engine.workflow.territory import locator

if TYPE_CHECKING:
    from engine.records.transaction import Transaction



def _upsert(conn: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str],
            update_cols: Sequence[str]) -> None:
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = make(table).values(**values)
    if update_cols:
        conn.execute(stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update_cols}))
    else:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=list(keys)))


def target_of(pool: Pool, values: Mapping[str, Any]) -> tuple[Target | None, str]:
    """The target a record with these values goes to under ``pool``, or None and why."""
    dist = pool.distribution
    if dist.mode == "round_robin":
        return dist.team, "round robin" + (f" in {dist.team.kind} {dist.team.key}"
                                          if dist.team else " among the pool's members")
    if dist.mode == "by_field":
        value = values.get(dist.field or "")
        target = dict(dist.targets).get(value) if value is not None else None
        if target is None:
            return None, f"no distribution target for {dist.field}={value!r}"
        # The reason names the target, not the value: records of one target share it,
        # so a batch goes to each user in one statement.
        return target, f"by {dist.field} to {target.kind} {target.key}"
    if dist.mode == "territory":
        found = territory_holding(dist.field or "", values, locator(dist.territories))
        if isinstance(found, str):
            return None, found
        return found.target, f"territory {found.name} -> {found.target.kind} {found.target.key}"
    return None, "the pool does not distribute"


def territory_holding(field: str, values: Mapping[str, Any],
                      locate: Callable[[float, float], Territory | None]) -> Territory | str:
    """The territory that holds the record's ``field`` point, or why none does."""
    point = values.get(field)
    # A stored geo point is a plain dict: no ABC check for each of a bulk's records.
    if point.__class__ is dict or isinstance(point, Mapping):
        lat, lng = point.get("lat"), point.get("lng")
    else:
        lat = lng = None
    if lat is None or lng is None:
        return f"no {field} to locate the record in a territory"
    found = locate(float(lat), float(lng))
    if found is None:
        return f"{field} ({lat}, {lng}) lies outside every territory"
    return found


def target_users(conn: Connection, pool: Pool, target: Target | None
                 ) -> tuple[list[int], str | None]:
    """Active candidate users of a target (sorted by id), or none and why."""
    user = t.user
    query = select(user.c.id).where(user.c.active.is_(True)).order_by(user.c.id)
    if target is None:  # the pool's members
        members = pool.members
        clauses = []
        if members.users:
            clauses.append(user.c.login.in_(members.users))
        if members.roles:
            clauses.append(user.c.id.in_(select(t.role_binding.c.user_id)
                                         .where(t.role_binding.c.role.in_(members.roles))))
        for code in members.departments:
            path = conn.execute(select(t.department.c.path)
                                .where(t.department.c.code == code)).scalar_one_or_none()
            if path is not None:
                clauses.append(user.c.department_id.in_(
                    select(t.department.c.id).where(subtree_condition(t.department.c.path,
                                                                      path))))
        if not clauses:
            return [], "the pool has no members to distribute to"
        ids = [int(i) for i in conn.execute(query.where(or_(*clauses))).scalars()]
        return ids, None if ids else "no active member of the pool"
    if target.kind == "user":
        ids = [int(i) for i in conn.execute(query.where(user.c.login == target.key)).scalars()]
        return ids, None if ids else f"user {target.key} does not exist or is inactive"
    path = conn.execute(select(t.department.c.path)
                        .where(t.department.c.code == target.key)).scalar_one_or_none()
    if path is None:
        return [], f"no department {target.key}"
    ids = [int(i) for i in conn.execute(query.where(user.c.department_id.in_(
        select(t.department.c.id).where(subtree_condition(t.department.c.path, path)))))
        .scalars()]
    return ids, None if ids else f"no active user in department {target.key}"


#: Users whose held records one statement counts (SQLite takes at most 500 SELECTs in
#: one UNION).
HELD_PER_STATEMENT = 200


def held_counts(conn: Connection, registry: Registry, table: Table, pool: Pool,
                users: Sequence[int], *, cap: int) -> dict[int, int]:
    """Records each user holds that count to ``max_held``, up to ``cap``: the rows a
    claim's capacity guard counts (``limits.held_rows``), so push and pull share one
    capacity.

    Each user's count stops at ``cap`` (a ``LIMIT`` subquery per user): a user at the cap
    has no room however many more they hold, and a rep holding tens of thousands of
    records cost a bulk create a full count of them per batch and target (~8 ms at 40,000
    held on SQLite; issue 13). Each user's id is written into the statement
    (``limits.held_rows``): PostgreSQL then plans each count for that user, an index
    walk for a user holding few records, where one plan for every user (a subquery
    correlated with ``tp_user``) scanned the whole table for them (~110 ms a user at 1M
    customers).
    """
    entity = registry.entity(pool.entity)

    def counted(user_id: int) -> Select[Any]:
        held = limits.held_rows(table, entity, pool, user_id).limit(cap).subquery("held")
        return select(limits.planned_per_user(user_id).label("owner"),
                      select(func.count()).select_from(held).scalar_subquery())

    found: dict[int, int] = {}
    wanted = list(users)
    for start in range(0, len(wanted), HELD_PER_STATEMENT):
        arms = [counted(u) for u in wanted[start:start + HELD_PER_STATEMENT]]
        statement = arms[0] if len(arms) == 1 else union_all(*arms)
        for owner, n in conn.execute(statement):
            if n:
                found[int(owner)] = int(n)
    return found


class _Turns:
    """Round-robin state of one target during one batch: candidates, room, cursor."""

    def __init__(self, conn: Connection, cursors: Table, scope: str, users: Sequence[int],
                 held: dict[int, int], cap: int | None) -> None:
        self.conn, self.cursors, self.scope = conn, cursors, scope
        self.users, self.held, self.cap = list(users), held, cap
        _upsert(conn, cursors, {"scope": scope, "last_user_id": 0}, ["scope"], [])
        query = select(cursors.c.last_user_id).where(cursors.c.scope == scope)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # concurrent creators take turns, not the same user
        self.last = int(conn.execute(query).scalar_one())
        self.moved = False
        # Users with room left: once none has, a batch's remaining records are refused
        # at once instead of each walking every candidate (a bulk create of thousands).
        self.open = sum(1 for u in self.users if self.has_room(u))

    def has_room(self, user: int) -> bool:
        return self.cap is None or self.held.get(user, 0) < self.cap

    def next(self) -> int | None:
        """The user after the cursor (wrapping round) with room; counts the record."""
        if not self.open:
            return None
        users = self.users  # sorted by id (target_users)
        start = bisect_right(users, self.last)
        chosen = next((u for u in chain(islice(users, start, None), islice(users, start))
                       if self.has_room(u)), None)
        if chosen is not None:
            self.last, self.moved = chosen, True
            held = self.held[chosen] = self.held.get(chosen, 0) + 1
            if self.cap is not None and held >= self.cap:
                self.open -= 1
        return chosen

    def save(self) -> None:
        if self.moved:
            self.conn.execute(update(self.cursors).where(self.cursors.c.scope == self.scope)
                              .values(last_user_id=self.last))


class Distributor:
    """Places a batch of new records of one pool: one lookup per target, not per record."""

    def __init__(self, conn: Connection, registry: Registry, system: Mapping[str, Table],
                 table: Table, pool: Pool) -> None:
        self.conn, self.registry, self.system = conn, registry, system
        self.table, self.pool = table, pool
        self._turns: dict[str, _Turns | str] = {}
        dist = pool.distribution
        self._field = dist.field or ""
        # Territory mode: the territories are read once per batch (a locator), and each
        # one's outcome once, when a record first lands in it (see ``_in_territory``).
        self._locate = locator(dist.territories) if dist.mode == "territory" else None
        self._outcomes: dict[str, tuple[_Turns | None, str, str]] = {}

    def _turns_for(self, target: Target | None) -> _Turns | str:
        """The target's turns, or why it has nobody (cached for the batch)."""
        scope = f"pool:{self.pool.name}:" + (f"{target.kind}:{target.key}" if target
                                             else "members")
        found = self._turns.get(scope)
        if found is None:
            users, problem = target_users(self.conn, self.pool, target)
            if problem:
                found = problem
            else:
                cap = self.pool.limits.max_held
                held = held_counts(self.conn, self.registry, self.table, self.pool,
                                   users, cap=cap) if cap is not None else {}
                found = _Turns(self.conn, self.system[CURSOR_TABLE], scope, users, held, cap)
            self._turns[scope] = found
        return found

    def choose(self, values: Mapping[str, Any]) -> tuple[int | None, str]:
        """The owner of one new record (None: nobody) and why (moves the round-robin
        cursor in memory): a plain pair, as a bulk create asks it for every record."""
        if self._locate is not None:
            return self._in_territory(values, self._locate)
        target, why = target_of(self.pool, values)
        if target is None and self.pool.distribution.mode != "round_robin":
            return None, why
        turns = self._turns_for(target)
        if isinstance(turns, str):
            return None, f"{why}: {turns}"
        chosen = turns.next()
        if chosen is None:
            return None, f"{why}: every candidate holds {turns.cap} records (max_held)"
        return chosen, f"distributed: {why}"

    def _in_territory(self, values: Mapping[str, Any],
                      locate: Callable[[float, float], Territory | None]
                      ) -> tuple[int | None, str]:
        """``choose`` in territory mode (the same answers as ``target_of``): a record in a
        territory already seen in the batch costs the point test and a turn, no reason
        text to build."""
        found = territory_holding(self._field, values, locate)
        if isinstance(found, str):
            return None, found
        outcome = self._outcomes.get(found.name)
        if outcome is None:
            why = f"territory {found.name} -> {found.target.kind} {found.target.key}"
            target = self._turns_for(found.target)
            if isinstance(target, str):
                outcome = (None, f"{why}: {target}", "")
            else:
                outcome = (target, f"distributed: {why}",
                           f"{why}: every candidate holds {target.cap} records (max_held)")
            self._outcomes[found.name] = outcome
        turns, placed, full = outcome
        if turns is None:
            return None, placed
        chosen = turns.next()
        return (chosen, placed) if chosen is not None else (None, full)

    def save(self) -> None:
        """Write the cursors moved by this batch."""
        for turns in self._turns.values():
            if isinstance(turns, _Turns):
                turns.save()


def _pool_for(registry: Registry, entity: str) -> Pool | None:
    name = default_pool(registry, entity)
    return registry.pools[name] if name else None


def place_new(tx: Transaction, entity: str, rows: Sequence[dict[str, Any]],
              at: datetime) -> AfterInsert | None:
    """``before_insert`` hook: place the records created without an owner (see module doc).

    Decided before the insert, so each row is written once: a record nobody takes
    is inserted already in its pool. The records given to a user are inserted
    without an owner and then given away with one conditional ``UPDATE`` per user
    and reason (``tx.reown``: the "assign" feed entries, ledger rows and events a
    distribution has always left), once their ids are known; the unplaced reasons
    go to ``tp_unplaced`` then too.
    """
    registry = tx.service.schema.registry
    table = tx.service.schema.table(entity)
    if "pool_id" not in table.c:
        return None
    fresh = [i for i, row in enumerate(rows)
             if row.get("owner_id") is None and row.get("pool_id") is None]
    if not fresh:
        return None
    pool = _pool_for(registry, entity)
    if pool is None:
        return None
    placed: dict[tuple[int, str], list[int]] = {}  # (user, reason) -> row positions
    unplaced: list[tuple[int, str]] = []            # (row position, reason)
    if pool.distribution.mode != "none":
        distributor = Distributor(tx.conn, registry, tx.service.schema.system, table, pool)
        choose = distributor.choose
        for i in fresh:
            user_id, reason = choose(rows[i])
            if user_id is None:
                unplaced.append((i, reason[:500]))
            else:
                placed.setdefault((user_id, reason[:500]), []).append(i)
        distributor.save()
    # Records nobody takes enter the pool as part of their creation (no owner, no
    # pool would be nobody's record, seen by no pool member).
    taken = {i for positions in placed.values() for i in positions}
    for i in fresh:
        if i not in taken:
            rows[i]["pool_id"] = pool.name

    def after_insert(ids: Sequence[int]) -> None:
        for (user_id, reason), positions in sorted(placed.items()):
            tx.reown(entity, [ids[i] for i in positions], owner_id=user_id, pool_id=None,
                     kind="assign", action=None, guard=[table.c.owner_id.is_(None)],
                     reason=reason)
        system = tx.service.schema.system
        done = sorted(ids[i] for i in taken)
        gone = system[UNPLACED_TABLE]
        for start in range(0, len(done), 1000):
            tx.conn.execute(delete(gone).where(gone.c.entity == entity,
                                               gone.c.record_id.in_(done[start:start + 1000])))
        if unplaced:
            _upsert_unplaced(tx.conn, gone, [(ids[i], reason) for i, reason in unplaced],
                             entity=entity, pool=pool.name, at=at)

    return after_insert


def _upsert_unplaced(conn: Connection, table: Table, reasons: Sequence[tuple[int, str]], *,
                     entity: str, pool: str, at: datetime) -> None:
    """Upsert the ``(record id, reason)`` rows of records left in ``pool`` at ``at``."""
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = make(table)
    upsert = stmt.on_conflict_do_update(
        index_elements=["entity", "record_id"],
        set_={c: stmt.excluded[c] for c in ("pool", "reason", "at")})
    if conn.dialect.name != "sqlite":
        conn.execute(upsert, [{"entity": entity, "record_id": record_id, "pool": pool,
                               "reason": reason, "at": at} for record_id, reason in reasons])
        return
    # A bulk create leaves thousands of rows here, alike but for the record and the
    # reason: Core's per-row parameter handling cost more than the upsert (issue 13),
    # and so did a dict per row to take the pair back out of.
    DriverInsert(table, varying=("record_id", "reason"), constant=("entity", "pool", "at"),
                 dialect=conn.dialect, statement=upsert).execute(
        conn, reasons, {"entity": entity, "pool": pool, "at": at})


def unplaced_reasons(conn: Connection, system: Mapping[str, Table], *, entity: str,
                     ids: Sequence[int]) -> dict[int, tuple[str, datetime]]:
    """Why these records stayed in their pool (records placed or never tried are absent)."""
    if not ids:
        return {}
    table = system[UNPLACED_TABLE]
    rows = conn.execute(select(table.c.record_id, table.c.reason, table.c.at)
                        .where(table.c.entity == entity, table.c.record_id.in_(list(ids))))
    return {int(r.record_id): (r.reason, r.at) for r in rows}
