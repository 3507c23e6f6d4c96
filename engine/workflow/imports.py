"""Import a table of rows into an entity through the records service, losing none.

Every row of the file ends in exactly one place: created, updated (upsert mode),
skipped (skip mode: its unique key is already taken), or the error report with the
reason. Rows go in batches, each through one unit of work (permissions,
validation, match-key duplicates, activity, distribution hooks); a row the
service refuses leaves its batch and goes to the report, and the rest of the
batch is written again, so a batch commits whole or not at all and nothing is
half-written. ``created + updated + skipped + rejected == total`` always holds.
"""

from __future__ import annotations

import csv
import enum
import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.actor import Actor
from engine.errors import (
    DuplicateError,
    ForbiddenError,
    NotFoundError,
    TidepoolError,
    ValidationError,
)
from engine.messages import M, message_of
from engine.metadata.model import Entity
from engine.records import RecordService
from engine.records.coerce import CoercionError, InputSource
from engine.records.dedup import DedupWarning, holders, key_of_row
from engine.storage.matchkeys import text_key
from engine.workflow.import_files import TableFile

#: Who the activity feed names as the channel of imported writes.
VIA = "import"
DEFAULT_BATCH = 1000


class ImportMode(str, enum.Enum):
    """What happens to a row whose unique key a stored record already holds."""

    INSERT = "insert"   # refused: it goes to the error report
    UPSERT = "upsert"   # the stored record is updated with the row's non-empty cells
    SKIP = "skip"       # left alone and counted as skipped


@dataclass(frozen=True)
class Rejected:
    """A row that did not go in, with the line a spreadsheet shows and why.

    ``parts`` are (column header, message) pairs - the header empty for a reason that
    belongs to the whole row - with messages as engine ``Message``s, so whoever shows
    the report translates them (``reason`` is the English text, for logs and the CLI).
    """

    line: int
    cells: tuple[str, ...]
    parts: tuple[tuple[str, str], ...]

    @property
    def reason(self) -> str:
        return reason_text(self.parts)


def reason_text(parts: Sequence[tuple[str, str]],
                translate: Callable[[str], str] = str) -> str:
    """One line for a report: ``column: message`` pairs, joined by ``; ``."""
    return "; ".join(f"{column}: {translate(message)}" if column else translate(message)
                     for column, message in parts)


@dataclass(frozen=True)
class Warned:
    """A row that went in although a fuzzy dedup rule matched a stored record."""

    line: int
    cells: tuple[str, ...]
    warning: str


@dataclass
class ImportReport:
    """Counts of one import (or dry run), the rejected rows and the warned ones."""

    total: int
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0
    #: Created rows that look like duplicates (fuzzy rules): in, but worth a look.
    warned: list[Warned] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.created + self.updated + self.skipped + len(self.rejected)

    def as_progress(self) -> dict[str, Any]:
        return {"total": self.total, "done": self.done, "created": self.created,
                "updated": self.updated, "skipped": self.skipped,
                "rejected": len(self.rejected), "warned": len(self.warned),
                "dry_run": self.dry_run}


Progress = Callable[[ImportReport], None]


class _DryRun(Exception):
    """Raised inside a unit of work to roll a dry run's batch back."""


def match_columns(entity: Entity, headers: Sequence[str],
                  remembered: Mapping[str, str] | None = None) -> dict[str, str]:
    """Header -> field name: a remembered mapping first, then the field's name or its
    label in any language, compared as match keys (case, width and spaces ignored)."""
    names: dict[str, str] = {}
    for f in entity.fields:
        for spelling in (f.name, *f.label.as_dict().values()):
            key = text_key(spelling)
            if key:
                names.setdefault(key, f.name)
    mapping: dict[str, str] = {}
    for header in headers:
        wanted = (remembered or {}).get(header)
        if wanted is not None and entity.has_field(wanted):
            mapping[header] = wanted
            continue
        key = text_key(header)
        if key and key in names and names[key] not in mapping.values():
            mapping[header] = names[key]
    return mapping


def warning_text(warning: DedupWarning) -> str:
    """One line for a report: the rule's message and the matched record - named only
    when the importing user may read it, else whom to ask (as refusals do). A
    translatable ``Message``: the rule's message is metadata in both languages."""
    message: object = warning.message if warning.message.get() else \
        M("possible duplicate (%(rule)s)", rule=warning.rule)
    if warning.existing_id is not None:
        return M("%(message)s (%(entity)s %(id)s: %(title)s)", message=message,
                 entity=warning.entity, id=warning.existing_id, title=warning.title or "")
    return M("%(message)s (a %(entity)s you cannot see; ask %(ask)s)", message=message,
             entity=warning.entity, ask=warning.ask or M("an administrator"))


