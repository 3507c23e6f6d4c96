"""Pool operations on any pooled entity: claim, return, assign, recycle, move, lock, unlock.

Each operation is a function over a unit of work (``tx``), so rules and bulk
actions can run several in one transaction, and a method of ``PoolService``
that runs one in its own. Each checks the actor's action grant (claim, return,
assign, recycle in the role), reads the record inside the actor's row scope for
that action (pool membership is the ``pool`` scope), then changes owner and pool
with one conditional UPDATE (``Transaction.reown``) whose guards carry the
limits (engine/workflow/limits.py), serialised per user and pool. The write
events it emits become one feed entry (with the reason) and one ledger row.

An owned record is never also in a pool: taking a record out of a pool clears
``pool_id``; giving it back sets ``pool_id`` and clears the owner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, and_, delete, func, insert, literal, null, or_, select
from sqlalchemy.sql import visitors

from engine.actor import Actor
from engine.errors import (
    ForbiddenError,
    NotFoundError,
    PoolLimitError,
    ValidationError,
)
from engine.messages import M
from engine.metadata.model import Pool
from engine.records._plan import EntityPlan
from engine.records.events import ASSIGN, BatchEvent, Event, WriteEvent
from engine.records.record import Record
from engine.records.service import RecordService
from engine.records.transaction import Transaction
from engine.storage.applied import SYSTEM_TABLES
from engine.storage.fanout import among
from engine.storage.pool_tables import POOL_EVENT_TABLE, POOL_LOCK_TABLE
from engine.storage.system_tables import USER_TABLE
from engine.workflow import limits

MAX_REASON_LENGTH = 500


# --- shared steps ---------------------------------------------------------------------


def _plan(tx: Transaction, entity: str) -> EntityPlan:
    plan = tx.service.plan(entity)
    if not plan.owned or "pool_id" not in plan.table.c:
        raise ForbiddenError(plan.name, "pool", M("this entity has no pools"))
    return plan


def _row(tx: Transaction, plan: EntityPlan, record_id: int, action: str,
         refuse_first: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The record's values if the actor may read it and ``action`` it; else the right error.

    ``refuse_first`` may raise a more telling error about a readable record's state
    before the scope refusal (e.g. "someone claimed it" rather than "forbidden").
    """
    tx.service.policy.check_action(tx.actor, plan.entity, action)
    found = tx.service._scoped_row(tx.conn, plan, tx.actor, record_id, action=action,
                                   deleted=False)
    if found is None:
        raise NotFoundError(plan.name, record_id)
    row, allowed = found
    if refuse_first is not None:
        refuse_first(plan.to_values(row))
    if not allowed:
        raise ForbiddenError(plan.name, action, M("the record is outside what you may %(action)s",
                                                  action=action))
    return plan.to_values(row)


def _reason(plan: EntityPlan, reason: str | None, *, required: bool) -> str | None:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        if required:
            raise ValidationError(plan.name, {"reason": M("is required")})
        return None
    if len(text) > MAX_REASON_LENGTH:
        raise ValidationError(plan.name, {"reason": M("at most %(max_reason_length)s characters",
                                                      max_reason_length=MAX_REASON_LENGTH)})
    return text


def pools_of(tx: Transaction | RecordService, entity: str) -> list[Pool]:
    """The pools declared for ``entity``, by name."""
    service = tx.service if isinstance(tx, Transaction) else tx
    return sorted((p for p in service.schema.registry.pools.values() if p.entity == entity),
                  key=lambda p: p.name)


def _pool(tx: Transaction, plan: EntityPlan, name: Any, *, key: str = "pool") -> Pool:
    pool = tx.service.schema.registry.pools.get(name) if isinstance(name, str) else None
    if pool is None or pool.entity != plan.name:
        raise ValidationError(plan.name, {key: M("no pool %(name)s holds %(name2)s records",
                                                 name=repr(name), name2=plan.name)})
    return pool


