"""The records service: the one way every read and write of entity rows goes.

Each call checks the action with the access policy, ANDs the policy's row scope
into its statement, validates payloads against the field definitions, keeps
unique keys unique, locks optimistically with ``version`` and writes the
activity feed in the same transaction as the change. Nothing partial is ever
written: any error rolls the whole call back.
"""

from __future__ import annotations

import builtins
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import True_

from engine.access import AccessPolicy, Unrestricted
from engine.actor import Actor
from engine.errors import (
    HIDDEN_HOLDER,
    ConflictError,
    DuplicateError,
    ForbiddenError,
    NotFoundError,
    QueryError,
    ValidationError,
)
from engine.messages import M, message_of
from engine.metadata.model import FieldType
from engine.records import _scope_checks as scope_checks
from engine.records import activity as feed
from engine.records import aggregate, stages, uploads
from engine.records import events as ev
from engine.records import merge as merging
from engine.records._bulk import RowInserter
from engine.records._cascade import remove_dependents
from engine.records._gc import paused_collection
from engine.records._plan import EntityPlan, same_value
from engine.records._point import RECORD_ID, point_statement
from engine.records._union import union_page
from engine.records._write import (
    Duplicate,
    RowKeys,
    RowPreparer,
    duplicates,
    key,
    payload_errors,
    reference_errors,
)
from engine.records.autonumber import reserve
from engine.records.coerce import CoercionError, InputSource
from engine.records.dedup import DedupWarning, describe, matches, probe_values
from engine.records.dedup_groups import GroupPage, bases, group_page
from engine.records.hooks import WriteHooks
from engine.records.query import (
    Filter,
    ListQuery,
    Page,
    Sort,
    SortPlan,
    ValuesPage,
    as_query,
    check_limit,
    decode_token,
    encode_token,
    sort_plan,
    where_clauses,
)
from engine.records.record import Record
from engine.records.transaction import Transaction, unit_of_work
from engine.storage.database import write_transaction
from engine.storage.direct import direct_rows, direct_values
from engine.storage.fanout import among
from engine.storage.identity_tables import DEPARTMENT_TABLE
from engine.storage.stage_tables import STAGE_HISTORY_TABLE
from engine.storage.system_tables import USER_TABLE
from engine.storage.tables import StorageSchema
from engine.storage.upload_tables import UPLOAD_TABLE

