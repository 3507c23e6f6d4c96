"""The stage machine of pipelined entities: allowed moves, entry requirements, history.

A pipelined entity's ``stage`` column holds the key of one stage of its pipeline.
The records service routes every stage change through here, from a create, an
update carrying ``stage`` or ``move_stage``:

- a record belongs to one of the entity's pipelines, chosen by its selector field
  (``EntityPipelines``); its pipeline decides everything below;
- a new record starts in its pipeline's initial stage, or in a stage it names;
- a move must go to one of the current stage's ``next_stages`` (omitted: any
  stage). A closed stage (won / lost) is terminal unless it lists next stages:
  listing them is how a pipeline allows reopening;
- entering a stage needs its ``required_fields`` filled, counting the values
  written with the move, so one form submit can fill them and move at once;
- changing the selector field moves the record into the other pipeline's
  initial stage (or the stage the same update names), recorded like any move;
- each visit to a stage is a ``tp_stage_history`` row (entered, left, by whom),
  written in the move's transaction, from which time in stage is computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from engine.errors import StageTransitionError, ValidationError
from engine.messages import M
from engine.metadata.model import Feature, Pipeline, Registry, Stage, StageKind
from engine.records._plan import EntityPlan, utc
from engine.records._write import key
from engine.records.coerce import coerce
from engine.records.record import Record

STAGE = "stage"
CLOSED_KINDS = frozenset({StageKind.WON, StageKind.LOST})


def is_empty(value: Any) -> bool:
    """What "not filled" means for a required field: nothing, blank text, an empty list."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict, set)):
        return not value
    return False


@dataclass(frozen=True)
class StageRules:
    """The rules of one pipeline, as the records service asks them."""

    pipeline: Pipeline

    @property
    def initial(self) -> str:
        return self.pipeline.initial_stage

    def find(self, key: Any) -> Stage | None:
        if not isinstance(key, str):
            return None
        return next((s for s in self.pipeline.stages if s.key == key), None)

    def ordered(self) -> tuple[Stage, ...]:
        """The stages in kanban order."""
        return tuple(sorted(self.pipeline.stages, key=lambda s: s.order))

    def next_stages(self, current: str | None) -> tuple[str, ...]:
        """Where a record in ``current`` may move to."""
        stage = self.find(current)
        everything = tuple(s.key for s in self.ordered() if s.key != current)
        if stage is None:
            # A stage the metadata no longer has (or none at all): let the record out.
            return everything
        if stage.next_stages is not None:
            return tuple(k for k in stage.next_stages if k != current)
        return () if stage.kind in CLOSED_KINDS else everything

    def entry_defaults(self, plan: EntityPlan, to: Any,
                       given: Mapping[str, Any]) -> dict[str, Any]:
        """Values a record takes on entering stage ``to``: the stage's win probability
        in the pipeline's probability field, unless ``given`` (the same write) sets it."""
        name = self.pipeline.probability_field
        stage = self.find(to)
        if (name is None or stage is None or stage.probability is None or name in given
                or name not in plan.fields):
            return {}
        return {name: coerce(plan.fields[name].field, stage.probability)}

    def check_move(self, entity: str, record_id: Any, current: str | None, to: str) -> None:
        """Raise ``StageTransitionError`` unless ``current -> to`` is an allowed move."""
        allowed = self.next_stages(current)
        if to in allowed:
            return
        stage = self.find(current)
        if not allowed and stage is not None:
            # keys, not labels: API clients and the CLI read them; screens use labels
            message = (M("%(stage)s is a closed stage: a record there cannot move",
                         stage=current)
                       if stage.kind in CLOSED_KINDS
                       else M("%(stage)s is a final stage: a record there cannot move",
                              stage=current))
        else:
            message = M("cannot move from %(current)s to %(to)s; allowed next stages: "
                        "%(allowed)s", current=current, to=to, allowed=", ".join(allowed))
        raise StageTransitionError(entity, record_id, from_stage=current, to_stage=to,
                                   allowed=allowed, message=message)

    def missing(self, to: str, values: Mapping[str, Any]) -> dict[str, str]:
        """Per field, why ``values`` may not enter stage ``to`` (empty: they may)."""
        stage = self.find(to)
        if stage is None:
            return {STAGE: M("unknown stage %(stage)s", stage=repr(to))}
        return {name: M("is required to enter stage %(stage)s", stage=stage.label)
                for name in stage.required_fields if is_empty(values.get(name))}