def home_pool(tx: Transaction, plan: EntityPlan, record_id: int,
              explicit: str | None = None) -> Pool:
    """Where a record goes back to: the pool asked for, else the one it last left, else the
    entity's only pool."""
    if explicit is not None:
        return _pool(tx, plan, explicit)
    ledger_table = tx.service.schema.system[POOL_EVENT_TABLE]
    last = tx.conn.execute(
        select(ledger_table.c.pool)
        .where(ledger_table.c.entity == plan.name, ledger_table.c.record_id == record_id,
               ledger_table.c.pool.is_not(None))
        .order_by(ledger_table.c.id.desc()).limit(1)).scalar()
    return _home_of(tx, plan, last)


def home_pools(tx: Transaction, plan: EntityPlan, record_ids: Sequence[int]) -> dict[int, Pool]:
    """``home_pool`` (no pool asked for) of many records, their last pools read in one
    statement: a batch of thousands is not one ledger query per record."""
    ledger = tx.service.schema.system[POOL_EVENT_TABLE]
    newest = (select(ledger.c.record_id, func.max(ledger.c.id).label("newest"))
              .where(ledger.c.entity == plan.name,
                     among(tx.conn, ledger.c.record_id, record_ids),
                     ledger.c.pool.is_not(None))
              .group_by(ledger.c.record_id).subquery())
    last = {int(r): p for r, p in tx.conn.execute(
        select(ledger.c.record_id, ledger.c.pool).join(newest, ledger.c.id == newest.c.newest))}
    return {int(r): _home_of(tx, plan, last.get(int(r))) for r in record_ids}


def _home_of(tx: Transaction, plan: EntityPlan, last: str | None) -> Pool:
    known = {p.name: p for p in pools_of(tx, plan.name)}
    if last in known:
        return known[last]
    if len(known) == 1:
        return next(iter(known.values()))
    raise ValidationError(plan.name, {"pool": M("choose the pool: %(pools)s",
                                                pools=", ".join(sorted(known)))
                                      if known else M("this entity has no pool")})


def _active_user(conn: Connection, plan: EntityPlan, user_id: Any) -> int:
    users = _users(conn)
    if not isinstance(user_id, int) or isinstance(user_id, bool) or conn.execute(
            select(users.c.id).where(users.c.id == user_id, users.c.active.is_(True))
    ).first() is None:
        raise ValidationError(plan.name, {"owner_id": M("no active user with id %(user_id)s",
                                                        user_id=user_id)})
    return user_id


def _users(conn: Connection) -> Any:
    return SYSTEM_TABLES[USER_TABLE]


def _stored(tx: Transaction, plan: EntityPlan, record_id: int) -> Record:
    """The record as the unit left it: from its last write event when there is one (the
    values the UPDATE wrote, no read back), else read from the database."""
    last = next((e.after if isinstance(e, WriteEvent) else e.after_of(record_id)
                 for e in reversed(tx.events) if e.entity == plan.name and (
                     e.record_id == record_id if isinstance(e, WriteEvent)
                     else record_id in e.record_ids)), None)
    values = dict(last) if last is not None else tx.service._read_back(tx.conn, plan,
                                                                         record_id)
    for name in tx.service.policy.hidden_fields(tx.actor, plan.entity):
        values.pop(name, None)
    return Record(plan.name, values)


def _refused(tx: Transaction, plan: EntityPlan, record_id: int,
             guards: Sequence[limits.Guard]) -> Exception:
    """Why the conditional UPDATE changed nothing (under the same lock, same SQL)."""
    failing = limits.first_failing(tx.conn, plan, record_id, guards)
    if failing is not None:
        return PoolLimitError(plan.name, record_id, limit=failing.limit,
                              message=failing.message)
    return PoolLimitError(plan.name, record_id, limit="taken",
                          message=M("someone else changed its owner first"))


# --- the operations ---------------------------------------------------------------------


