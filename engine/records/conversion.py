"""Run a declared conversion: one source record becomes records of its targets, atomically.

The conversion document (engine/metadata/conversions.py) says which values go
where; this module proposes those values for review (``preview``) and then
makes the records in ONE unit of work (``convert``): the source is marked
converted first (an optimistic-version UPDATE, so of two concurrent conversions
of one record exactly one gets through), then each ticked target is created
through the records service (permissions, validation, dedup, hooks such as
distribution, activity) or attached to an existing record its unique keys
match, the targets are linked to each other and to the source, and any failure
rolls every write back. Nothing here knows about particular entities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from engine.actor import Actor
from engine.errors import (
    ConflictError,
    ConversionError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from engine.messages import M
from engine.metadata.conversions import Conversion, Target, conversions_of
from engine.metadata.model import Entity
from engine.records._plan import EntityPlan
from engine.records._write import RowPreparer, duplicates
from engine.records.coerce import InputSource, to_json
from engine.records.record import Record
from engine.records.service import RecordService
from engine.records.transaction import Transaction

#: Activity kinds of the feed entries a conversion writes besides creates and updates.
CONVERTED = "convert"
ATTACHED = "attach"


@dataclass(frozen=True)
class TargetChoice:
    """What the user decided for one target on the review page (or in the API call).

    ``values``: the target's reviewed values, replacing the proposal whole (None:
    the proposal as it is). ``attach_to``: an existing record the target's unique
    keys match, to link instead of creating a twin.
    """

    include: bool = True
    values: Mapping[str, Any] | None = None
    attach_to: int | None = None


@dataclass(frozen=True)
class TargetProposal:
    """One target as the review page shows it before anything is written."""

    target: Target
    entity: Entity
    #: JSON values proposed for the fields the user may write (mapping + constants)
    values: Mapping[str, Any]
    #: fields the actor may not write that the mapping would fill (left out of values)
    skipped: tuple[str, ...] = ()
    #: existing records (readable by the actor) that hold one of the proposal's unique keys
    matches: tuple[int, ...] = ()
    #: a record the actor cannot see holds one of the keys (creating would be refused)
    hidden_match: bool = False


@dataclass(frozen=True)
class Proposal:
    """What ``convert`` would do for a source record, for the user to review."""

    conversion: Conversion
    source: Record
    targets: tuple[TargetProposal, ...]


@dataclass(frozen=True)
class Made:
    """A target's record after the conversion: created, or an existing one attached."""

    entity: str
    record_id: int
    attached: bool = False


@dataclass(frozen=True)
class ConversionResult:
    conversion: str
    source_entity: str
    source_id: int
    targets: Mapping[str, Made] = field(default_factory=dict)

    @property
    def main(self) -> Made:
        return next(iter(self.targets.values()))


