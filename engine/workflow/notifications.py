"""In-app notifications: written from write events after commit, read through permissions.

What a user is told (``KINDS``):

- ``assigned``: a record became theirs by someone else's hand — a leader's
  assignment, distribution, a rule's assignment, a record created for them;
- ``claimed``: someone else claimed a record they had returned to a pool;
- ``taken``: a record was taken from them — a rule dropped it, a leader recycled it;
- ``warning``: a rule will drop their record soon (written by the rule runner
  with its warning clock, ``notify_warnings``);
- ``mention``: ``@login`` in a comment on a record.

The hooks (``install``) only write rows; they never decide what a user may see.
A person's write is told after commit, one notice per record; a batch (a rule
run's, a distribution's or a bulk pool operation's records moved alike,
``BatchEvent``) is told inside its own unit of work as one digest per user told
("12 of your records went back to the pool"): ``record_count`` records, the first
one's id, the pool. That is what a rep wants to read after a rule run, and a
rule's batch writes a handful of rows instead of one per moved record; the notices
commit (or roll back) with the moves. Hooks still see every record's event.
Every read (``inbox``, ``unread_count``) lists the records (a digest's first one)
through the records service with the reader's own scope, so a notification never reveals
a record the user cannot read now: an assignment, warning or mention about such
a record is neither shown nor counted; a ``claimed`` or ``taken`` notice (about a
record the user held and lost, which they usually can no longer read) is shown
without the record's title and link — who took it and why, nothing of the record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from engine.actor import Actor
from engine.errors import TidepoolError
from engine.records.events import ASSIGN, COMMENT, CREATE, BatchEvent, Event, WriteEvent
from engine.records.query import Filter, ListQuery
from engine.records.service import RecordService
from engine.records.transaction import Transaction
from engine.storage.fanout import insert_per_record
from engine.storage.notification_tables import NOTIFICATION_TABLE
from engine.storage.pool_tables import POOL_EVENT_TABLE
from engine.storage.system_tables import USER_TABLE
from engine.workflow.ledger import rule_of

log = logging.getLogger(__name__)

ASSIGNED, CLAIMED, TAKEN, WARNING, MENTION = "assigned", "claimed", "taken", "warning", "mention"
KINDS: tuple[str, ...] = (ASSIGNED, CLAIMED, TAKEN, WARNING, MENTION)
#: Unread notifications looked at for the bell; the bell says "99+" past it.
BELL_WINDOW = 100
#: A page of the notifications screen.
PAGE_SIZE = 50
#: Mentions read from one comment (a pasted list of names must not fan out without end).
MAX_MENTIONS = 20
#: ``@login`` not preceded by a word character (an e-mail address is no mention).
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9_.\-]{0,149})")
_TAKEN_KINDS = frozenset({"drop", "recycle"})
#: Kinds about a record the user lost: shown without the record when they cannot read it.
LOST_KINDS = frozenset({CLAIMED, TAKEN})


def _get(values: Mapping[str, Any] | None, name: str) -> Any:
    return None if values is None else values.get(name)


def mentioned_logins(body: str) -> list[str]:
    """The distinct logins ``@``-mentioned in ``body``, in order (trailing dots dropped)."""
    found: list[str] = []
    for match in _MENTION.finditer(body):
        login = match.group(1).rstrip(".-")
        if login and login not in found:
            found.append(login)
    return found[:MAX_MENTIONS]


def _row(user_id: Any, kind: str, event: WriteEvent | BatchEvent,
         **extra: Any) -> dict[str, Any]:
    row = {"user_id": int(user_id), "kind": kind, "entity": event.entity,
           "actor_id": event.actor.user_id, "rule": rule_of(event.via),
           "reason": event.reason, "due_at": None, "at": event.at, **extra}
    if isinstance(event, WriteEvent):
        row["record_id"] = event.record_id
    return row


def _told(event: WriteEvent | BatchEvent) -> tuple[int, str] | None:
    """(user, kind) an assignment or a take tells (for each record of a batch), if anyone."""
    me = event.actor.user_id
    owner, before = _get(event.after, "owner_id"), _get(event.before, "owner_id")
    if event.kind in (ASSIGN, CREATE) and owner is not None and owner != before \
            and owner != me:
        return int(owner), ASSIGNED
    if event.kind in _TAKEN_KINDS and before is not None and before != me:
        return int(before), TAKEN
    return None


def _returners(conn: Connection, ledger: Table, event: WriteEvent) -> list[int]:
    """Who returned this record to a pool (ever), from the pool-event ledger."""
    rows = conn.execute(select(ledger.c.from_owner).distinct().where(
        ledger.c.entity == event.entity, ledger.c.record_id == event.record_id,
        ledger.c.kind == "return", ledger.c.from_owner.is_not(None)))
    return [int(r) for r in rows.scalars()]


def _users_by_login(conn: Connection, users: Table, logins: Sequence[str]) -> dict[str, int]:
    if not logins:
        return {}
    rows = conn.execute(select(users.c.login, users.c.id).where(
        users.c.login.in_(list(logins)), users.c.active.is_(True)))
    return {str(login): int(user_id) for login, user_id in rows}


def _may_tell(event: WriteEvent) -> bool:
    """Whether ``rows_for`` may write anything for ``event``: a cheap first look, so
    that a bulk create of one's own records (thousands of create events, none of them
    news to anyone) costs no ``_told`` per event and no transaction. A create tells
    only when it gives the record to someone else (``_told``)."""
    if event.kind != CREATE:
        return True
    after = event.after
    owner = None if after is None else after.get("owner_id")
    return owner is not None and owner != event.actor.user_id


def rows_for(conn: Connection, system: Mapping[str, Table],
             events: Sequence[WriteEvent]) -> list[dict[str, Any]]:
    """The notification rows a committed unit's events call for (nobody hears of their own act)."""
    rows: list[dict[str, Any]] = []
    for event in events:
        me = event.actor.user_id
        owner = _get(event.after, "owner_id")
        told = _told(event)
        if told is not None:
            rows.append(_row(told[0], told[1], event))
        elif event.kind == "claim" and owner is not None:
            rows.extend(_row(user, CLAIMED, event)
                        for user in _returners(conn, system[POOL_EVENT_TABLE], event)
                        if user != owner)
        elif event.kind == COMMENT and event.body:
            users = _users_by_login(conn, system[USER_TABLE], mentioned_logins(event.body))
            rows.extend(_row(user, MENTION, event, reason=event.body[:500])
                        for user in users.values() if user != me)
    return rows