def claim(tx: Transaction, entity: str, record_id: int, *, reason: str | None = None) -> Record:
    """领取: the actor takes an unowned record from a pool they work, within the limits."""
    plan = _plan(tx, entity)
    user_id = tx.actor.user_id
    if user_id is None:
        raise ForbiddenError(plan.name, "claim", M("only a person can claim a record"))

    def in_pool(values: dict[str, Any]) -> None:
        if values.get("owner_id") is not None or values.get("pool_id") is None:
            raise PoolLimitError(plan.name, record_id, limit="taken",
                                 message=M("it is not in a pool any more"))

    row = _row(tx, plan, record_id, "claim", in_pool)
    pool = _pool(tx, plan, row["pool_id"])
    text = _reason(plan, reason, required=False)
    table = plan.table
    entity_meta = tx.service.schema.registry.entity(plan.name)
    guards = limits.claim_guards(plan, entity_meta, pool, user_id=user_id,
                                 ledger_table=tx.service.schema.system[POOL_EVENT_TABLE],
                                 now=tx.service.clock())
    state = [table.c.owner_id.is_(None), table.c.pool_id == pool.name]
    changed = tx.reown(plan.name, [record_id], owner_id=user_id, pool_id=None, kind="claim",
                       action="claim", guard=[*state, *(g.clause for g in guards)],
                       reason=text, serialise=limits.lock_clause(
                           tx.conn, entity=plan.name, pool=pool.name, user_id=user_id))
    if not changed:
        taken = limits.Guard("taken", and_(*state), "someone claimed it first")
        raise _refused(tx, plan, record_id, [taken, *guards])
    return _stored(tx, plan, record_id)


def _release(tx: Transaction, entity: str, record_id: int, *, action: str, kind: str,
             reason: str | None, pool: str | None) -> Record:
    plan = _plan(tx, entity)
    row = _row(tx, plan, record_id, action)
    owner = row.get("owner_id")
    if owner is None:
        raise PoolLimitError(plan.name, record_id, limit="not_held",
                             message=M("nobody holds it; it is in a pool already"))
    text = _reason(plan, reason, required=True)
    target = home_pool(tx, plan, record_id, pool)
    table = plan.table
    changed = tx.reown(plan.name, [record_id], owner_id=None, pool_id=target.name, kind=kind,
                       action=action, guard=[table.c.owner_id == owner], reason=text)
    if not changed:
        raise PoolLimitError(plan.name, record_id, limit="taken",
                             message=M("someone else changed its owner first"))
    return _stored(tx, plan, record_id)


def return_to_pool(tx: Transaction, entity: str, record_id: int, *, reason: str,
                   pool: str | None = None) -> Record:
    """退回: the holder gives a record back to its pool, saying why (``return`` grant)."""
    return _release(tx, entity, record_id, action="return", kind="return", reason=reason,
                    pool=pool)


def recycle(tx: Transaction, entity: str, record_id: int, *, reason: str,
            pool: str | None = None) -> Record:
    """回收: a leader takes a record from its holder back to the pool (``recycle`` grant)."""
    return _release(tx, entity, record_id, action="recycle", kind="recycle", reason=reason,
                    pool=pool)


def assign(tx: Transaction, entity: str, record_id: int, *, owner_id: int,
           reason: str | None = None) -> Record:
    """分配: a leader or pool admin gives a record (pooled or held) to a person.

    The new holder's capacity counts as for a claim (push and pull share it). The
    result must stay inside what the actor may assign: a leader assigns within
    their team; a pool admin (assign through the pool scope) to the pool's members.
    """
    plan = _plan(tx, entity)
    row = _row(tx, plan, record_id, "assign")
    target = _active_user(tx.conn, plan, owner_id)
    if row.get("owner_id") == target:
        return _stored(tx, plan, record_id)
    text = _reason(plan, reason, required=False)
    from_pool = row.get("pool_id")
    pool = _pool(tx, plan, from_pool) if from_pool is not None \
        else home_pool(tx, plan, record_id)
    _check_assignee(tx, plan, record_id, pool, target, from_pool=from_pool)
    limits.serialise(tx.conn, entity=plan.name, pool=pool.name, user_id=target)
    table = plan.table
    entity_meta = tx.service.schema.registry.entity(plan.name)
    guards = limits.capacity_guard(plan, entity_meta, pool, target, who="the assignee holds")
    owner = row.get("owner_id")
    state = [table.c.owner_id.is_(None) if owner is None else table.c.owner_id == owner]
    changed = tx.reown(plan.name, [record_id], owner_id=target, pool_id=None, kind="assign",
                       action="assign", guard=[*state, *(g.clause for g in guards)],
                       reason=text)
    if not changed:
        taken = limits.Guard("taken", and_(*state), "someone else changed its owner first")
        raise _refused(tx, plan, record_id, [taken, *guards])
    return _stored(tx, plan, record_id)


