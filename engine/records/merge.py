"""Merging duplicate records of one entity into one, and undoing a merge.

``merge(records, actor, entity, survivor_id, merged_ids, values=...)`` keeps the
survivor, gives it the chosen value of each field, points every reference to
the merged records at it (``_repoint``: child records, shares, stage history,
the feed, pool events, uploads, notifications and any other ``(entity,
record_id)`` table) and moves the merged records to the recycle bin as
tombstones that name the survivor (``tp_merged``). All of it is one unit of
work under the ``merge`` grant: the actor needs ``merge``, read and update on
the survivor and read and delete on each merged record, inside their row scopes.

``undo(records, actor, entity, merge_id)`` restores what the merge changed from
its snapshot (``tp_merge``): the merged rows as they were, the survivor's
prior values of the fields the merge set, and each re-pointed reference. It is
refused when a field the merge set has been changed since, when the survivor
was deleted or merged itself, or when a merged record's unique key is now held
by another record; edits since the merge to other fields are kept.

Versions only go forward: each restored row gets a new version (a form opened
on the merged state must not overwrite the restored one blindly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.actor import Actor
from engine.errors import (
    ForbiddenError,
    MergeConflictError,
    MergedRecordError,
    NotFoundError,
    ValidationError,
)
from engine.messages import M, message_of
from engine.metadata.model import FieldType
from engine.records import activity as feed
from engine.records import events as ev
from engine.records._plan import EntityPlan, same_value, utc
from engine.records._repoint import (
    Moves,
    Touched,
    decode_row,
    encode_row,
    put_back,
    repoint,
)
from engine.records._write import duplicates, reference_errors
from engine.records.coerce import CoercionError, InputSource, to_json
from engine.records.record import Record
from engine.storage.merge_tables import MERGE_TABLE, MERGED_TABLE

if TYPE_CHECKING:
    from engine.records.service import RecordService
    from engine.records.transaction import Transaction

#: How many records one merge may fold into the survivor.
MAX_MERGED = 20
#: Merges of merges followed when a merged id is resolved.
MAX_CHAIN = 10
MERGE = "merge"
UNMERGE = "unmerge"


@dataclass(frozen=True)
class MergeResult:
    """A merge that happened (or was undone): what the result page and the API show."""

    id: int
    entity: str
    survivor_id: int
    merged_ids: tuple[int, ...]
    actor_id: int | None
    at: datetime
    undone_at: datetime | None
    references: int          # pointers re-pointed (children, shares, feed, ...)
    fields: tuple[str, ...]  # the survivor's fields the merge changed


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _ids(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _check_request(plan: EntityPlan, survivor_id: Any, merged_ids: Sequence[Any]) -> list[int]:
    errors: dict[str, str] = {}
    if not plan.soft_delete:
        raise ForbiddenError(plan.name, MERGE, M("merging needs a recycle bin "
                                                 "(soft_delete) to keep the tombstones"))
    if not _ids(survivor_id):
        errors["survivor_id"] = M("must be a record id")
    wanted = list(merged_ids) if isinstance(merged_ids, (list, tuple)) else []
    if not wanted or not all(_ids(i) for i in wanted):
        errors["merged_ids"] = M("give the ids of one or more records to merge")
    elif len(set(wanted)) != len(wanted):
        errors["merged_ids"] = M("names a record twice")
    elif survivor_id in wanted:
        errors["merged_ids"] = M("cannot include the record that stays")
    elif len(wanted) > MAX_MERGED:
        errors["merged_ids"] = M("at most %(n)s records at once", n=MAX_MERGED)
    if errors:
        raise ValidationError(plan.name, errors)
    return [int(i) for i in wanted]


def _check_grants(records: RecordService, actor: Actor, plan: EntityPlan) -> None:
    for action in (MERGE, "read", "update", "delete"):
        records.policy.check_action(actor, plan.entity, action)


def _locked_rows(conn: Connection, plan: EntityPlan, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The raw column values of the rows, locked until the unit ends (PostgreSQL)."""
    table = plan.table
    rows = conn.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.id)
                        .with_for_update()).mappings().all()
    return {int(r["id"]): dict(r) for r in rows}


def _values_of(plan: EntityPlan, raw: Mapping[str, Any]) -> dict[str, Any]:
    return plan.to_values(tuple(raw[c.name] for c in plan.select_columns))