def deliver(records: RecordService, events: Sequence[Event]) -> int:
    """After-commit hook body: write the notifications of ``events``; returns how many.

    Batches were told in their unit (``deliver_batches``); a unit of nothing else opens
    no transaction here."""
    single = [e for e in events if isinstance(e, WriteEvent) and _may_tell(e)]
    if not single:
        return 0
    system = records.schema.system
    with records.engine.begin() as conn:
        rows = rows_for(conn, system, single)
        insert_per_record(conn, system[NOTIFICATION_TABLE], rows,
                          source_of=records.schema.table)
    return len(rows)


def notify_warnings(conn: Connection, system: Mapping[str, Table],
                    warnings: Iterable[Mapping[str, Any]], *, at: datetime) -> int:
    """One ``warning`` notification per new rule warning (the rule runner's warning clock).

    Called in the transaction that records the warnings, so a warning is told
    exactly once however often the runner repeats.
    """
    rows = [{"user_id": int(w["owner_id"]), "kind": WARNING, "entity": w["entity"],
             "record_id": int(w["record_id"]), "actor_id": None,
             "rule": f"{w['pool']}.{w['rule']}", "reason": None, "due_at": w["due_at"],
             "at": at} for w in warnings]
    if rows:
        conn.execute(insert(system[NOTIFICATION_TABLE]), rows)
    return len(rows)


def digests(events: Sequence[Event]) -> list[dict[str, Any]]:
    """One notification row per user told of the unit's batches, counting their records.

    Batches that tell one user the same thing (same kind, entity, actor, rule, reason
    and pool: e.g. one rule's batch held by one owner, or a leader's records assigned
    from several previous owners) add up into one row; ``record_id`` is the lowest id.
    """
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for event in events:
        if not isinstance(event, BatchEvent) or not event.record_ids:
            continue
        told = _told(event)
        if told is None:
            continue
        user, kind = told
        # a take names the pool the records went to; an assignment the one they left
        pool = _get(event.after if kind == TAKEN else event.before, "pool_id")
        key = (user, kind, event.entity, event.actor.user_id, event.via, event.reason, pool)
        first = min(event.record_ids)
        row = found.get(key)
        if row is None:
            found[key] = _row(user, kind, event, record_id=first,
                              record_count=len(event.record_ids), pool=pool)
        else:
            row["record_count"] += len(event.record_ids)
            row["record_id"] = min(row["record_id"], first)
    return list(found.values())


def deliver_batches(tx: Transaction, events: Sequence[Event]) -> int:
    """In-transaction hook: write the notifications of the unit's ``BatchEvent``s; how many.

    An assignment or a take tells one user the same thing for every record of the
    batch: one digest row per user (``digests``). A batch claim (who returned each
    record differs) goes per record, as after commit.
    """
    system = tx.service.schema.system
    target = system[NOTIFICATION_TABLE]
    rows = digests(events)
    if rows:
        tx.conn.execute(insert(target), rows)
    written = len(rows)
    for event in events:
        if isinstance(event, BatchEvent) and _told(event) is None and event.kind == "claim":
            written += insert_per_record(tx.conn, target,
                                         rows_for(tx.conn, system, event.events()),
                                         source_of=tx.service.schema.table)
    return written