def _check_assignee(tx: Transaction, plan: EntityPlan, record_id: int, pool: Pool,
                    target: int, *, from_pool: str | None) -> None:
    """The new owner must be someone the actor may assign to: the record, owned by the
    target, stays inside the actor's assign scope; or a pool admin hands a pool record
    to a member of that pool."""
    actor = tx.actor
    if actor.is_system:
        return
    if _in_scope_as_owned_by(tx, plan, record_id, target):
        return
    members = getattr(tx.service.policy, "member_pools", None)
    if from_pool is not None and members is not None and \
            pool.name in members(target, plan.name):
        return
    raise ForbiddenError(plan.name, "assign", M("the new owner is outside the people you may "
                                              "assign to"))


def _in_scope_as_owned_by(tx: Transaction, plan: EntityPlan, record_id: int,
                          target: int) -> bool:
    """Whether the record, owned by ``target`` and out of any pool, is in the actor's assign
    scope. The policy's own SQL decides, on a one-row derived table with the owner swapped
    in (never a copy of its department or subtree logic)."""
    table = plan.table
    scope = tx.service.policy.row_scope(tx.actor, plan.entity, table, "assign")
    if scope.is_empty:
        return False
    swapped = {"owner_id": literal(target, type_=table.c.owner_id.type),
               "pool_id": null()}
    derived = select(*(swapped[c.name].label(c.name) if c.name in swapped else c
                       for c in table.c)).where(table.c.id == record_id).subquery("as_owned")

    def to_derived(element: Any, **_: Any) -> Any:
        if isinstance(element, Column) and element.table is table:
            return derived.c[element.name]
        return None

    clause = visitors.replacement_traverse(or_(*scope.branches), {}, to_derived)
    return tx.conn.execute(select(literal(1)).select_from(derived).where(clause)
                           .limit(1)).first() is not None


def move(tx: Transaction, entity: str, record_id: int, *, to_pool: str,
         reason: str | None = None) -> Record:
    """移动: a pool admin or leader moves an unowned record to another pool of its entity."""
    plan = _plan(tx, entity)
    row = _row(tx, plan, record_id, "assign")
    source = row.get("pool_id")
    if row.get("owner_id") is not None or source is None:
        raise PoolLimitError(plan.name, record_id, limit="not_in_pool",
                             message=M("only a record in a pool can move between pools"))
    target = _pool(tx, plan, to_pool, key="to_pool")
    if target.name == source:
        return _stored(tx, plan, record_id)
    text = _reason(plan, reason, required=False)
    table = plan.table
    changed = tx.reown(plan.name, [record_id], owner_id=None, pool_id=target.name, kind="move",
                       action="assign",
                       guard=[table.c.owner_id.is_(None), table.c.pool_id == source],
                       reason=text)
    if not changed:
        raise PoolLimitError(plan.name, record_id, limit="taken",
                             message=M("someone claimed or moved it first"))
    return _stored(tx, plan, record_id)


def is_locked(conn: Connection, entity: str, record_id: int) -> bool:
    """Whether the record is locked by its holder (a locked record never drops)."""
    lock = SYSTEM_TABLES[POOL_LOCK_TABLE]
    return conn.execute(select(lock.c.record_id).where(
        lock.c.entity == entity, lock.c.record_id == record_id)).first() is not None


def _lockable(tx: Transaction, plan: EntityPlan, record_id: int) -> dict[str, Any]:
    """The holder may lock their own record (update access); a leader any they may assign."""
    actor = tx.actor
    try:
        row = _row(tx, plan, record_id, "assign")
    except (ForbiddenError, NotFoundError):
        row = _row(tx, plan, record_id, "update")
        if row.get("owner_id") != actor.user_id:
            raise ForbiddenError(plan.name, "lock", M("only the holder or a leader may lock "
                                                    "it")) from None
    if row.get("owner_id") is None:
        raise PoolLimitError(plan.name, record_id, limit="not_held",
                             message=M("only a held record can be locked"))
    return row