def choose_values(plan: EntityPlan, rows: Mapping[int, Mapping[str, Any]], *, survivor_id: int,
                  chosen: Mapping[str, Any], writable: frozenset[str]) -> dict[str, Any]:
    """The survivor's value of each field the actor may write.

    ``chosen`` maps a field to the id of the record whose value it takes, or to
    ``{"value": ...}`` for a value typed in (JSON form). A field left out takes
    the newest non-empty value (records by ``updated_at``, then id).
    """
    errors: dict[str, str] = {}
    newest = sorted(rows, key=lambda i: (rows[i]["updated_at"], i), reverse=True)
    out: dict[str, Any] = {}
    for name in chosen:
        if name not in plan.fields:
            errors[name] = M("unknown field %(name)s", name=repr(name))
        elif name not in writable:
            errors[name] = M("is read-only for you")
    for name in sorted(writable):
        fp = plan.fields[name]
        pick = chosen.get(name)
        if name in chosen and isinstance(pick, Mapping):
            if set(pick) != {"value"}:
                errors[name] = M("give a record id or {\"value\": ...}")
                continue
            if fp.field.type is FieldType.FILE and pick["value"] is not None:
                # A typed-in file value could name any stored file (docs/security.md#files).
                errors[name] = M("choose the record whose file it keeps")
                continue
            try:
                value = fp.coerce(pick["value"], InputSource.JSON)
            except CoercionError as exc:
                errors[name] = message_of(exc)
                continue
            problem = fp.check(value) if value is not None else None
            if problem is not None:
                errors[name] = problem
                continue
            out[name] = value
        elif name in chosen:
            if not isinstance(pick, int) or isinstance(pick, bool) or pick not in rows:
                errors[name] = M("must name one of the records being merged")
                continue
            out[name] = rows[pick][name]
        else:
            out[name] = next((rows[i][name] for i in newest if not _empty(rows[i][name])),
                             rows[survivor_id][name])
        if fp.field.required and _empty(out[name]):
            errors[name] = M("is required")
    if errors:
        raise ValidationError(plan.name, errors)
    return out


def merge(records: RecordService, actor: Actor, entity: str, survivor_id: int,
          merged_ids: Sequence[int], *, values: Mapping[str, Any] | None = None) -> MergeResult:
    """Merge ``merged_ids`` into ``survivor_id`` in one unit of work (see the module)."""
    with records.transaction(actor) as tx:
        return merge_in(tx, entity, survivor_id, merged_ids, values=values or {})


