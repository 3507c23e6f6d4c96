"""Lists as CSV and XLSX files, under the actor's *export* grant.

Rows come from ``RecordService.list(action="export")`` page by page, so an
export holds exactly the rows the actor may export -- never another rep's
private rows -- and at most ``EXPORT_CAP`` of them. Cells are the texts the
screen shows (option labels, names). A header or cell that a spreadsheet would
run as a formula (starting with = + - @, a tab or a carriage return, or the
full-width ＝ ＋ － ＠ that Excel also reads as formula signs) is written as text,
behind a leading apostrophe. Headers too: their labels are admin-defined text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook

from engine.actor import Actor
from engine.metadata.model import Entity, Field
from engine.records.query import ListQuery
from engine.records.record import Record
from engine.runtime import Runtime
from ui.screens.records.display import Names, display, resolve_names, system_display, system_label

EXPORT_CAP = 10_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n",
                  "\uff1d", "\uff0b", "\uff0d", "\uff20")


def export_records(runtime: Runtime, actor: Actor, entity: Entity,
                   query: ListQuery) -> list[Record]:
    """Every row the actor may export that matches ``query`` (up to ``EXPORT_CAP``)."""
    rows: list[Record] = []
    after = None
    while len(rows) < EXPORT_CAP:
        page = runtime.records.list(actor, entity.name, ListQuery(
            filters=query.filters, search=query.search, sort=query.sort, limit=200,
            after=after), action="export")
        rows.extend(page.rows)
        if not page.has_more:
            break
        after = page.next_token
    return rows[:EXPORT_CAP]


def safe_cell(text: str) -> str:
    """The text as a spreadsheet shows it, never run: formula starters get an apostrophe."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _table(runtime: Runtime, actor: Actor, entity: Entity, fields: Sequence[Field],
           records: Sequence[Record], locale: str) -> tuple[list[str], list[list[str]]]:
    names: Names = resolve_names(runtime, actor, entity, records, fields=fields)
    system = [c for c in ("owner_id", "created_at", "updated_at")
              if any(c in r for r in records[:1])]
    header = ["ID", *(f.label.get(locale) for f in fields),
              *(system_label(c, locale) for c in system)]
    body = [[str(r.id), *(display(f, r.get(f.name), locale, names) for f in fields),
             *(system_display(c, r.get(c), names, locale=locale) for c in system)] for r in records]
    return header, body


def to_csv(runtime: Runtime, actor: Actor, entity: Entity, fields: Sequence[Field],
           records: Sequence[Record], locale: str) -> bytes:
    header, body = _table(runtime, actor, entity, fields, records, locale)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(c) for c in header])
    writer.writerows([safe_cell(c) for c in row] for row in body)
    return ("\ufeff" + out.getvalue()).encode()  # the BOM makes Excel read UTF-8 (Chinese)


def to_xlsx(runtime: Runtime, actor: Actor, entity: Entity, fields: Sequence[Field],
            records: Sequence[Record], locale: str) -> bytes:
    header, body = _table(runtime, actor, entity, fields, records, locale)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=entity.name[:31])
    sheet.append([safe_cell(c) for c in header])
    for row in body:
        sheet.append([safe_cell(c) for c in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