class Converter:
    """Previews and runs the conversions a registry declares, through a records service."""

    def __init__(self, records: RecordService) -> None:
        self.records = records
        self.conversions: Mapping[str, Conversion] = conversions_of(
            records.schema.registry.document)

    def for_entity(self, entity: str) -> list[Conversion]:
        """The conversions whose source is ``entity`` (for its record page's buttons)."""
        return [c for c in self.conversions.values() if c.source == entity]

    def conversion(self, name: str, *, source_entity: str | None = None) -> Conversion:
        """The conversion ``name`` (of ``source_entity`` when given), or ``NotFoundError``."""
        found = self.conversions.get(name)
        if found is None or (source_entity is not None and found.source != source_entity):
            raise NotFoundError("conversion", name)
        return found

    def may_convert(self, actor: Actor, conversion: Conversion, source: Record) -> bool:
        """Whether the source's page should offer the conversion (the run checks again)."""
        registry = self.records.schema.registry
        try:
            self.records.policy.check_action(actor, registry.entity(conversion.source),
                                             "convert")
            for target in conversion.targets:
                if not target.optional:
                    self.records.policy.check_action(actor, registry.entity(target.entity),
                                                     "create")
        except ForbiddenError:
            return False
        return not self._is_converted(conversion, source)

    # --- review -------------------------------------------------------------------

    def preview(self, actor: Actor, name: str, source_id: int, *,
                source_entity: str | None = None) -> Proposal:
        """The values each target would get, and the existing records they match."""
        conversion = self.conversion(name, source_entity=source_entity)
        entity = self.records.schema.registry.entity(conversion.source)
        self.records.policy.check_action(actor, entity, "convert")
        source = self.records.get(actor, conversion.source, source_id)
        self._refuse_converted(conversion, source, source_id)
        proposals = []
        with self.records.engine.connect() as conn:
            for target in conversion.targets:
                plan = self.records.plan(target.entity)
                values, skipped = self._proposal(actor, conversion, target, source)
                matches: tuple[int, ...] = ()
                hidden = False
                if target.attach_existing:
                    holders = self._holders(conn, plan, values, InputSource.JSON)
                    seen = self._readable(actor, plan, holders)
                    matches = tuple(h for h in holders if h in seen)
                    hidden = len(matches) < len(holders)
                proposals.append(TargetProposal(target=target, entity=plan.entity,
                                                values=values, skipped=skipped,
                                                matches=matches, hidden_match=hidden))
        return Proposal(conversion=conversion, source=source, targets=tuple(proposals))

    # --- the run ------------------------------------------------------------------

    def convert(self, actor: Actor, name: str, source_id: int,
                choices: Mapping[str, TargetChoice] | None = None, *,
                source_entity: str | None = None,
                input_source: InputSource = InputSource.JSON) -> ConversionResult:
        """Convert the source record in one unit of work; all of it is written or none.

        Needs ``convert`` on the source (within scope), ``update`` on it and ``create``
        on each target made. Refuses a source already converted (``ConversionError``),
        also when a concurrent conversion got there first.
        """
        conversion = self.conversion(name, source_entity=source_entity)
        choices = dict(choices or {})
        unknown = sorted(set(choices) - {t.name for t in conversion.targets})
        if unknown:
            raise ValidationError(conversion.source, {
                f"targets.{n}": M("no target %(name)s in this conversion", name=repr(n))
                for n in unknown})
        splan = self.records.plan(conversion.source)
        self.records.policy.check_action(actor, splan.entity, "convert")
        made: dict[str, Made] = {}
        with self.records.transaction(actor, via=f"conversion:{conversion.name}") as tx:
            old = self.records._writable_row(tx.conn, splan, actor, source_id,
                                              action="convert", version=None, deleted=False)
            self._refuse_converted(conversion, old, source_id)
            self._refuse_linked(tx.conn, conversion, source_id)
            # What the actor cannot see of the source is not copied where they could.
            hidden = self.records.policy.hidden_fields(actor, splan.entity)
            seen = {k: v for k, v in old.items() if k not in hidden}
            marked = self._mark(tx, conversion, splan, source_id, version=old["version"])
            for target in conversion.targets:
                choice = choices.get(target.name, TargetChoice())
                if target.optional and not (choice.include if target.name in choices
                                            else target.selected):
                    continue
                try:
                    made[target.name] = self._make(tx, conversion, target, choice, seen,
                                                   source_id, made=made,
                                                   input_source=input_source)
                except ValidationError as exc:
                    # Say which target: two targets may share field names (or an entity).
                    raise ValidationError(target.entity, {
                        k if k.startswith(f"{target.name}.") else f"{target.name}.{k}": v
                        for k, v in exc.field_errors.items()}) from exc
            if conversion.record_field and conversion.record_target:
                tx.update(conversion.source, source_id,
                          {conversion.record_field: made[conversion.record_target].record_id},
                          version=marked.version)
            tx.log(splan, source_id, CONVERTED, at=self.records.clock(), changes=None)
        return ConversionResult(conversion=conversion.name, source_entity=conversion.source,
                                source_id=source_id, targets=made)

    # --- steps --------------------------------------------------------------------

    def _is_converted(self, conversion: Conversion, values: Mapping[str, Any]) -> bool:
        mark = conversion.mark
        if mark.stage is not None:
            return values.get("stage") == mark.stage
        return mark.field is not None and values.get(mark.field) == mark.value

    def _refuse_converted(self, conversion: Conversion, values: Mapping[str, Any],
                          source_id: int) -> None:
        if self._is_converted(conversion, values):
            entity = self.records.schema.registry.entity(conversion.source)
            raise ConversionError(conversion.source, source_id, reason="converted", message=M(
                "this %(what)s was already converted; it cannot be converted again",
                what=entity.label))

    def _refuse_linked(self, conn: Connection, conversion: Conversion,
                       source_id: int) -> None:
        """A live target already pointing back at the source means it was converted, even
        if someone set its mark back by hand since."""
        for target in conversion.targets:
            if not target.back_reference:
                continue
            plan = self.records.plan(target.entity)
            table = plan.table
            stmt = select(table.c.id).where(table.c[target.back_reference] == source_id)
            if plan.soft_delete:
                stmt = stmt.where(table.c.deleted_at.is_(None))
            if conn.execute(stmt.limit(1)).first() is not None:
                entity = self.records.schema.registry.entity(conversion.source)
                raise ConversionError(conversion.source, source_id, reason="converted",
                                      message=M("this %(what)s was already converted; it "
                                                "cannot be converted again",
                                                what=entity.label))

    def _mark(self, tx: Transaction, conversion: Conversion, splan: EntityPlan,
              source_id: int, *, version: int) -> Record:
        """Mark the source first: its version check is what makes a concurrent run lose."""
        mark = conversion.mark
        try:
            if mark.stage is not None:
                return tx.move_stage(conversion.source, source_id, to=mark.stage,
                                     version=version)
            return tx.update(conversion.source, source_id, {str(mark.field): mark.value},
                             version=version)
        except ConflictError:
            raise ConversionError(conversion.source, source_id, reason="changed", message=M(
                "this %(what)s was converted or changed by someone else at the same time; "
                "open it again to see where it stands", what=splan.entity.label)) from None

    def _proposal(self, actor: Actor, conversion: Conversion, target: Target,
                  source: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Mapped and constant values as JSON, without fields the actor may not write."""
        registry = self.records.schema.registry
        sentity = registry.entity(conversion.source)
        tentity = registry.entity(target.entity)
        closed = self.records.policy.readonly_fields(actor, tentity) | \
            self.records.policy.hidden_fields(actor, tentity)
        values: dict[str, Any] = {}
        skipped: list[str] = []
        for tname, sname in target.mapping:
            value = to_json(sentity.field(sname), source.get(sname))
            if value is None or value == [] or value == {}:
                continue
            if tname in closed:
                skipped.append(tname)
            else:
                values[tname] = value
        for tname, constant in target.constants:
            if tname in closed:
                skipped.append(tname)
            else:
                values[tname] = constant
        return values, tuple(skipped)

    def _holders(self, conn: Connection, plan: EntityPlan, values: Mapping[str, Any],
                 source: InputSource) -> list[int]:
        """Stored records holding any unique key of ``values`` (whether the actor sees them
        or not: the caller decides what to tell)."""
        rows = RowPreparer(plan, source).prepare(
            [values], now=self.records.clock(), readonly=frozenset(), owner_default=None,
            bulk=False, errors={})
        found: list[int] = []
        for dup in duplicates(conn, plan, rows):
            if dup.existing_id is not None and int(dup.existing_id) not in found:
                found.append(int(dup.existing_id))
        return found

    def _readable(self, actor: Actor, plan: EntityPlan, ids: Sequence[int]) -> set[int]:
        return {i for i in ids if self._can_read(actor, plan, i)}

    def _can_read(self, actor: Actor, plan: EntityPlan, record_id: int) -> bool:
        try:
            self.records.get(actor, plan.name, record_id)
        except NotFoundError:
            return False
        return True

    def _make(self, tx: Transaction, conversion: Conversion, target: Target,
              choice: TargetChoice, source: Mapping[str, Any], source_id: int, *,
              made: Mapping[str, Made], input_source: InputSource) -> Made:
        """Create the target (or attach the chosen existing record) and link it."""
        plan = self.records.plan(target.entity)
        if choice.values is not None:
            values = dict(choice.values)
            engine_set = sorted(target.filled_by_engine & set(values))
            if engine_set:
                raise ValidationError(target.entity, {
                    f"{target.name}.{n}": M("is set by the conversion") for n in engine_set})
        else:
            values, _ = self._proposal(tx.actor, conversion, target, source)
            input_source = InputSource.JSON
        if choice.attach_to is not None:
            return self._attach(tx, target, plan, choice.attach_to, values, source_id,
                                input_source=input_source)
        links: dict[str, Any] = {f: made[other].record_id for f, other in target.links
                                 if other in made}
        if target.back_reference:
            links[target.back_reference] = source_id
        if input_source is InputSource.STRING:
            links = {k: str(v) for k, v in links.items()}
        record = tx.create(target.entity, {**values, **links}, source=input_source)
        return Made(entity=target.entity, record_id=record.id)

    def _attach(self, tx: Transaction, target: Target, plan: EntityPlan, record_id: int,
                values: Mapping[str, Any], source_id: int, *,
                input_source: InputSource) -> Made:
        """Link an existing record the proposal matches instead of creating its twin."""
        actor = tx.actor
        if not target.attach_existing or \
                record_id not in self._holders(tx.conn, plan, values, input_source):
            raise ValidationError(target.entity, {f"{target.name}.attach_to": M(
                "is not an existing record matching these values")})
        found = self.records._scoped_row(tx.conn, plan, actor, record_id, action="update",
                                         deleted=False)
        if found is None:
            raise NotFoundError(plan.name, record_id)
        row, may_update = found
        current = plan.to_values(row)
        back = target.back_reference
        writable = back is not None and may_update and back not in (
            self.records.policy.readonly_fields(actor, plan.entity)
            | self.records.policy.hidden_fields(actor, plan.entity))
        if back is not None and writable and current.get(back) is None:
            tx.update(target.entity, record_id, {back: source_id}, version=current["version"])
        tx.log(plan, record_id, ATTACHED, at=self.records.clock(), changes=None)
        return Made(entity=target.entity, record_id=record_id, attached=True)