@dataclass(frozen=True)
class EntityPipelines:
    """Every pipeline of one entity and how a record picks its own.

    A record belongs to the pipeline whose selector lists the value of its selector
    field, else to the default pipeline (the one without a selector). Stage keys are
    unique across the pipelines (the metadata check sees to it), so a stored stage
    also names its pipeline.
    """

    entity: str
    rules: tuple[StageRules, ...]   # the default pipeline first

    @property
    def selector(self) -> str | None:
        """The select field that chooses the pipeline (None: one pipeline for all)."""
        return next((r.pipeline.selector.field for r in self.rules
                     if r.pipeline.selector is not None), None)

    def named(self, name: str) -> StageRules | None:
        return next((r for r in self.rules if r.pipeline.name == name), None)

    def of(self, values: Mapping[str, Any]) -> StageRules | None:
        """The pipeline of a record with ``values``; None when no pipeline takes it."""
        field = self.selector
        value = values.get(field) if field is not None else None
        default = None
        for rules in self.rules:
            chosen = rules.pipeline.selector
            if chosen is None:
                default = default or rules
            elif value in chosen.values:
                return rules
        return default

    def holding(self, stage: Any) -> StageRules | None:
        """The pipeline that has stage ``stage``."""
        return next((r for r in self.rules if r.find(stage) is not None), None)

    def no_pipeline(self, values: Mapping[str, Any]) -> str:
        """Why a record with ``values`` has no pipeline (only without a default one)."""
        taken = sorted(v for r in self.rules if r.pipeline.selector is not None
                       for v in r.pipeline.selector.values)
        return M("no pipeline takes %(value)s; choose one of: %(values)s",
                 value=repr(values.get(self.selector or "")), values=", ".join(taken))


def pipelines_for(registry: Registry, plan: EntityPlan) -> EntityPipelines | None:
    """The pipelines of a pipelined entity; None for any other entity."""
    if not plan.entity.has(Feature.PIPELINED):
        return None
    found = registry.pipelines_of(plan.name)
    return EntityPipelines(plan.name, tuple(StageRules(p) for p in found)) if found else None


def rules_for(registry: Registry, plan: EntityPlan) -> StageRules | None:
    """The stage rules of a pipelined entity's default pipeline; None for any other entity."""
    pipelines = pipelines_for(registry, plan)
    return pipelines.rules[0] if pipelines is not None else None


def target_error(rules: StageRules, to: Any,
                 pipelines: EntityPipelines | None = None) -> str | None:
    """Why ``to`` cannot be a stage of this pipeline, else None."""
    if rules.find(to) is not None:
        return None
    known = ", ".join(s.key for s in rules.ordered())
    other = pipelines.holding(to) if pipelines is not None else None
    if other is not None:
        # keys, not labels: API clients and the CLI read them
        return M("%(stage)s is a stage of pipeline %(other)s, not of this record's pipeline "
                 "%(pipeline)s (stages: %(known)s)", stage=repr(to), other=other.pipeline.name,
                 pipeline=rules.pipeline.name, known=known)
    return M("unknown stage %(stage)s (stages: %(known)s)", stage=repr(to), known=known)


