"""A report's table as CSV or XLSX: the rows and the totals the reader sees.

Numbers are written as numbers (ratios as fractions, 0.25 = 25%) so a
spreadsheet can add them up; labels are the reader's language. A text cell a
spreadsheet would run as a formula (= + - @ or a control character first) is
written as text, as list exports do.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import Workbook

from engine.reports.result import ReportResult, Row

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value: int | Decimal | None) -> int | float | str:
    if value is None:
        return ""
    if isinstance(value, int):
        return value
    return float(round(value, 6))


def table(result: ReportResult, locale: str, *, total_label: str) -> tuple[list[str],
                                                                           list[list[object]]]:
    """Header and body rows (totals last) of a report result."""
    header = [safe_text(d.label.get(locale) or d.name) for d in result.dimensions]
    header += [safe_text(m.label.get(locale) or m.name) for m in result.measures]

    def line(row: Row, labels: list[str]) -> list[object]:
        return [*(safe_text(x) for x in labels),
                *(_number(row.cells[m.name].value) for m in result.measures)]

    body = [line(r, list(r.labels)) for r in result.rows]
    if result.dimensions:
        body.append(line(result.totals, [total_label] + [""] * (len(result.dimensions) - 1)))
    return header, body


def to_csv(result: ReportResult, locale: str, *, total_label: str) -> bytes:
    header, body = table(result, locale, total_label=total_label)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(body)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")   # BOM: Excel reads it as UTF-8


def to_xlsx(result: ReportResult, locale: str, *, total_label: str) -> bytes:
    header, body = table(result, locale, total_label=total_label)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=result.report.name[:31])
    sheet.append(header)
    for row in body:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