def lock(tx: Transaction, entity: str, record_id: int, *, reason: str | None = None) -> Record:
    """锁定: a locked record never drops back to the pool; locks per holder are capped."""
    plan = _plan(tx, entity)
    row = _lockable(tx, plan, record_id)
    owner = int(row["owner_id"])
    pool = home_pool(tx, plan, record_id)
    cap = pool.limits.max_locked
    if cap is None:
        raise ForbiddenError(plan.name, "lock", M("pool %(name)s allows no locks", name=pool.name))
    text = _reason(plan, reason, required=False)
    limits.serialise(tx.conn, entity=plan.name, pool=pool.name, user_id=owner)
    table = tx.service.schema.system[POOL_LOCK_TABLE]
    now = tx.service.clock()
    held = select(func.count()).select_from(table).where(
        table.c.user_id == owner, table.c.pool == pool.name).scalar_subquery()
    mine = select(table.c.record_id).where(table.c.entity == plan.name,
                                           table.c.record_id == record_id).exists()
    if tx.conn.execute(select(mine)).scalar():
        raise PoolLimitError(plan.name, record_id, limit="locked", message=M("it is locked already"))
    # One conditional INSERT: the cap is counted in the statement that takes the lock.
    source = select(literal(plan.name), literal(record_id), literal(owner), literal(pool.name),
                    literal(now, type_=table.c.at.type)).where(held < cap)
    taken = tx.conn.execute(insert(table).from_select(
        ["entity", "record_id", "user_id", "pool", "at"], source)
        .returning(table.c.record_id)).first()
    if taken is None:
        raise PoolLimitError(plan.name, record_id, limit="max_locked",
                             message=M("the holder has %(cap)s locked records already, the most "
                                       "this pool allows",
                                       cap=cap))
    tx.log(plan, record_id, "lock", at=now, changes=None, body=text)
    tx.event(plan, record_id, "lock", before=row, after=row, at=now, reason=text)
    return _stored(tx, plan, record_id)


def unlock(tx: Transaction, entity: str, record_id: int, *,
           reason: str | None = None) -> Record:
    """Unlock: the record may drop again under the pool's rules."""
    plan = _plan(tx, entity)
    row = _lockable(tx, plan, record_id)
    text = _reason(plan, reason, required=False)
    table = tx.service.schema.system[POOL_LOCK_TABLE]
    result = tx.conn.execute(delete(table).where(table.c.entity == plan.name,
                                                 table.c.record_id == record_id))
    if result.rowcount == 0:
        raise PoolLimitError(plan.name, record_id, limit="not_locked", message=M("it is not locked"))
    now = tx.service.clock()
    tx.log(plan, record_id, "unlock", at=now, changes=None, body=text)
    tx.event(plan, record_id, "unlock", before=row, after=row, at=now, reason=text)
    return _stored(tx, plan, record_id)


def release_held(tx: Transaction, user_id: int, *, reason: str) -> int:
    """Every record ``user_id`` holds in a pooled entity goes back to its pool (deactivation).

    A system write (``tx.actor`` is normally ``Actor.system(via=...)``); locks go too.
    Returns how many records moved.
    """
    moved = 0
    entities = sorted({p.entity for p in tx.service.schema.registry.pools.values()})
    for entity in entities:
        plan = _plan(tx, entity)
        table = plan.table
        live = [table.c.owner_id == user_id]
        if plan.soft_delete:
            live.append(table.c.deleted_at.is_(None))
        ids = list(tx.conn.execute(select(table.c.id).where(*live)).scalars())
        by_pool: dict[str, list[int]] = {}
        for record_id in ids:
            by_pool.setdefault(home_pool(tx, plan, record_id).name, []).append(record_id)
        for pool_name, chosen in sorted(by_pool.items()):
            changed = tx.reown(plan.name, chosen, owner_id=None, pool_id=pool_name, kind="drop",
                               action=None, guard=[table.c.owner_id == user_id],
                               reason=reason)
            moved += len(changed)
    return moved