@dataclass(frozen=True)
class StageMove:
    """A requested move of one record to stage ``to``, checked inside the update."""

    pipelines: EntityPipelines
    to: str

    def target_errors(self, readonly: frozenset[str], errors: dict[str, str]) -> None:
        """Before any SQL: ``to`` must be a stage of the entity, the actor allowed to
        write stages. Whether it is one of the record's pipeline is known once read."""
        if STAGE in readonly:
            errors[STAGE] = M("is read-only for you")
            return
        if self.pipelines.holding(self.to) is None:
            known = ", ".join(s.key for r in self.pipelines.rules for s in r.ordered())
            errors[STAGE] = M("unknown stage %(stage)s (stages: %(known)s)",
                              stage=repr(self.to), known=known)


def entering(pipelines: EntityPipelines | None, plan: EntityPlan, record_id: int, *,
             old: Mapping[str, Any], merged: Mapping[str, Any], asked: str | None,
             readonly: frozenset[str]) -> tuple[StageRules, str] | None:
    """The pipeline and stage an update moves the record into, None if it stays.

    Within its pipeline a record moves only along ``next_stages``. Changing the
    selector field moves it into the other pipeline, as a record type change
    maps the stage in Salesforce: to the stage the same update names (any stage
    of the new pipeline) or else to the new pipeline's initial stage, with that
    stage's required fields. Staying in the current stage is not a move (no rule
    applies, no history). Raises ``StageTransitionError`` / ``ValidationError``.
    """
    if pipelines is None:
        return None
    rules = pipelines.of(merged)
    if rules is None:
        raise ValidationError(plan.name, {pipelines.selector or STAGE:
                                          pipelines.no_pipeline(merged)})
    current = old.get(STAGE)
    was = pipelines.holding(current) or pipelines.of(old)
    switching = was is not None and was.pipeline.name != rules.pipeline.name
    if switching:
        if asked is None and STAGE in readonly:
            raise ValidationError(plan.name, {pipelines.selector or STAGE: M(
                "changing it moves the record to pipeline %(pipeline)s, and the stage is "
                "read-only for you", pipeline=rules.pipeline.name)})
        to = asked if asked is not None else rules.initial
    elif asked is None or asked == current:
        return None
    else:
        to = asked
    message = target_error(rules, to, pipelines)
    if message is not None:
        raise ValidationError(plan.name, {STAGE: message})
    if not switching:
        rules.check_move(plan.name, record_id, current, to)
    errors = rules.missing(to, merged)
    if errors:
        raise ValidationError(plan.name, errors)
    return rules, to


def change(old: Mapping[str, Any], to: str) -> dict[str, Any]:
    """The activity feed's ``{field, old, new}`` entry of a move."""
    return {"field": STAGE, "old": old.get(STAGE), "new": to}


# --- new records -----------------------------------------------------------------------


def split_stage(payloads: Sequence[Mapping[str, Any]]
                ) -> tuple[list[Mapping[str, Any]], list[Any]]:
    """Payloads without ``stage``, and the stage each asked to start in (None: the initial)."""
    rest: list[Mapping[str, Any]] = []
    wanted: list[Any] = []
    for payload in payloads:
        if STAGE in payload:
            rest.append({k: v for k, v in payload.items() if k != STAGE})
            wanted.append(payload[STAGE])
        else:
            rest.append(payload)
            wanted.append(None)
    return rest, wanted


def starting(pipelines: EntityPipelines, plan: EntityPlan, rows: Sequence[dict[str, Any]],
             wanted: Sequence[Any], *, readonly: frozenset[str], bulk: bool,
             errors: dict[str, str]) -> list[str]:
    """The stage each new record starts in: the initial stage of its own pipeline, or
    the stage it names, which must be one of that pipeline; what the stage requires
    must be filled. Rows then take the stage's entry defaults where they left them empty."""
    starts: list[str] = []
    for i, (row, asked) in enumerate(zip(rows, wanted)):
        at = i if bulk else None
        rules = pipelines.of(row)
        if rules is None:
            errors[key(at, pipelines.selector or STAGE)] = pipelines.no_pipeline(row)
            starts.append("")
            continue
        to = rules.initial if asked is None else asked
        starts.append(to)
        if asked is not None:
            message = "is read-only for you" if STAGE in readonly \
                else target_error(rules, asked, pipelines)
            if message is not None:
                errors[key(at, STAGE)] = message
                continue
        for name, message in rules.missing(to, row).items():
            errors.setdefault(key(at, name), message)
        given = {k: v for k, v in row.items() if v is not None}
        row.update(rules.entry_defaults(plan, to, given))
    return starts