def merge_in(tx: Transaction, entity: str, survivor_id: int, merged_ids: Sequence[int], *,
             values: Mapping[str, Any]) -> MergeResult:
    """``merge`` inside an open unit of work."""
    records, actor, conn = tx.service, tx.actor, tx.conn
    plan = records.plan(entity)
    merged = _check_request(plan, survivor_id, merged_ids)
    _check_grants(records, actor, plan)
    if not isinstance(values, Mapping):
        raise ValidationError(plan.name, {"values": M("must be an object")})
    for record_id in (survivor_id, *merged):
        action = "update" if record_id == survivor_id else "delete"
        for needed in (action, MERGE):
            records._writable_row(conn, plan, actor, record_id, action=needed, version=None,
                                  deleted=False)
    raw = _locked_rows(conn, plan, [survivor_id, *merged])
    if len(raw) != len(merged) + 1 or any(r["deleted_at"] is not None for r in raw.values()):
        # A concurrent merge or delete committed while this one waited for the locks.
        raise MergeConflictError(plan.name, None, M(
            "some of these records were merged or deleted meanwhile; reload and try again"))
    before = {i: _values_of(plan, r) for i, r in raw.items()}
    hidden = records.policy.hidden_fields(actor, plan.entity)
    readonly = records.policy.readonly_fields(actor, plan.entity) | hidden
    writable = frozenset(n for n in plan.writable if n not in readonly)
    chosen = choose_values(plan, before, survivor_id=survivor_id, chosen=values,
                           writable=writable)
    old = before[survivor_id]
    changed = {n: v for n, v in chosen.items() if not same_value(old.get(n), v)}
    now = records.clock()
    table = plan.table
    unique_fields = {f for spec in plan.uniques for f in spec.fields}
    try:
        # The tombstones give up their unique keys first, so the survivor may take one.
        for record_id in merged:
            freed = plan.to_columns({f: None for f in unique_fields
                                     if before[record_id].get(f) is not None}, {})
            conn.execute(update(table).where(table.c.id == record_id)
                         .values(**freed, deleted_at=now, updated_at=now,
                                 version=table.c.version + 1))
        new = {**old, **changed}
        errors: dict[str, str] = {}
        reference_errors(conn, records.schema, plan, [new], names=changed, bulk=False,
                         errors=errors, scope=records._reference_scope(actor))
        if errors:
            raise ValidationError(plan.name, errors)
        touched = [s for s in plan.uniques if any(f in changed for f in s.fields)]
        dups = duplicates(conn, plan, [new], exclude_id=survivor_id, specs=touched)
        if dups:
            raise records._duplicate_error(plan, dups[0], records._seen(conn, actor, plan, dups))
        records._bump(conn, plan, survivor_id, version=int(old["version"]), now=now,
                      columns=plan.to_columns(changed, {}))
        moves, children = repoint(conn, records.schema, plan.name, merged, survivor_id)
    except IntegrityError as exc:
        raise MergeConflictError(plan.name, None, M(
            "moving the references would give two records the same unique key; "
            "merge or correct those records first")) from exc
    after = _values_of(plan, _locked_rows(conn, plan, [survivor_id])[survivor_id])
    snapshot = {
        "merged": {str(i): encode_row(raw[i]) for i in merged},
        "survivor": encode_row(raw[survivor_id]),
        "fields": sorted(changed),
        "set": {n: to_json(plan.fields[n].field, after[n]) for n in changed},
        "version": int(after["version"]),
        "moves": moves.to_json(),
    }
    merge_id = int(conn.execute(insert(records.schema.system[MERGE_TABLE]).values(
        entity=plan.name, survivor_id=survivor_id, merged_ids=merged, snapshot=snapshot,
        actor_id=actor.user_id, at=now).returning(
            records.schema.system[MERGE_TABLE].c.id)).scalar_one())
    conn.execute(insert(records.schema.system[MERGED_TABLE]), [
        {"entity": plan.name, "merged_id": i, "merge_id": merge_id, "survivor_id": survivor_id,
         "created_at": raw[i]["created_at"]} for i in merged])
    _feed_and_events(tx, plan, kind=MERGE, survivor_id=survivor_id, merged=merged,
                     before=before, after=after, changed=changed, children=children, now=now)
    return MergeResult(merge_id, plan.name, survivor_id, tuple(merged), actor.user_id, now,
                       None, moves.count, tuple(sorted(changed)))


def _feed_and_events(tx: Transaction, plan: EntityPlan, *, kind: str, survivor_id: int,
                     merged: Sequence[int], before: Mapping[int, Mapping[str, Any]],
                     after: Mapping[str, Any], changed: Mapping[str, Any],
                     children: Touched, now: datetime) -> None:
    """One feed entry on the survivor; write events for every record touched."""
    tx.log(plan, survivor_id, kind, at=now, changes=feed.diff(plan, before[survivor_id], changed),
           body=", ".join(f"#{i}" for i in merged))
    tx.event(plan, survivor_id, ev.UPDATE, before=before[survivor_id], after=after, at=now)
    records, conn = tx.service, tx.conn
    for record_id in merged:
        stored = records._read_back(conn, plan, record_id)
        tx.event(plan, record_id, ev.DELETE if kind == MERGE else ev.RESTORE,
                 before=before[record_id], after=stored, at=now)
    for child, previous in children.items():
        cplan = records.plan(child)
        ids = sorted(previous)
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start:chunk_start + 500]
            for row in conn.execute(cplan.select_all.where(cplan.table.c.id.in_(chunk))):
                values = cplan.to_values(row)
                child_id = int(values["id"])
                # Derived values (rollups) see the reference move from the old target.
                old = {**values, **previous[child_id], "version": int(values["version"]) - 1}
                tx.event(cplan, child_id, ev.UPDATE, before=old, after=values, at=now)


def undo(records: RecordService, actor: Actor, entity: str, merge_id: int) -> MergeResult:
    """Undo merge ``merge_id`` in one unit of work (see the module)."""
    with records.transaction(actor) as tx:
        return undo_in(tx, entity, merge_id)