@dataclass(frozen=True)
class PoolService:
    """The pool operations, each in its own unit of work (see the module functions)."""

    records: RecordService

    def claim(self, actor: Actor, entity: str, record_id: int, *,
              reason: str | None = None) -> Record:
        with self.records.transaction(actor) as tx:
            return claim(tx, entity, record_id, reason=reason)

    def return_to_pool(self, actor: Actor, entity: str, record_id: int, *, reason: str,
                       pool: str | None = None) -> Record:
        with self.records.transaction(actor) as tx:
            return return_to_pool(tx, entity, record_id, reason=reason, pool=pool)

    def recycle(self, actor: Actor, entity: str, record_id: int, *, reason: str,
                pool: str | None = None) -> Record:
        with self.records.transaction(actor) as tx:
            return recycle(tx, entity, record_id, reason=reason, pool=pool)

    def assign(self, actor: Actor, entity: str, record_id: int, *, owner_id: int,
               reason: str | None = None) -> Record:
        with self.records.transaction(actor) as tx:
            return assign(tx, entity, record_id, owner_id=owner_id, reason=reason)

    def move(self, actor: Actor, entity: str, record_id: int, *, to_pool: str,
             reason: str | None = None) -> Record:
        with self.records.transaction(actor) as tx:
            return move(tx, entity, record_id, to_pool=to_pool, reason=reason)

    def lock(self, actor: Actor, entity: str, record_id: int, *,
             reason: str | None = None) -> Record:
        with self.records.transaction(actor) as tx:
            return lock(tx, entity, record_id, reason=reason)

    def unlock(self, actor: Actor, entity: str, record_id: int, *,
               reason: str | None = None) -> Record:
        with self.records.transaction(actor) as tx:
            return unlock(tx, entity, record_id, reason=reason)

    def release_held(self, user_id: int, *, reason: str = "owner deactivated") -> int:
        with self.records.transaction(Actor.system(via="deactivation")) as tx:
            return release_held(tx, user_id, reason=reason)


def enforce_capacity(tx: Transaction, events: Sequence[Event]) -> None:
    """In-transaction hook (takes batches): a generic assignment may not push a holder past
    capacity.

    Pool operations count capacity in their UPDATE; a plain ``records.assign`` does
    not know pools, so its events are checked here, after taking the same per-user
    lock (READ COMMITTED then counts every committed holder's row, so two parallel
    assignments cannot both slip under the cap). The count is taken after all the
    round's writes, so it is the same for every record of one (pool, holder): each
    pair is counted once, a batch of thousands included.
    """
    checks: dict[tuple[str, str, int], int] = {}  # (entity, pool, holder) -> a record id
    for event in events:
        if event.kind != ASSIGN:  # before the values: a bulk create's events skip them
            continue
        owner = event.after.get("owner_id") if event.after is not None else None
        if owner is None or not event.changed("owner_id") \
                or "pool_id" not in (event.after or {}):
            continue
        plan = tx.service.plan(event.entity)
        declared = pools_of(tx, plan.name)
        if not declared:
            continue
        explicit = (event.before or {}).get("pool_id")
        if isinstance(event, BatchEvent):
            if explicit is None and len(declared) == 1:
                explicit = declared[0].name  # what home_pool answers for every record
            homes = {event.record_ids[0]: home_pool(tx, plan, event.record_ids[0], explicit)} \
                if explicit else home_pools(tx, plan, event.record_ids)
        else:
            homes = {event.record_id: home_pool(tx, plan, event.record_id, explicit)}
        for record_id, pool in homes.items():
            checks.setdefault((plan.name, pool.name, int(owner)), record_id)
    for (entity_name, pool_name, owner), record_id in checks.items():
        plan = tx.service.plan(entity_name)
        pool = tx.service.schema.registry.pools[pool_name]
        cap = pool.limits.max_held
        if cap is None:
            continue
        limits.serialise(tx.conn, entity=plan.name, pool=pool.name, user_id=owner)
        entity = tx.service.schema.registry.entity(plan.name)
        held = tx.conn.execute(select(limits.held_count(plan, entity, pool, owner))).scalar()
        if int(held or 0) > cap:
            raise PoolLimitError(plan.name, record_id, limit="max_held",
                                 message=M("the assignee holds %(cap)s records already, the most "
                                           "pool %(name)s allows",
                                           cap=cap, name=pool.name))