# --- history -------------------------------------------------------------------------


@dataclass(frozen=True)
class StageVisit:
    """One stay of a record in a stage; ``left_at`` is None while it is still there."""

    stage: str
    entered_at: datetime
    left_at: datetime | None
    entered_by: int | None

    def duration(self, now: datetime) -> timedelta:
        return (self.left_at or now) - self.entered_at


def enter(conn: Connection, table: Table, *, entity: str, record_id: int, stage: str,
          at: datetime, by: int | None) -> None:
    """Close the record's open visit and open one in ``stage``."""
    conn.execute(update(table).where(table.c.entity == entity, table.c.record_id == record_id,
                                     table.c.left_at.is_(None)).values(left_at=at))
    conn.execute(insert(table).values(entity=entity, record_id=record_id, stage=stage,
                                      entered_at=at, left_at=None, entered_by=by))


def place_new(conn: Connection, plan: EntityPlan, history: Table, *, ids: Sequence[int],
              stages: Sequence[str], initial: str, at: datetime, by: int | None) -> None:
    """New records: move those starting elsewhere there, open each one's first visit.

    Rows were inserted in ``initial`` (one constant for the whole batch); the few
    starting in another stage (asked for, or another pipeline's) get one UPDATE per
    distinct stage.
    """
    by_stage: dict[str, list[int]] = {}
    for record_id, stage in zip(ids, stages):
        if stage != initial:
            by_stage.setdefault(stage, []).append(record_id)
    table = plan.table
    for stage, chosen in by_stage.items():
        for start in range(0, len(chosen), 500):
            conn.execute(update(table).where(table.c.id.in_(chosen[start:start + 500]))
                         .values(stage=stage))
    if ids:
        conn.execute(insert(history), [
            {"entity": plan.name, "record_id": record_id, "stage": stage, "entered_at": at,
             "left_at": None, "entered_by": by} for record_id, stage in zip(ids, stages)])


def history_of(conn: Connection, table: Table, record: Record) -> list[StageVisit]:
    """A record's visits; a record older than the history (no rows) shows one open visit."""
    visits = read_history(conn, table, entity=record.entity, record_id=record.id,
                          since=record["created_at"])
    if not visits and record.get(STAGE) is not None:
        visits = [StageVisit(stage=record[STAGE], entered_at=record["created_at"], left_at=None,
                             entered_by=record.get("created_by"))]
    return visits


def read_history(conn: Connection, table: Table, *, entity: str, record_id: int,
                 since: datetime | None) -> list[StageVisit]:
    """A record's visits, oldest first (``since``: ignore rows of an earlier, deleted record)."""
    stmt = select(table.c.stage, table.c.entered_at, table.c.left_at, table.c.entered_by) \
        .where(table.c.entity == entity, table.c.record_id == record_id)
    if since is not None:
        stmt = stmt.where(table.c.entered_at >= since)
    visits = []
    for row in conn.execute(stmt.order_by(table.c.id)):
        visits.append(StageVisit(stage=row.stage, entered_at=utc(row.entered_at) or row.entered_at,
                                 left_at=utc(row.left_at), entered_by=row.entered_by))
    return visits


def time_in_stage(visits: Iterable[StageVisit], now: datetime) -> dict[str, timedelta]:
    """Total time spent in each stage (a stage visited twice adds up), open visit until ``now``."""
    totals: dict[str, timedelta] = {}
    for visit in visits:
        totals[visit.stage] = totals.get(visit.stage, timedelta()) + visit.duration(now)
    return totals