def _ledger_row(conn: Connection, records: RecordService, entity: str,
                merge_id: Any) -> Mapping[str, Any]:
    table = records.schema.system[MERGE_TABLE]
    if not _ids(merge_id):
        raise NotFoundError("merge", merge_id)
    row = conn.execute(select(table).where(table.c.id == merge_id, table.c.entity == entity)
                       .with_for_update()).mappings().first()
    if row is None:
        raise NotFoundError("merge", merge_id)
    return dict(row)


def undo_in(tx: Transaction, entity: str, merge_id: int) -> MergeResult:
    """``undo`` inside an open unit of work."""
    records, actor, conn = tx.service, tx.actor, tx.conn
    plan = records.plan(entity)
    _check_grants(records, actor, plan)
    ledger = _ledger_row(conn, records, plan.name, merge_id)
    survivor_id = int(ledger["survivor_id"])
    merged = [int(i) for i in ledger["merged_ids"]]
    # Whoever may not see the survivor may not know the merge either.
    if records._scoped_row(conn, plan, actor, survivor_id, action=None, deleted=None) is None:
        raise NotFoundError("merge", merge_id)
    if ledger["undone_at"] is not None:
        raise MergeConflictError(plan.name, merge_id, M("this merge was already undone"))
    snapshot = ledger["snapshot"]
    raw = _locked_rows(conn, plan, [survivor_id, *merged])
    current = raw.get(survivor_id)
    if current is None or current["deleted_at"] is not None:
        onward = merged_into(conn, records, plan.name, survivor_id)
        if onward is not None:
            raise MergeConflictError(plan.name, merge_id, M(
                "the record that stayed (#%(id)s) was merged into #%(into)s since; undo "
                "that merge first", id=survivor_id, into=onward))
        raise MergeConflictError(plan.name, merge_id, M(
            "the record that stayed (#%(id)s) was deleted since; restore it first",
            id=survivor_id))
    for needed in ("update", MERGE):
        records._writable_row(conn, plan, actor, survivor_id, action=needed, version=None,
                              deleted=False)
    for record_id in merged:
        for needed in ("delete", MERGE):
            records._writable_row(conn, plan, actor, record_id, action=needed, version=None,
                                  deleted=True)
    now_values = _values_of(plan, current)
    fields = [n for n in snapshot["fields"] if n in plan.fields]
    edited = [n for n in fields
              if to_json(plan.fields[n].field, now_values.get(n)) != snapshot["set"].get(n)]
    if edited:
        raise MergeConflictError(plan.name, merge_id, M(
            "%(fields)s of #%(id)s changed since the merge; set them back or edit the "
            "records by hand", fields=", ".join(plan.fields[n].field.label.get() or n
                                                 for n in edited), id=survivor_id))
    for record_id in merged:
        row = raw.get(record_id)
        if row is None or row["deleted_at"] is None:
            raise MergeConflictError(plan.name, merge_id, M(
                "#%(id)s is no longer a merged tombstone", id=record_id))
    now = records.clock()
    table = plan.table
    prior = decode_row(snapshot["survivor"])
    before = {i: _values_of(plan, r) for i, r in raw.items()}
    columns = {c: prior[c] for n in fields for c in _columns_of(plan, n)
               if c in prior and c in table.c}
    unchanged_since = int(current["version"]) == int(snapshot["version"])
    # Nothing else changed since the merge: the survivor is as it was, times included.
    stamp = prior["updated_at"] if unchanged_since else now
    conn.execute(update(table).where(table.c.id == survivor_id)
                 .values(**columns, updated_at=stamp, version=table.c.version + 1))
    try:
        for record_id in merged:
            # Columns a metadata change removed since the merge are left out.
            row = {k: v for k, v in decode_row(snapshot["merged"][str(record_id)]).items()
                   if k in table.c and k not in ("id", "version")}
            conn.execute(update(table).where(table.c.id == record_id)
                         .values(**row, version=table.c.version + 1))
    except IntegrityError as exc:
        raise MergeConflictError(plan.name, merge_id, M(
            "a unique value of a merged record is now held by another record; free it "
            "first")) from exc
    moves = Moves.from_json(snapshot["moves"])
    children, _skipped = put_back(conn, records.schema, plan.name, moves, survivor_id)
    conn.execute(delete(records.schema.system[MERGED_TABLE])
                 .where(records.schema.system[MERGED_TABLE].c.merge_id == merge_id))
    ledger_table = records.schema.system[MERGE_TABLE]
    conn.execute(update(ledger_table).where(ledger_table.c.id == merge_id)
                 .values(undone_at=now, undone_by=actor.user_id))
    after = records._read_back(conn, plan, survivor_id)
    restored = {n: after[n] for n in fields}
    _feed_and_events(tx, plan, kind=UNMERGE, survivor_id=survivor_id, merged=merged,
                     before=before, after=after, changed=restored, children=children, now=now)
    return MergeResult(int(merge_id), plan.name, survivor_id, tuple(merged),
                       ledger["actor_id"], ledger["at"], now, moves.count, tuple(fields))