ACTIVITY_TABLE = "tp_activity"
SEQUENCE_TABLE = "tp_sequence"
DEFAULT_COUNT_CAP = 10_000
MAX_ACTIVITY_LIMIT = 200
#: Prebuilt list statements kept per service (shapes x scope branches), least
#: recently used dropped first: each user's scope has its own branches, so a
#: busy server needs room for a few per active user.
MAX_CACHED_STATEMENTS = 4096
#: Sort plans kept per service before the map is emptied.
MAX_CACHED_SORTS = 1024
MAX_COMMENT_LENGTH = 10_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def actor_zone(actor: Actor) -> tzinfo:
    """The actor's zone (UTC when the name is unknown: a default must not fail a write)."""
    try:
        return ZoneInfo(actor.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _live_branches(branches: tuple[ColumnElement[bool], ...]) -> list[ColumnElement[bool]]:
    # A true() branch adds nothing to a WHERE; leaving it out keeps statements lean.
    return [b for b in branches if not isinstance(b, True_)]


class RecordService:
    """Create, read, update, delete, restore and list records of any entity."""

    def __init__(self, *, engine: Engine, schema: StorageSchema,
                 policy: AccessPolicy | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.schema = schema
        self.policy: AccessPolicy = policy if policy is not None else Unrestricted()
        self.clock = clock
        self._plans: dict[str, EntityPlan] = {}
        self._preparers: dict[tuple[str, InputSource], RowPreparer] = {}
        self._inserter = RowInserter(schema.system[ACTIVITY_TABLE])
        self._statements: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._statements_lock = threading.Lock()  # handlers run in a thread pool
        #: sort plans by (entity, field, descending, hidden fields): a pure function of
        #: them, asked on every page (a lost insert across threads is a rebuild)
        self._sorts: dict[tuple[str, str, bool, frozenset[str]], SortPlan] = {}
        #: The write hooks (engine/records/hooks.py); providers register on it.
        self.hooks = WriteHooks()

    # --- plumbing -------------------------------------------------------------

    @contextmanager
    def transaction(self, actor: Actor, *, via: str | None = None) -> Iterator[Transaction]:
        """A unit of work: several writes, one connection, one transaction, one activity batch.

        ``with records.transaction(actor) as tx: tx.create(...); tx.update(...)``.
        The write hooks run before COMMIT (in-transaction) and after it
        (after-commit); any error rolls the whole unit back. ``via`` names the
        rule or job behind a system write (default: ``actor.via``).
        """
        with unit_of_work(self, actor, via=via) as tx:
            yield tx

    def plan(self, entity: str) -> EntityPlan:
        """The precomputed plan of an entity (built on first use, then reused)."""
        found = self._plans.get(entity)
        if found is None:
            if entity not in self.schema.tables:
                raise NotFoundError("entity", entity)
            found = self._plans[entity] = EntityPlan(self.schema, self.schema.registry.entity(entity))
        return found

    def stage_rules(self, entity: str, pipeline: str | None = None) -> stages.StageRules | None:
        """The stage machine of one pipeline of an entity: ``pipeline`` by name, else the
        default one (None for other entities and unknown names)."""
        if pipeline is None:
            return stages.rules_for(self.schema.registry, self.plan(entity))
        pipelines = self.pipelines(entity)
        return pipelines.named(pipeline) if pipelines is not None else None

    def pipelines(self, entity: str) -> stages.EntityPipelines | None:
        """Every pipeline of an entity and how a record picks one (None: not pipelined)."""
        return stages.pipelines_for(self.schema.registry, self.plan(entity))

    def _preparer(self, plan: EntityPlan, source: InputSource) -> RowPreparer:
        source = InputSource(source)
        found = self._preparers.get((plan.name, source))
        if found is None:
            found = self._preparers[(plan.name, source)] = RowPreparer(plan, source)
        return found

    def _record(self, plan: EntityPlan, values: dict[str, Any], hidden: frozenset[str]) -> Record:
        for name in hidden:
            values.pop(name, None)
        return Record(plan.name, values)

    def _scoped_row(self, conn: Connection, plan: EntityPlan, actor: Actor, record_id: Any, *,
                    action: str | None, deleted: bool | None) -> tuple[Row[Any], bool] | None:
        """The row if the actor may read it, and whether ``action`` is allowed on it too.

        ``deleted``: False = live rows only, True = recycle bin only, None = both.
        """
        stmt = self._point(plan, actor, record_id, action=action, deleted=deleted)
        if stmt is None:
            return None
        row = conn.execute(stmt, {RECORD_ID: record_id}).first()
        if row is None:
            return None
        return row, bool(row[-1])

    def _point(self, plan: EntityPlan, actor: Actor, record_id: Any, *, action: str | None,
               deleted: bool | None) -> Any:
        """``_scoped_row``'s statement (None: the actor can read no such record)."""
        if not isinstance(record_id, int) or isinstance(record_id, bool):
            return None
        table = plan.table
        read = self.policy.row_scope(actor, plan.entity, table, "read")
        if read.is_empty:
            return None
        allowed = None
        if action is not None:
            scope = self.policy.row_scope(actor, plan.entity, table, action)
            allowed = () if scope.is_empty else scope.branches
        # Built once per scope shape (engine/records/_point.py); only the id is bound.
        return point_statement(plan, read.branches, allowed, deleted=deleted)

    def _reference_scope(self, actor: Actor) -> Callable[[str], tuple[Any, Any]]:
        """The actor's read scope per entity: what a reference they write may name."""
        return scope_checks.scope_for(self.policy, actor, self.schema.registry,
                                      self.schema.table, "read")

    def _read_back(self, conn: Connection, plan: EntityPlan, record_id: int) -> dict[str, Any]:
        """The stored values of a record just written (for its event and the caller)."""
        return plan.to_values(conn.execute(
            plan.select_all.where(plan.table.c.id == record_id)).one())

    def _seen(self, conn: Connection, actor: Actor, plan: EntityPlan,
              dups: Sequence[Duplicate]) -> set[int]:
        """The holders of duplicate keys that the actor may know about (read)."""
        return scope_checks.readable_ids(conn, self.policy, actor, plan,
                                         (d.existing_id for d in dups
                                          if d.existing_id is not None))

    def dedup_warnings(self, actor: Actor, entity: str, rows: Sequence[Mapping[str, Any]], *,
                       source: InputSource = InputSource.JSON,
                       exclude_id: int | None = None,
                       conn: Connection | None = None) -> list[DedupWarning]:
        """Possible duplicates of ``rows`` (input values, one dict per record) under the
        entity's fuzzy ``dedup.warn`` rules, as ``actor`` may be told about them.

        A warning, never a refusal: callers show it and let the user save anyway.
        ``exclude_id`` is the record being edited (it does not match itself); ``conn``
        lets a caller check inside its own transaction. Stable: forms, the API, bulk
        and import results, pool release and conversion all call this.
        """
        plan = self.plan(entity)
        if not plan.entity.dedup_rules or not rows:
            return []
        probes = [probe_values(plan, r, source=source) for r in rows]
        if not any(probes):
            return []  # no row carries a value the rules read (e.g. an update of others)

        def run(c: Connection) -> list[DedupWarning]:
            found = matches(c, self.plan, entity, probes, exclude_id=exclude_id)
            if not found:
                return []
            return describe(c, self.policy, actor, self.plan, found,
                            department=self.schema.system[DEPARTMENT_TABLE],
                            user=self.schema.system[USER_TABLE])

        if conn is not None:
            return run(conn)
        with self.engine.connect() as own:
            return run(own)

    def duplicate_candidates(self, actor: Actor, entity: str, *, basis: str | None = None,
                             after: str | None = None, limit: int = 20) -> GroupPage | None:
        """Stored records that share a name stem or match key, grouped (None: the entity
        declares nothing to group on). Needs the merge grant; only rows inside the
        actor's merge scope are grouped, so every group is one they may merge."""
        plan = self.plan(entity)
        self.policy.check_action(actor, plan.entity, "merge")
        choices = bases(plan.entity)
        chosen = next((b for b in choices if b.name == basis), None) if basis else \
            (choices[0] if choices else None)
        if chosen is None:
            if basis:
                raise QueryError(entity, "basis", M("no duplicate rule %(name)s", name=repr(basis)))
            return None
        scope = self.policy.row_scope(actor, plan.entity, plan.table, "merge")
        with self.engine.connect() as conn:
            return group_page(conn, plan, chosen, scope.branches, after=after, limit=limit,
                              titles=plan.entity.title_field not in
                              self.policy.hidden_fields(actor, plan.entity))

    def _duplicate_error(self, plan: EntityPlan, dup: Duplicate, seen: set[int]) -> DuplicateError:
        return DuplicateError(plan.name, key=dup.spec.name, fields=dup.spec.fields,
                              values=dup.values,
                              existing_id=dup.existing_id if dup.existing_id in seen else None)

    def _bulk_duplicate_errors(self, plan: EntityPlan, dups: Sequence[Duplicate],
                               seen: set[int]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for d in dups:
            shown = ", ".join(f"{f}={v!r}" for f, v in d.values.items())
            where = f"row {d.earlier_row}" if d.earlier_row is not None else \
                f"id {d.existing_id}" if d.existing_id in seen else HIDDEN_HOLDER
            errors.setdefault(key(d.index, d.spec.fields[0]),
                              f"{shown} already exists ({where})")
        return errors

    def _after_race(self, actor: Actor, plan: EntityPlan, rows: Sequence[Mapping[str, Any]], *,
                    exclude_id: int | None, bulk: bool, exc: IntegrityError) -> Exception:
        """Turn a unique-constraint violation (a concurrent writer won) into our error."""
        with self.engine.connect() as conn:
            dups = [d for d in duplicates(conn, plan, rows, exclude_id=exclude_id)
                    if d.existing_id is not None]
            seen = self._seen(conn, actor, plan, dups)
        if not dups:
            return exc
        if bulk:
            return ValidationError(plan.name, self._bulk_duplicate_errors(plan, dups, seen))
        return self._duplicate_error(plan, dups[0], seen)

    # --- create -----------------------------------------------------------------

    def create(self, actor: Actor, entity: str, values: Mapping[str, Any], *,
               source: InputSource = InputSource.JSON) -> Record:
        """Validate and insert one record; returns it as stored."""
        with self.transaction(actor) as tx:
            return tx.create(entity, values, source=source)

    def _create(self, tx: Transaction, entity: str, values: Mapping[str, Any], *,
                source: InputSource) -> Record:
        actor = tx.actor
        plan = self.plan(entity)
        self.policy.check_action(actor, plan.entity, "create")
        hidden = self.policy.hidden_fields(actor, plan.entity)
        record: list[Record] = []

        def read_back(conn: Connection, ids: list[int], now: datetime) -> None:
            stored = self._read_back(conn, plan, ids[0])
            tx.event(plan, ids[0], ev.CREATE, before=None, after=dict(stored), at=now)
            record.append(self._record(plan, stored, hidden))

        self._insert(tx, plan, [values], source=source, bulk=False, read_back=read_back)
        return record[0]

    def bulk_create(self, actor: Actor, entity: str, rows: Sequence[Mapping[str, Any]], *,
                    source: InputSource = InputSource.JSON) -> list[int]:
        """Insert many records in one transaction, all or nothing; returns their ids in order.

        A bad row raises one ``ValidationError`` whose keys name the row and
        field (``"3.phone"``); duplicates within the batch or against stored
        records are reported the same way.
        """
        # Bounded by the caller's batch; the hooks at commit allocate per row too. The
        # pause ends after the transaction (and its events) is gone: what is still
        # alive when collection resumes is scanned at once (5 ms per 5,000 rows).
        with paused_collection():
            return self._bulk_create_unit(actor, entity, rows, source=source)

    def _bulk_create_unit(self, actor: Actor, entity: str, rows: Sequence[Mapping[str, Any]],
                          *, source: InputSource) -> list[int]:
        with self.transaction(actor) as tx:
            return tx.bulk_create(entity, rows, source=source)

    def _bulk_create(self, tx: Transaction, entity: str, rows: Sequence[Mapping[str, Any]], *,
                     source: InputSource) -> list[int]:
        plan = self.plan(entity)
        self.policy.check_action(tx.actor, plan.entity, "create")
        if not rows:
            return []
        return self._insert(tx, plan, rows, source=source, bulk=True, read_back=None)

    def _insert(self, tx: Transaction, plan: EntityPlan, payloads: Sequence[Mapping[str, Any]],
                *, source: InputSource, bulk: bool,
                read_back: Callable[[Connection, list[int], datetime], None] | None
                ) -> list[int]:
        actor = tx.actor
        now = self.clock()
        errors: dict[str, str] = {}
        readonly = self.policy.readonly_fields(actor, plan.entity) | \
            self.policy.hidden_fields(actor, plan.entity)
        # File values name uploads the server issued; bound to the new rows below.
        upload_errors: dict[str, str] = {}
        payloads, taken = uploads.resolve(tx.conn, self.schema.system[UPLOAD_TABLE], plan,
                                          actor, payloads, source=source, bulk=bulk,
                                          errors=upload_errors)
        pipelines = stages.pipelines_for(self.schema.registry, plan)
        if pipelines is not None:  # a payload may name the stage a new record starts in
            payloads, wanted = stages.split_stage(payloads)
        preparer = self._preparer(plan, source)
        rows = preparer.prepare(
            payloads, now=now.astimezone(actor_zone(actor)), readonly=readonly,
            owner_default=actor.user_id, bulk=bulk, errors=errors)
        starts: list[str] | None = None
        if pipelines is not None:
            starts = stages.starting(pipelines, plan, rows, wanted, readonly=readonly,
                                     bulk=bulk, errors=errors)
        errors.update(upload_errors)
        conn = tx.conn
        try:
            reference_errors(conn, self.schema, plan, rows, names=None, bulk=bulk,
                             errors=errors, scope=self._reference_scope(actor))
            if errors:
                raise ValidationError(plan.name, errors)
            # Match keys and stems once per row: for the duplicate check and the insert.
            derived = preparer.compiled.derived(rows)
            dups = duplicates(conn, plan, rows,
                              row_keys=preparer.compiled.unique_keys(rows, derived))
            if dups:
                seen = self._seen(conn, actor, plan, dups)
                if bulk:
                    raise ValidationError(plan.name,
                                          self._bulk_duplicate_errors(plan, dups, seen))
                raise self._duplicate_error(plan, dups[0], seen)
            owner_keys = RowKeys("owner_id", len(rows), bulk=bulk)
            # Before the hooks: rows given away without the assign grant waste their work.
            errors = scope_checks.given_away_errors(self.policy, actor, plan, rows=rows,
                                                    keys=owner_keys)
            if errors:
                raise ValidationError(plan.name, errors)
            self._number(conn, plan, rows, now)
            # Hooks that decide stored columns of new rows (a pool's distribution) decide
            # them now, so each row is written once (engine/records/hooks.py).
            after_insert = [found for handler in self.hooks.before_insert_handlers
                            if (found := handler(tx, plan.name, rows, now)) is not None]
            ids = self._inserter.insert(conn, plan, rows, actor_id=actor.user_id, now=now,
                                        via=tx.via, derived=None if
                                        preparer.compiled.numbered_keys else derived)
            # Checked on the written rows, in this transaction: refused rows roll back.
            # (The scopes read what the hooks decided, such as a pool.)
            errors = scope_checks.owner_errors(conn, self.policy, actor, plan, rows=rows,
                                               ids=ids, keys=owner_keys)
            uploads.attach(conn, self.schema.system[UPLOAD_TABLE], taken, ids=ids, now=now,
                           errors=errors)
            if errors:
                raise ValidationError(plan.name, errors)
            if starts is not None and plan.initial_stage is not None:
                stages.place_new(conn, plan, self.schema.system[STAGE_HISTORY_TABLE],
                                 ids=ids, stages=starts, initial=plan.initial_stage, at=now,
                                 by=actor.user_id)
            if read_back is not None:
                read_back(conn, ids, now)
            else:
                self._created_events(tx, plan, ids, rows, starts, now)
            # After the creates' events: theirs follow them. Inside the handler: a
            # unique key that a concurrent writer took meanwhile (a reown) is reported
            # as the insert's would be.
            for then in after_insert:
                then(ids)
        except IntegrityError as exc:
            raise self._after_race(actor, plan, rows, exclude_id=None, bulk=bulk,
                                   exc=exc) from exc
        return ids

    def _created_events(self, tx: Transaction, plan: EntityPlan, ids: Sequence[int],
                        rows: Sequence[dict[str, Any]], starts: Sequence[str] | None,
                        now: datetime) -> None:
        """Events of a bulk insert, built from the prepared rows (no read back of the batch).

        Each prepared row (this insert's own dict, written and done with) becomes its
        event's ``after``, completed in place: the same keys in the same order as a
        copy merged with the system columns, without a 25-key copy per record."""
        system: dict[str, Any] = {"created_at": now, "updated_at": now,
                                  "created_by": tx.actor.user_id, "version": 1}
        if plan.soft_delete:
            system["deleted_at"] = None
        pooled = "pool_id" in plan.table.c  # set on a row by a before_insert hook, else None
        afters = []
        for i, (record_id, after) in enumerate(zip(ids, rows)):
            after.update(system)
            after["id"] = record_id
            if pooled and "pool_id" not in after:
                after["pool_id"] = None
            if starts is not None:
                after[stages.STAGE] = starts[i]
            afters.append(after)
        for event in ev.creations(plan.name, ids, afters, actor=tx.actor, via=tx.via, at=now):
            tx.emit(event)

    def _number(self, conn: Connection, plan: EntityPlan, rows: list[dict[str, Any]],
                now: datetime) -> None:
        for fp in plan.autonumbers:
            fmt = fp.autonumber
            assert fmt is not None
            last = reserve(conn, self.schema.system[SEQUENCE_TABLE], entity=plan.name,
                           field=fp.name, period=fmt.period(now), count=len(rows))
            first = last - len(rows) + 1
            for offset, row in enumerate(rows):
                row[fp.name] = fmt.render(now, first + offset)

    # --- read -------------------------------------------------------------------

    def get(self, actor: Actor, entity: str, record_id: int, *,
            include_deleted: bool = False) -> Record:
        """One record the actor may read; otherwise ``NotFoundError`` (never a hint it exists)."""
        plan = self.plan(entity)
        self.policy.check_action(actor, plan.entity, "read")
        stmt = self._point(plan, actor, record_id, action=None,
                           deleted=None if include_deleted else False)
        # One cached statement: straight on a pooled cursor (engine/storage/direct.py).
        rows = direct_rows(self.engine, stmt, {RECORD_ID: record_id}) \
            if stmt is not None else None
        if not rows:
            merging.check_merged(self, actor, plan.name, record_id)  # names its survivor
            raise NotFoundError(plan.name, record_id)
        return self._record(plan, plan.to_values(rows[0]),
                            self.policy.hidden_fields(actor, plan.entity))

    def list(self, actor: Actor, entity: str, query: ListQuery | None = None, *,
             action: str = "read") -> Page:
        """One keyset page of the records the actor may read, filtered, searched and sorted.

        ``action="export"`` lists what the actor may export instead (its grant and scope).
        """
        plan = self.plan(entity)
        rows, token = self._page_values(actor, plan, query, action=action, json=False)
        name = plan.name
        return Page([Record(name, values) for values in rows], token, token is not None)

    def list_json(self, actor: Actor, entity: str, query: ListQuery | None = None
                  ) -> ValuesPage:
        """``list`` for a caller that writes the page straight to JSON (the API).

        The same checks, scope, hidden fields, statement and page token; each row goes
        from the database row to the dict ``list`` would wrap in a ``Record`` in one
        compiled call, except that multi-select and address values may be their stored
        JSON text as an ``orjson.Fragment`` (``EntityPlan.json_shape``): written by
        orjson exactly as the parsed value would be, and only by orjson. Skipping the
        records and the second parse of each document saves a tenth of a page's Python
        work (issue 13).
        """
        rows, token = self._page_values(actor, self.plan(entity), query, action="read",
                                        json=True)
        return ValuesPage(rows, token)

    def _page_values(self, actor: Actor, plan: EntityPlan, query: ListQuery | None, *,
                     action: str, json: bool
                     ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """One page's values (at most the limit) and the next page's token, if any."""
        query = query if query is not None else ListQuery()
        self.policy.check_action(actor, plan.entity, action)
        hidden = self.policy.hidden_fields(actor, plan.entity)
        limit = check_limit(plan, query.limit)
        sort = self._sort_plan(plan, query.sort, hidden)
        after = decode_token(plan, sort, query.after) if query.after else None
        table = plan.table
        scope = self.policy.row_scope(actor, plan.entity, table, action)
        if scope.is_empty:
            return [], None
        branches = scope.branches
        stmt, params = self._page_statement(plan, query, sort, hidden, branches, limit + 1,
                                            after)
        # One statement; each row straight to the values this reader may see.
        rows = direct_values(self.engine, stmt, params,
                             plan.json_shape(hidden) if json else plan.shape(hidden))
        if len(rows) > limit:
            del rows[limit:]
            return rows, encode_token(sort, rows[-1])
        return rows, None

    def _sort_plan(self, plan: EntityPlan, sort: Sort, hidden: frozenset[str]) -> SortPlan:
        """``sort_plan``, kept per entity, field, direction and hidden fields (a refusal
        is not kept)."""
        if not isinstance(sort.field, str) or not isinstance(sort.descending, bool):
            return sort_plan(plan, sort, hidden)
        key = (plan.name, sort.field, sort.descending, hidden)
        found = self._sorts.get(key)
        if found is None:
            found = sort_plan(plan, sort, hidden)
            if len(self._sorts) >= MAX_CACHED_SORTS:
                self._sorts.clear()
            self._sorts[key] = found
        return found

    def _page_statement(self, plan: EntityPlan, query: ListQuery, sort: Any,
                        hidden: frozenset[str], branches: tuple[ColumnElement[bool], ...],
                        wanted: int,
                        after: tuple[Any, int] | None) -> tuple[Any, dict[str, Any]]:
        """The page SELECT, with the keyset position as bound parameters.

        One scope branch is a plain WHERE; several are a UNION of per-branch keyset
        queries (``_union.union_page``), whose building costs more than the page.

        Paging through one list (the default list, "load more" with the same filters
        and search) repeats one statement with other keyset positions; it is built
        once per shape and scope branch, because building and cache-keying a fresh
        Core statement cost a fifth of a page (bench/bench_records.py).
        """
        params: dict[str, Any] = {}
        marker: tuple[Any, Any] | None = None
        if after is not None:
            params = {"after_id": after[1]}
            value: Any = None
            if after[0] is not None:
                params["after_value"] = after[0]
                value = bindparam("after_value", type_=plan.table.c[sort.name].type)
            marker = (value, bindparam("after_id", type_=plan.table.c["id"].type))
        shape = None if after is None else after[0] is None
        # The sort as its name and direction: the rest of its plan follows from them
        # and the entity (hashing the plan hashed its key field's whole definition).
        key: tuple[Any, ...] | None = (
            plan.name, sort.name, sort.descending, wanted, query.include_deleted,
            query.only_deleted, shape, branches, query.filters, query.search, hidden)
        try:
            with self._statements_lock:
                found = self._statements.get(key)  # type: ignore[arg-type]
                if found is not None:
                    self._statements.move_to_end(key)  # type: ignore[arg-type]
        except TypeError:  # a filter value that cannot be hashed (a list): build afresh
            key = found = None
        if found is not None:
            return found, params
        where = where_clauses(plan, query, hidden)
        if marker is not None:
            where.append(sort.after(plan.table.c, marker))
        if len(branches) == 1:
            stmt = plan.select_all.where(*where, *_live_branches(branches)) \
                .order_by(*sort.order_by(plan.table.c)).limit(wanted)
        else:
            stmt = union_page(plan, sort, where, branches, wanted)
        if key is not None:
            with self._statements_lock:
                self._statements[key] = stmt
                while len(self._statements) > MAX_CACHED_STATEMENTS:
                    self._statements.popitem(last=False)
        return stmt, params

    def count(self, actor: Actor, entity: str, filters: ListQuery | Sequence[Filter] = (), *,
              cap: int = DEFAULT_COUNT_CAP) -> int:
        """How many records match, counting at most ``cap`` (a result of ``cap`` means "cap or more")."""
        plan = self.plan(entity)
        if not isinstance(cap, int) or cap < 1:
            raise QueryError(plan.name, "cap", M("must be a positive whole number"))
        _, where = self._readable(actor, plan, filters)
        if where is None:
            return 0
        inner = select(plan.table.c.id).where(*where).limit(cap).subquery()
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())

    def _readable(self, actor: Actor, plan: EntityPlan, filters: ListQuery | Sequence[Filter]
                  ) -> tuple[frozenset[str], builtins.list[Any] | None]:
        """The actor's hidden fields and the WHERE clauses of what they may read of
        ``filters`` (None: no row at all) - the one read check of every count and aggregate."""
        self.policy.check_action(actor, plan.entity, "read")
        hidden = self.policy.hidden_fields(actor, plan.entity)
        where = where_clauses(plan, as_query(filters), hidden)
        scoped = self._read_scope(actor, plan)
        return hidden, None if scoped is None else [*where, *scoped]

    def _read_scope(self, actor: Actor, plan: EntityPlan) -> builtins.list[ColumnElement[bool]] | None:
        """The read scope as WHERE clauses for a count or aggregate (None: no row at all)."""
        scope = self.policy.row_scope(actor, plan.entity, plan.table, "read")
        if scope.is_empty:
            return None
        branches = scope.branches if scope.counting is None else scope.counting
        live = _live_branches(branches)
        return [or_(*live)] if live and len(live) == len(branches) else []

    def group_counts(self, actor: Actor, entity: str, by: str, *,
                     filters: ListQuery | Sequence[Filter] = (),
                     sum_field: str | None = None) -> builtins.list[aggregate.Group]:
        """Per value of ``by``: how many records the actor may read, and their ``sum_field`` total.

        The same filters, search, recycle-bin rule and row scope as ``list``, so a
        board's column counts match the cards the actor can page through.
        """
        plan = self.plan(entity)
        hidden, where = self._readable(actor, plan, filters)
        if where is None:
            aggregate.check_request(plan, by=by, sum_field=sum_field, hidden=hidden)
            return []
        with self.engine.connect() as conn:
            return aggregate.group_counts(conn, plan, by=by, sum_field=sum_field, hidden=hidden,
                                          where=where)

    def capped_group_counts(self, actor: Actor, entity: str, by: str, keys: Sequence[Any], *,
                            filters: ListQuery | Sequence[Filter] = (),
                            sum_field: str | None = None,
                            cap: int = DEFAULT_COUNT_CAP) -> builtins.list[aggregate.Group]:
        """``group_counts`` for the given ``keys``, each counted up to ``cap`` rows.

        What a kanban board shows at any size: the work is bounded by ``cap`` per
        key instead of growing with every visible row; a group past the cap comes
        back ``capped`` (shown "N+", no total). Same filters and row scope as ``list``.
        """
        plan = self.plan(entity)
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise QueryError(plan.name, "cap", M("must be a positive whole number"))
        hidden, where = self._readable(actor, plan, filters)
        if where is None:
            aggregate.check_request(plan, by=by, sum_field=sum_field, hidden=hidden)
            return [aggregate.Group(k, 0) for k in keys]
        with self.engine.connect() as conn:
            return aggregate.capped_group_counts(
                conn, plan, by=by, keys=keys, cap=cap, sum_field=sum_field, hidden=hidden,
                where=where)

    def scoped_where(self, actor: Actor, entity: str,
                     filters: ListQuery | Sequence[Filter] = ()) -> builtins.list[Any] | None:
        """The WHERE clauses of a count of what the actor may read (None: no row at all).

        For aggregates built elsewhere (engine/reports): the same filters, recycle-bin
        rule and row scope as ``count`` and ``group_counts``, so a report number and
        the list it drills down to can never disagree.
        """
        return self._readable(actor, self.plan(entity), filters)[1]

    def stage_history(self, actor: Actor, entity: str,
                      record_id: int) -> builtins.list[stages.StageVisit]:
        """A record's stays in each stage, oldest first; needs read access to the record."""
        plan = self.plan(entity)
        if stages.rules_for(self.schema.registry, plan) is None:
            raise QueryError(plan.name, stages.STAGE, M("this entity has no pipeline"))
        record = self.get(actor, entity, record_id, include_deleted=True)
        with self.engine.connect() as conn:
            return stages.history_of(conn, self.schema.system[STAGE_HISTORY_TABLE], record)

    def time_in_stage(self, actor: Actor, entity: str, record_id: int, *,
                      now: datetime | None = None) -> dict[str, timedelta]:
        """Total time the record spent in each stage it visited, the current one until now."""
        visits = self.stage_history(actor, entity, record_id)
        return stages.time_in_stage(visits, now if now is not None else self.clock())

    def activity(self, actor: Actor, entity: str, record_id: int, *, limit: int = 50,
                 before_id: int | None = None) -> builtins.list[feed.ActivityEntry]:
        """A record's feed, newest first; reading it requires read access to the record."""
        plan = self.plan(entity)
        record = self.get(actor, entity, record_id, include_deleted=True)
        limit = max(1, min(limit, MAX_ACTIVITY_LIMIT))
        with self.engine.connect() as conn:
            # Entries older than the record belong to an earlier, hard-deleted record
            # that had the same id (SQLite reuses the highest id after a delete).
            return feed.read(conn, self.schema.system[ACTIVITY_TABLE], entity=plan.name,
                             record_id=record_id, limit=limit, before_id=before_id,
                             since=merging.feed_since(conn, self, plan.name, record),
                             hidden=self.policy.hidden_fields(actor, plan.entity))

    # --- update -----------------------------------------------------------------

    def update(self, actor: Actor, entity: str, record_id: int, values: Mapping[str, Any], *,
               version: int, source: InputSource = InputSource.JSON) -> Record:
        """Change the fields in ``values`` if the record is still at ``version``.

        A stale version raises ``ConflictError`` and writes nothing; an update
        that changes nothing writes nothing and keeps the version. On a pipelined
        entity a ``stage`` in ``values`` moves the record (see ``move_stage``).
        """
        with self.transaction(actor) as tx:
            return tx.update(entity, record_id, values, version=version, source=source)

    def _update_in(self, tx: Transaction, entity: str, record_id: int,
                   values: Mapping[str, Any], *, version: int, source: InputSource) -> Record:
        plan = self.plan(entity)
        if stages.STAGE in values and plan.initial_stage is not None:
            rest = {k: v for k, v in values.items() if k != stages.STAGE}
            return self._move_stage_in(tx, entity, record_id, to=values[stages.STAGE],
                                       version=version, values=rest, source=source)
        return self._update(tx, plan, record_id, values, version=version, source=source,
                            move=None)

    def move_stage(self, actor: Actor, entity: str, record_id: int, *, to: str, version: int,
                   values: Mapping[str, Any] | None = None,
                   source: InputSource = InputSource.JSON) -> Record:
        """Move a record to stage ``to`` (writing ``values`` with it) if it is at ``version``.

        Refused with ``StageTransitionError`` when ``to`` is not a next stage of
        the current one, with ``ValidationError`` naming each field the stage
        requires that is still empty after ``values`` (or ``stage`` when ``to``
        is no stage of the pipeline). Needs update access to the record. The move
        is logged in the activity feed and the stage history, in one transaction.
        """
        with self.transaction(actor) as tx:
            return tx.move_stage(entity, record_id, to=to, version=version, values=values,
                                 source=source)

    def _move_stage_in(self, tx: Transaction, entity: str, record_id: int, *, to: str,
                       version: int, values: Mapping[str, Any] | None,
                       source: InputSource) -> Record:
        plan = self.plan(entity)
        pipelines = stages.pipelines_for(self.schema.registry, plan)
        if pipelines is None:
            raise ValidationError(plan.name, {stages.STAGE: M("this entity has no pipeline")})
        return self._update(tx, plan, record_id, values or {}, version=version,
                            source=source, move=stages.StageMove(pipelines, to))

    def _update(self, tx: Transaction, plan: EntityPlan, record_id: int,
                values: Mapping[str, Any], *, version: int, source: InputSource,
                move: stages.StageMove | None) -> Record:
        actor = tx.actor
        self.policy.check_action(actor, plan.entity, "update")
        hidden = self.policy.hidden_fields(actor, plan.entity)
        readonly = self.policy.readonly_fields(actor, plan.entity) | hidden
        upload_errors: dict[str, str] = {}
        resolved, taken = uploads.resolve(tx.conn, self.schema.system[UPLOAD_TABLE], plan,
                                          actor, [values], source=source, bulk=False,
                                          errors=upload_errors)
        new, errors = self._coerce_update(plan, resolved[0], source=InputSource(source),
                                          readonly=readonly)
        errors.update(upload_errors)
        if move is not None:
            move.target_errors(readonly, errors)
        if errors:
            raise ValidationError(plan.name, errors)
        now = self.clock()
        merged: dict[str, Any] = {}
        conn = tx.conn
        try:
            old = self._writable_row(conn, plan, actor, record_id, action="update",
                                     version=version, deleted=False)
            changed = {n: v for n, v in new.items() if not same_value(old.get(n), v)}
            merged = {**old, **changed}
            # The record's pipeline (chosen by the merged values) judges the move; a
            # changed selector field moves it into the new pipeline.
            entry = stages.entering(
                move.pipelines if move is not None
                else stages.pipelines_for(self.schema.registry, plan),
                plan, record_id, old=old, merged=merged,
                asked=move.to if move is not None else None, readonly=readonly)
            moving = entry is not None
            if entry is not None:
                entering = entry[0].entry_defaults(plan, entry[1], new)
                changed.update({n: v for n, v in entering.items()
                                if not same_value(old.get(n), v)})
                merged = {**old, **changed}
            if not changed and not moving:
                return self._record(plan, old, hidden)
            reference_errors(conn, self.schema, plan, [merged], names=changed, bulk=False,
                             errors=errors, scope=self._reference_scope(actor))
            if errors:
                raise ValidationError(plan.name, errors)
            touched = [s for s in plan.uniques if any(f in changed for f in s.fields)]
            dups = duplicates(conn, plan, [merged], exclude_id=record_id, specs=touched)
            if dups:
                raise self._duplicate_error(plan, dups[0],
                                            self._seen(conn, actor, plan, dups))
            # The stage column is written only here: READONLY_SYSTEM keeps it out of
            # every payload, so no path changes it without the stage rules.
            stage = {stages.STAGE: entry[1]} if entry is not None else {}
            self._bump(conn, plan, record_id, version=version, now=now,
                       columns=plan.to_columns(changed, dict(stage)))
            uploads.attach(conn, self.schema.system[UPLOAD_TABLE],
                           [t for t in taken if t.field in changed], ids=[record_id],
                           now=now, errors=errors)
            if errors:
                raise ValidationError(plan.name, errors)
            if stage:
                stages.enter(conn, self.schema.system[STAGE_HISTORY_TABLE],
                             entity=plan.name, record_id=record_id,
                             stage=stage[stages.STAGE], at=now, by=actor.user_id)
            if plan.activity:
                entries = feed.diff(plan, old, changed)
                if stage:
                    entries.insert(0, stages.change(old, stage[stages.STAGE]))
                tx.log(plan, record_id, feed.UPDATE, at=now, changes=entries)
            stored = self._read_back(conn, plan, record_id)
            tx.event(plan, record_id, ev.STAGE if stage else ev.UPDATE, before=old,
                     after=dict(stored), at=now)
            return self._record(plan, stored, hidden)
        except IntegrityError as exc:
            if not merged:
                raise
            raise self._after_race(actor, plan, [merged], exclude_id=record_id, bulk=False,
                                   exc=exc) from exc

    def _coerce_update(self, plan: EntityPlan, values: Mapping[str, Any], *,
                       source: InputSource,
                       readonly: frozenset[str]) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        payload_errors(plan, values, creating=False, readonly=readonly, index=None,
                       errors=errors)
        new: dict[str, Any] = {}
        for name, raw in values.items():
            if name in errors or name not in plan.fields:
                continue
            fp = plan.fields[name]
            try:
                value = fp.coerce(raw, source)
            except CoercionError as exc:
                errors[name] = message_of(exc)
                continue
            if value is None:
                if fp.field.required:
                    errors[name] = M("is required")
            else:
                message = fp.check(value)
                if message is not None:
                    errors[name] = message
            new[name] = value
        return new, errors

    def _writable_row(self, conn: Connection, plan: EntityPlan, actor: Actor, record_id: int, *,
                      action: str, version: int | None, deleted: bool) -> dict[str, Any]:
        """The current values of a record the actor may ``action``, at ``version`` if given."""
        found = self._scoped_row(conn, plan, actor, record_id, action=action, deleted=deleted)
        if found is None:
            raise NotFoundError(plan.name, record_id)
        row, allowed = found
        if not allowed:
            raise ForbiddenError(plan.name, action, M("the record is outside what you may "
                                                      "%(action)s", action=action))
        old = plan.to_values(row)
        if version is not None and old["version"] != version:
            raise ConflictError(plan.name, record_id, expected=version, actual=old["version"])
        return old

    def _bump(self, conn: Connection, plan: EntityPlan, record_id: int, *, version: int,
              now: datetime, columns: dict[str, Any]) -> None:
        """UPDATE ... WHERE id AND version: zero rows means someone else won the race."""
        table = plan.table
        result = conn.execute(update(table)
                              .where(table.c.id == record_id, table.c.version == version)
                              .values(**columns, updated_at=now, version=version + 1))
        if result.rowcount != 1:
            actual = conn.execute(select(table.c.version).where(table.c.id == record_id)) \
                .scalar_one_or_none()
            raise ConflictError(plan.name, record_id, expected=version, actual=actual)

    # --- comments and assignment --------------------------------------------------

    def comment(self, actor: Actor, entity: str, record_id: int, body: str) -> None:
        """Add a comment to a record's feed; anyone who may read the record may comment."""
        with self.transaction(actor) as tx:
            tx.comment(entity, record_id, body)

    def _comment_in(self, tx: Transaction, entity: str, record_id: int, body: str) -> None:
        actor = tx.actor
        plan = self.plan(entity)
        text = body.strip() if isinstance(body, str) else ""
        if not plan.activity:
            raise ForbiddenError(plan.name, "comment", M("this entity keeps no activity feed"))
        if not text or len(text) > MAX_COMMENT_LENGTH:
            raise ValidationError(plan.name, {"body": M("is required") if not text else
                                              M("at most %(n)s characters",
                                                n=MAX_COMMENT_LENGTH)})
        self.policy.check_action(actor, plan.entity, "read")
        found = self._scoped_row(tx.conn, plan, actor, record_id, action=None, deleted=False)
        if found is None:
            raise NotFoundError(plan.name, record_id)
        now = self.clock()
        tx.log(plan, record_id, feed.COMMENT, at=now, changes=None, body=text)
        values = plan.to_values(found[0])
        tx.event(plan, record_id, ev.COMMENT, before=values, after=values, at=now, body=text)

    def register_upload(self, actor: Actor, entity: str, field: str, *, storage_key: str,
                        name: str, size: int, content_type: str) -> str:
        """Record bytes the server stored for a file field; returns the token a write names.

        Only someone who may create or update records of the entity, and write the
        field, may upload to it (``uploads`` explains the flow).
        """
        plan = self.check_upload(actor, entity, field)
        with write_transaction(self.engine) as conn:
            return uploads.register(conn, self.schema.system[UPLOAD_TABLE], entity=plan.name,
                                    field=field, uploaded_by=actor.user_id,
                                    storage_key=storage_key, name=name, size=size,
                                    content_type=content_type, now=self.clock())

    def check_upload(self, actor: Actor, entity: str, field: str) -> EntityPlan:
        """Refuse an upload before its bytes are read: the actor may not write this file field."""
        plan = self.plan(entity)
        try:
            self.policy.check_action(actor, plan.entity, "create")
        except ForbiddenError:
            self.policy.check_action(actor, plan.entity, "update")
        fp = plan.fields.get(field)
        if fp is None or fp.field.type is not FieldType.FILE or \
                field in self.policy.hidden_fields(actor, plan.entity):
            raise ValidationError(plan.name, {field: M("is not a file field")})
        if field in self.policy.readonly_fields(actor, plan.entity):
            raise ValidationError(plan.name, {field: M("is read-only for you")})
        return plan

    def assign(self, actor: Actor, entity: str, record_id: int, owner_id: int | None, *,
               version: int | None = None) -> Record:
        """Give a record to another owner (the ``assign`` action on the record).

        An owned record is never also in a pool: assigning a pool record to
        someone takes it out of its pool.
        """
        with self.transaction(actor) as tx:
            return tx.assign(entity, record_id, owner_id, version=version)

    def _assign_in(self, tx: Transaction, entity: str, record_id: int, owner_id: int | None,
                   *, version: int | None) -> Record:
        actor = tx.actor
        plan = self.plan(entity)
        if not plan.owned:
            raise ForbiddenError(plan.name, "assign", M("this entity has no owners"))
        self.policy.check_action(actor, plan.entity, "assign")
        hidden = self.policy.hidden_fields(actor, plan.entity)
        now = self.clock()
        conn = tx.conn
        old = self._writable_row(conn, plan, actor, record_id, action="assign",
                                 version=version, deleted=False)
        errors: dict[str, str] = {}
        reference_errors(conn, self.schema, plan, [{**old, "owner_id": owner_id}],
                         names={"owner_id": owner_id}, bulk=False, errors=errors)
        if errors:
            raise ValidationError(plan.name, errors)
        columns: dict[str, Any] = {"owner_id": owner_id}
        if owner_id is not None and old.get("pool_id") is not None:
            columns["pool_id"] = None
        if all(old.get(k) == v for k, v in columns.items()):
            return self._record(plan, old, hidden)
        self._bump(conn, plan, record_id, version=int(old["version"]), now=now, columns=columns)
        refused = scope_checks.assign_error(conn, self.policy, actor, plan,
                                            record_id=record_id, owner_id=owner_id)
        if refused is not None:  # the record as given away is outside the assign scope
            raise ValidationError(plan.name, {"owner_id": refused})
        tx.log(plan, record_id, feed.ASSIGN, at=now,
               changes=[{"field": k, "old": old.get(k), "new": v} for k, v in columns.items()])
        stored = self._read_back(conn, plan, record_id)
        tx.event(plan, record_id, ev.ASSIGN, before=old, after=dict(stored), at=now)
        return self._record(plan, stored, hidden)

    def _reown_in(self, tx: Transaction, entity: str, record_ids: Sequence[int], *,
                  owner_id: int | None, pool_id: str | None, kind: str, action: str | None,
                  guard: Sequence[ColumnElement[bool]], reason: str | None,
                  serialise: ColumnElement[Any] | None = None,
                  locked: Sequence[Any] | None = None) -> Mapping[int, dict[str, Any]]:
        """See ``Transaction.reown``: lock the rows, one conditional UPDATE, feed and events."""
        plan = self.plan(entity)
        table = plan.table
        if not plan.owned or "pool_id" not in table.c:
            raise ForbiddenError(plan.name, kind, M("this entity has no pools"))
        if locked is not None:
            record_ids = [int(r.id) for r in locked]
        ids = sorted({i for i in record_ids if isinstance(i, int) and not isinstance(i, bool)})
        if not ids:
            return {}
        conn = tx.conn
        chosen = among(conn, table.c.id, ids)
        checks: list[ColumnElement[bool]] = list(guard)
        if plan.soft_delete:
            checks.append(table.c.deleted_at.is_(None))
        if action is not None:
            scope = self.policy.row_scope(tx.actor, plan.entity, table, action)
            if scope.is_empty:
                return {}
            checks.append(or_(*scope.branches))
        where: list[ColumnElement[bool]] = [chosen]
        if checks:
            # One CASE over the guards (a NULL guard fails, as it does in a WHERE): no
            # index can serve it, so SQLite finds the rows by id. Given ``owner_id IS
            # NULL`` beside a JSON list of ids, it walked the owner index over every
            # record in the pool instead (~10 ms a statement with 40k pooled customers).
            where.append(case((and_(*checks), 1), else_=0) == 1)
        # The rows are locked first (PostgreSQL; SQLite's write transaction holds the
        # whole database), so the values read here are the ones the UPDATE replaces.
        if locked is None:
            read = plan.select_all if serialise is None \
                else plan.select_all.add_columns(serialise.label("serialised"))
            rows: Sequence[Any] = conn.execute(
                read.where(chosen).order_by(table.c.id).with_for_update()).all()
        else:  # read and locked by the caller in this unit (a rule's batch: one statement)
            rows = locked
        by_id = {int(r.id): r for r in rows}
        now = self.clock()
        changed = conn.execute(
            update(table).where(*where)
            .values(owner_id=owner_id, pool_id=pool_id, updated_at=now,
                    version=table.c.version + 1)
            .returning(table.c.id)).scalars().all()
        # One event and one group of feed entries per (owner, pool) left: the records of
        # a group changed alike (a lone record keeps its own WriteEvent).
        by_origin: dict[tuple[Any, Any], list[int]] = {}
        for record_id in sorted(changed):
            row = by_id[record_id]
            by_origin.setdefault((row.owner_id, row.pool_id), []).append(record_id)
        after = {"owner_id": owner_id, "pool_id": pool_id, "updated_at": now}
        for (old_owner, old_pool), some in by_origin.items():
            if len(some) == 1:
                old = plan.to_values(by_id[some[0]])
                tx.event(plan, some[0], kind, before=old,
                         after={**old, **after, "version": int(old["version"]) + 1},
                         at=now, reason=reason)
            else:
                tx.emit(ev.BatchEvent(entity=plan.name, kind=kind, record_ids=tuple(some),
                                      actor=tx.actor,
                                      before={"owner_id": old_owner, "pool_id": old_pool},
                                      after=after, via=tx.via, at=now,
                                      rows=[by_id[i] for i in some], to_values=plan.to_values,
                                      reason=reason))
            changes = [{"field": k, "old": was, "new": v}
                       for k, was, v in (("owner_id", old_owner, owner_id),
                                         ("pool_id", old_pool, pool_id)) if was != v]
            tx.log_batch(plan, some, kind, at=now, changes=changes, body=reason)
        return ev.RowValues({i: by_id[i] for i in sorted(changed)}, plan.to_values)

    # --- delete and restore -------------------------------------------------------

    def delete(self, actor: Actor, entity: str, record_id: int, *,
               version: int | None = None) -> None:
        """Move the record to the recycle bin (soft-delete entities) or delete it for good."""
        with self.transaction(actor) as tx:
            tx.delete(entity, record_id, version=version)

    def _delete_in(self, tx: Transaction, entity: str, record_id: int, *,
                   version: int | None) -> None:
        actor = tx.actor
        plan = self.plan(entity)
        self.policy.check_action(actor, plan.entity, "delete")
        now = self.clock()
        table = plan.table
        conn = tx.conn
        try:
            old = self._writable_row(conn, plan, actor, record_id, action="delete",
                                     version=version, deleted=False)
            current = int(old["version"])
            if plan.soft_delete:
                self._bump(conn, plan, record_id, version=current, now=now,
                           columns={"deleted_at": now})
                after: dict[str, Any] | None = {**old, "deleted_at": now, "updated_at": now,
                                                "version": current + 1}
            else:
                remove_dependents(conn, self.schema, plan.name, [record_id])
                result = conn.execute(delete(table).where(table.c.id == record_id,
                                                          table.c.version == current))
                if result.rowcount != 1:
                    raise ConflictError(plan.name, record_id, expected=current, actual=None)
                after = None
            tx.log(plan, record_id, feed.DELETE, at=now, changes=None)
            tx.event(plan, record_id, ev.DELETE if plan.soft_delete else ev.HARD_DELETE,
                     before=old, after=after, at=now)
        except IntegrityError as exc:
            # A hard delete refused by a RESTRICT foreign key: other records point here.
            raise ForbiddenError(plan.name, "delete", M("other records refer to it")) from exc

    def restore(self, actor: Actor, entity: str, record_id: int) -> Record:
        """Bring a record back from the recycle bin (needs the right to delete it)."""
        with self.transaction(actor) as tx:
            return tx.restore(entity, record_id)

    def _restore_in(self, tx: Transaction, entity: str, record_id: int) -> Record:
        actor = tx.actor
        plan = self.plan(entity)
        self.policy.check_action(actor, plan.entity, "delete")
        if not plan.soft_delete:
            raise NotFoundError(plan.name, record_id)
        hidden = self.policy.hidden_fields(actor, plan.entity)
        now = self.clock()
        conn = tx.conn
        old = self._writable_row(conn, plan, actor, record_id, action="delete",
                                 version=None, deleted=True)
        if merging.merged_into(conn, self, plan.name, record_id) is not None:
            raise ForbiddenError(plan.name, "restore", M("it was merged into another "
                                                         "record; undo the merge instead"))
        self._bump(conn, plan, record_id, version=int(old["version"]), now=now,
                   columns={"deleted_at": None})
        tx.log(plan, record_id, feed.RESTORE, at=now, changes=None)
        stored = self._read_back(conn, plan, record_id)
        tx.event(plan, record_id, ev.RESTORE, before=old, after=dict(stored), at=now)
        return self._record(plan, stored, hidden)

    # --- merge ----------------------------------------------------------------------

    def merge(self, actor: Actor, entity: str, survivor_id: int, merged_ids: Sequence[int], *,
              values: Mapping[str, Any] | None = None) -> merging.MergeResult:
        """Merge records into ``survivor_id``, one unit of work (engine/records/merge.py)."""
        return merging.merge(self, actor, entity, survivor_id, merged_ids, values=values)

    def undo_merge(self, actor: Actor, entity: str, merge_id: int) -> merging.MergeResult:
        """Undo a merge from its snapshot (engine/records/merge.py)."""
        return merging.undo(self, actor, entity, merge_id)