def _reason(errors: Mapping[str, str],
            columns: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((columns.get(name, name), message) for name, message in errors.items())


def _whole_row(message: str) -> tuple[tuple[str, str], ...]:
    return (("", message),)


class _Importer:
    def __init__(self, records: RecordService, actor: Actor, *, entity: str,
                 table: TableFile, mapping: Mapping[str, str], mode: ImportMode,
                 dry_run: bool) -> None:
        self.records = records
        self.actor = actor
        self.entity = entity
        self.plan = records.plan(entity)
        self.table = table
        self.mode = mode
        self.dry_run = dry_run
        unknown = sorted(f for f in mapping.values() if f not in self.plan.fields)
        if unknown:
            raise ValidationError(entity, {"mapping": M("unknown field(s) %(value)s",
                                                        value=', '.join(unknown))})
        index = {h: i for i, h in enumerate(table.headers)}
        self.columns = [(index[h], f) for h, f in mapping.items() if h in index]
        self.header_of = {f: h for h, f in mapping.items()}
        self.seen: dict[tuple[int, tuple[Any, ...]], int] = {}
        self.report = ImportReport(total=len(table.rows), dry_run=dry_run)
        self.warnings: dict[int, str] = {}   # line -> warning, of the current batch

    def payload(self, cells: tuple[str, ...]) -> dict[str, str]:
        # An empty cell is no value: a default applies on insert, nothing changes on update.
        return {f: cells[i] for i, f in self.columns if cells[i] != ""}

    def keys(self, payload: Mapping[str, str]) -> tuple[tuple[Any, ...], ...]:
        return key_of_row(self.plan, self._coerced(payload))

    def reject(self, line: int, cells: tuple[str, ...],
               parts: tuple[tuple[str, str], ...]) -> None:
        self.report.rejected.append(Rejected(line, cells, parts))

    def batch(self, rows: Sequence[tuple[int, tuple[str, ...]]]) -> None:
        fresh: list[tuple[int, tuple[str, ...], dict[str, str], tuple[Any, ...]]] = []
        for line, cells in rows:
            payload = self.payload(cells)
            keys = self.keys(payload)
            earlier = next((self.seen[(i, k)] for i, k in enumerate(keys)
                            if k and (i, k) in self.seen), None)
            if earlier is not None:
                self.reject(line, cells, _whole_row(
                    M("the same key as line %(line)s of this file", line=earlier)))
                continue
            for i, k in enumerate(keys):
                if k:
                    self.seen[(i, k)] = line
            fresh.append((line, cells, payload, keys))
        updates: list[tuple[int, tuple[str, ...], dict[str, str], int]] = []
        if self.mode is not ImportMode.INSERT and fresh and self.plan.uniques:
            probe = [self._coerced(p) for _, _, p, _ in fresh]
            with self.records.engine.connect() as conn:
                found = holders(conn, self.plan, probe)
            inserts = []
            for row, holder in zip(fresh, found):
                if holder is None:
                    inserts.append(row)
                elif self.mode is ImportMode.SKIP:
                    self.report.skipped += 1
                else:
                    updates.append((row[0], row[1], row[2], holder))
            fresh = inserts
        warnings: dict[int, str] = {}
        if fresh and self.plan.entity.dedup_rules:
            matched = self.records.dedup_warnings(self.actor, self.entity,
                                                  [p for _, _, p, _ in fresh],
                                                  source=InputSource.STRING)
            for w in matched:
                warnings.setdefault(fresh[w.index][0], warning_text(w))
        self.warnings = warnings
        self._insert([(line, cells, payload) for line, cells, payload, _ in fresh])
        for line, cells, payload, holder in updates:
            self._update(line, cells, payload, holder)

    def _coerced(self, payload: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in self.plan.uniques:
            for name in spec.fields:
                raw = payload.get(name)
                try:
                    out[name] = None if raw is None else \
                        self.plan.fields[name].coerce_string(raw)
                except CoercionError:
                    out[name] = None
        return out

    def _insert(self, rows: list[tuple[int, tuple[str, ...], dict[str, str]]]) -> None:
        while rows:
            try:
                with self.records.transaction(self.actor, via=VIA) as tx:
                    tx.bulk_create(self.entity, [p for _, _, p in rows],
                                   source=InputSource.STRING)
                    if self.dry_run:
                        raise _DryRun
            except _DryRun:
                pass
            except ValidationError as exc:
                refused = self._split(exc.field_errors, len(rows))
                if not refused:  # an error no row is named in: the batch as a whole
                    for line, cells, _ in rows:
                        self.reject(line, cells, _reason(exc.field_errors, self.header_of))
                    return
                for i in sorted(refused):
                    line, cells, _ = rows[i]
                    self.reject(line, cells, _reason(refused[i], self.header_of))
                rows = [r for i, r in enumerate(rows) if i not in refused]
                continue
            except (DuplicateError, ForbiddenError) as exc:
                for line, cells, _ in rows:
                    self.reject(line, cells, _whole_row(message_of(exc)))
                return
            self.report.created += len(rows)
            self.report.warned += [Warned(line, cells, self.warnings[line])
                                   for line, cells, _ in rows if line in self.warnings]
            return

    @staticmethod
    def _split(errors: Mapping[str, str], count: int) -> dict[int, dict[str, str]]:
        refused: dict[int, dict[str, str]] = {}
        for key, message in errors.items():
            head, _, name = key.partition(".")
            if head.isdigit() and int(head) < count and name:
                refused.setdefault(int(head), {})[name] = message
        return refused

    def _update(self, line: int, cells: tuple[str, ...], payload: dict[str, str],
                holder: int) -> None:
        try:
            with self.records.transaction(self.actor, via=VIA) as tx:
                current = self.records.get(self.actor, self.entity, holder)
                tx.update(self.entity, holder, payload, version=current.version,
                          source=InputSource.STRING)
                if self.dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        except NotFoundError:
            self.reject(line, cells, _whole_row(M(
                "a record with this key exists that you cannot see; "
                "ask its owner or an administrator")))
            return
        except ValidationError as exc:
            self.reject(line, cells, _reason(exc.field_errors, self.header_of))
            return
        except TidepoolError as exc:
            self.reject(line, cells, _whole_row(message_of(exc)))
            return
        self.report.updated += 1


def run_import(records: RecordService, actor: Actor, *, entity: str, table: TableFile,
               mapping: Mapping[str, str], mode: ImportMode = ImportMode.INSERT,
               dry_run: bool = False, batch: int = DEFAULT_BATCH,
               progress: Progress | None = None) -> ImportReport:
    """Import ``table``'s rows into ``entity`` as ``actor``; see the module docstring.

    Raises ``ForbiddenError`` before writing anything when the actor may not create
    records of the entity (or, in upsert mode, update them either).
    """
    plan = records.plan(entity)
    records.policy.check_action(actor, plan.entity, "create")
    if mode is ImportMode.UPSERT:
        records.policy.check_action(actor, plan.entity, "update")
    started = time.perf_counter()
    importer = _Importer(records, actor, entity=entity, table=table, mapping=mapping,
                         mode=mode, dry_run=dry_run)
    rows = table.rows
    for start in range(0, len(rows), max(1, batch)):
        importer.batch(rows[start:start + batch])
        importer.report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(importer.report)
    report = importer.report
    report.rejected.sort(key=lambda r: r.line)
    report.warned.sort(key=lambda r: r.line)
    report.seconds = time.perf_counter() - started
    return report


def error_report(table: TableFile, report: ImportReport, *,
                 translate: Callable[[str], str] = str) -> bytes:
    """The rejected rows as a CSV Excel opens in either language (UTF-8 with BOM):
    the original columns, then the line and the reason, both headers and reasons
    passed through ``translate`` (the UI gives the importing user's language)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*table.headers, translate(M("line")), translate(M("error"))])
    for row in report.rejected:
        writer.writerow([*row.cells, row.line, reason_text(row.parts, translate)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def warning_report(table: TableFile, report: ImportReport, *,
                   translate: Callable[[str], str] = str) -> bytes:
    """The created rows that look like duplicates, as a CSV (UTF-8 with BOM): the
    original columns, the line and the warning (translated as ``error_report`` does).
    Not for re-import: these rows are in."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*table.headers, translate(M("line")), translate(M("warning"))])
    for row in report.warned:
        writer.writerow([*row.cells, row.line, translate(row.warning)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