def _columns_of(plan: EntityPlan, name: str) -> tuple[str, ...]:
    fp = plan.fields[name]
    keyed = plan.match_keys.get(name)
    return fp.columns + ((keyed[0],) if keyed is not None and keyed[0] not in fp.columns
                         else ())


def merged_into(conn: Connection, records: RecordService, entity: str,
                record_id: int) -> int | None:
    """The live record a merged id now resolves to (following merges of merges)."""
    table = records.schema.system[MERGED_TABLE]
    found: int | None = None
    current = record_id
    for _ in range(MAX_CHAIN):
        nxt = conn.execute(select(table.c.survivor_id).where(
            table.c.entity == entity, table.c.merged_id == current)).scalar_one_or_none()
        if nxt is None:
            break
        found = current = int(nxt)
    return found


def check_merged(records: RecordService, actor: Actor, entity: str, record_id: Any) -> None:
    """Raise ``MergedRecordError`` when ``record_id`` was merged and the actor may know it.

    Called where a record was not found: the tombstone must be one the actor
    could read (from the recycle bin), so an id they never saw tells them nothing.
    """
    if not _ids(record_id):
        return
    plan = records.plan(entity)
    with records.engine.connect() as conn:
        survivor = merged_into(conn, records, plan.name, record_id)
        if survivor is None:
            return
        if records._scoped_row(conn, plan, actor, record_id, action=None,
                               deleted=True) is None:
            return
    raise MergedRecordError(plan.name, record_id, survivor_id=survivor)


def feed_since(conn: Connection, records: RecordService, entity: str, record: Record) -> Any:
    """Where a record's feed starts: its creation, or an older merged record's."""
    table = records.schema.system[MERGED_TABLE]
    oldest = conn.execute(select(func.min(table.c.created_at)).where(
        table.c.entity == entity, table.c.survivor_id == record.id)).scalar_one_or_none()
    since = record["created_at"]
    if oldest is not None and since is not None:
        oldest = utc(oldest)
        return min(since, oldest)
    return since


def merges_of(records: RecordService, actor: Actor, entity: str, survivor_id: int, *,
              limit: int = 20) -> list[MergeResult]:
    """The merges into a record the actor may read, newest first (the record's page)."""
    records.get(actor, entity, survivor_id, include_deleted=True)
    table = records.schema.system[MERGE_TABLE]
    with records.engine.connect() as conn:
        rows = conn.execute(select(table).where(
            and_(table.c.entity == entity, table.c.survivor_id == survivor_id))
            .order_by(table.c.id.desc()).limit(limit)).mappings().all()
    return [_result(dict(r)) for r in rows]


def get_merge(records: RecordService, actor: Actor, entity: str, merge_id: Any) -> MergeResult:
    """One merge, if the actor may read its survivor (else ``NotFoundError``)."""
    plan = records.plan(entity)
    records.policy.check_action(actor, plan.entity, "read")
    table = records.schema.system[MERGE_TABLE]
    if not _ids(merge_id):
        raise NotFoundError("merge", merge_id)
    with records.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == merge_id,
                                               table.c.entity == plan.name)).mappings().first()
        if row is None or records._scoped_row(conn, plan, actor, int(row["survivor_id"]),
                                              action=None, deleted=None) is None:
            raise NotFoundError("merge", merge_id)
    return _result(dict(row))


def _result(row: Mapping[str, Any]) -> MergeResult:
    snapshot = row["snapshot"]
    return MergeResult(int(row["id"]), row["entity"], int(row["survivor_id"]),
                       tuple(int(i) for i in row["merged_ids"]), row["actor_id"], row["at"],
                       row["undone_at"], Moves.from_json(snapshot["moves"]).count,
                       tuple(snapshot["fields"]))