def install(records: RecordService) -> None:
    """Register the hooks that write notifications: batches in their unit, the rest after."""

    def notify(events: Sequence[Event]) -> None:
        deliver(records, events)

    def notify_batches(tx: Transaction, events: Sequence[Event]) -> None:
        deliver_batches(tx, events)

    records.hooks.in_transaction(notify_batches, batches=True)
    records.hooks.after_commit(notify, batches=True)


# --- reading, always through the reader's permissions --------------------------------------


@dataclass(frozen=True)
class Shown:
    """A notification as one user may see it."""

    id: int
    kind: str
    entity: str
    record_id: int
    title: str | None  # None: the reader may not read the record (no title, no link)
    actor_name: str | None
    rule: str | None
    reason: str | None
    due_at: datetime | None
    at: datetime
    read: bool
    #: records this notice is about: above 1, a batch's digest (``record_id`` the first,
    #: ``title`` None: the screen links to a list, read through the reader's scope)
    count: int = 1
    pool: str | None = None


def _visible(records: RecordService, actor: Actor,
             wanted: Mapping[str, set[int]]) -> dict[tuple[str, int], str]:
    """(entity, id) -> title of the wanted records the actor may read now."""
    seen: dict[tuple[str, int], str] = {}
    for entity, ids in wanted.items():
        try:
            plan = records.plan(entity)
            title = plan.entity.title_field
            chunk = sorted(ids)
            for start in range(0, len(chunk), 200):
                page = records.list(actor, entity, ListQuery(
                    filters=(Filter("id", "in", chunk[start:start + 200]),), limit=200))
                for record in page.rows:
                    seen[(entity, record.id)] = str(record.get(title) or f"#{record.id}")
        except TidepoolError:
            continue  # no read grant (or the entity is gone): none of them is shown
    return seen


def _rows(records: RecordService, actor: Actor, *, unread_only: bool, limit: int,
          before_id: int | None) -> list[Any]:
    table = records.schema.system[NOTIFICATION_TABLE]
    users = records.schema.system[USER_TABLE]
    stmt = (select(table, users.c.display_name.label("actor_name"))
            .select_from(table.outerjoin(users, users.c.id == table.c.actor_id))
            .where(table.c.user_id == actor.user_id).order_by(table.c.id.desc()).limit(limit))
    if unread_only:
        stmt = stmt.where(table.c.read_at.is_(None))
    if before_id is not None:
        stmt = stmt.where(table.c.id < before_id)
    with records.engine.connect() as conn:
        return list(conn.execute(stmt))


def inbox(records: RecordService, actor: Actor, *, limit: int = PAGE_SIZE,
          before_id: int | None = None, unread_only: bool = False) -> list[Shown]:
    """The actor's newest notifications whose record they may still read."""
    if actor.user_id is None:
        return []
    rows = _rows(records, actor, unread_only=unread_only, limit=max(1, min(limit, 200)),
                 before_id=before_id)
    wanted: dict[str, set[int]] = {}
    for r in rows:
        wanted.setdefault(r.entity, set()).add(int(r.record_id))
    titles = _visible(records, actor, wanted)
    # A digest is checked by its first record as a single notice is, and names no
    # record (a count and a pool): its records are listed through the reader's own
    # scope when they follow the link.
    return [Shown(id=int(r.id), kind=r.kind, entity=r.entity, record_id=int(r.record_id),
                  title=titles.get((r.entity, int(r.record_id))) if _count(r) == 1 else None,
                  actor_name=r.actor_name, rule=r.rule, reason=r.reason, due_at=r.due_at,
                  at=r.at, read=r.read_at is not None, count=_count(r), pool=r.pool)
            for r in rows
            if (r.entity, int(r.record_id)) in titles or r.kind in LOST_KINDS]


def _count(row: Any) -> int:
    return int(row.record_count or 1)


def unread_count(records: RecordService, actor: Actor) -> int:
    """Unread notifications the actor may see, counted up to ``BELL_WINDOW``."""
    return len(inbox(records, actor, limit=BELL_WINDOW, unread_only=True))


def mark_read(records: RecordService, actor: Actor, ids: Sequence[int] | None = None, *,
              at: datetime) -> int:
    """Mark the actor's notifications ``ids`` (None: all of them) read; returns how many."""
    if actor.user_id is None:
        return 0
    table = records.schema.system[NOTIFICATION_TABLE]
    stmt = update(table).where(table.c.user_id == actor.user_id, table.c.read_at.is_(None))
    if ids is not None:
        wanted = [int(i) for i in ids][:1000]
        if not wanted:
            return 0
        stmt = stmt.where(table.c.id.in_(wanted))
    with records.engine.begin() as conn:
        return int(conn.execute(stmt.values(read_at=at)).rowcount)


__all__ = ["KINDS", "Shown", "deliver", "deliver_batches", "digests", "inbox", "install",
           "mark_read", "mentioned_logins", "notify_warnings", "rows_for", "unread_count"]
