"""Read an uploaded table (CSV or XLSX) into a header row and string cells, within bounds.

Excel in China saves CSV as GB18030 (GBK) unless told otherwise, and as UTF-8
with a byte-order mark when it is; both are detected here, so a user never picks
an encoding. Every cell comes back as a string (or "" when empty): the records
service coerces strings exactly as it does form input.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from engine.errors import TidepoolError
from engine.messages import M

#: Largest file accepted (bytes); an XLSX is zip-compressed, so its cells are bounded too.
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 1_000_000
MAX_COLUMNS = 200
MAX_CELL = 10_000


class ImportFileError(TidepoolError):
    """The file cannot be read as a table (wrong format, too big, no header)."""


@dataclass(frozen=True)
class TableFile:
    """The header and the data rows (line numbers as a spreadsheet shows them)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    encoding: str


def decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding it was in: UTF-8 (with or without BOM), else GB18030."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise ImportFileError(M("the file is neither UTF-8 nor GB18030 text; save it as "
                              "CSV UTF-8 or as an Excel workbook")) from exc


def read_table(data: bytes, *, filename: str) -> TableFile:
    """Parse ``data`` by its file name's extension (.csv or .xlsx)."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(M("the file is larger than %(value)s MB",
                                value=MAX_BYTES // (1024 * 1024)))
    name = filename.lower()
    if name.endswith(".xlsx"):
        return _bounded(*_xlsx(data), "xlsx")
    if name.endswith((".csv", ".txt")):
        text, encoding = decode(data)
        return _bounded(*_csv(text), encoding)
    raise ImportFileError(M("only .csv and .xlsx files can be imported"))


def _csv(text: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        headers = next(reader)
    except StopIteration as exc:
        raise ImportFileError(M("the file is empty")) from exc
    except csv.Error as exc:
        raise ImportFileError(M("not a readable CSV file: %(exc)s", exc=exc)) from exc

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as exc:
            raise ImportFileError(M("line %(line_num)s: %(exc)s",
                                    line_num=reader.line_num, exc=exc)) from exc

    return headers, rows()


def _xlsx(data: bytes) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(M("not a readable .xlsx workbook")) from exc
    sheet = book.worksheets[0]
    cells = sheet.iter_rows(values_only=True)
    try:
        headers = [_cell(v) for v in next(cells)]
    except StopIteration as exc:
        raise ImportFileError(M("the first sheet is empty")) from exc

    def rows() -> Iterator[tuple[int, list[str]]]:
        for line, values in enumerate(cells, start=2):
            yield line, [_cell(v) for v in values]
        book.close()

    return headers, rows()


def _cell(value: object) -> str:
    """A spreadsheet value as the string a user would have typed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # 13000000003 stored as a float must not come back as "13000000003.0".
        return str(int(value)) if value.is_integer() else str(Decimal(str(value)))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _bounded(headers: list[str], rows: Iterator[tuple[int, list[str]]],
             encoding: str) -> TableFile:
    clean = [h.strip() for h in headers]
    while clean and not clean[-1]:
        clean.pop()
    if not any(clean):
        raise ImportFileError(M("the first row must name the columns"))
    if len(clean) > MAX_COLUMNS:
        raise ImportFileError(M("more than %(max_columns)s columns", max_columns=MAX_COLUMNS))
    width = len(clean)
    out: list[tuple[int, tuple[str, ...]]] = []
    for line, row in rows:
        cells = [c.strip() for c in row[:width]] + [""] * max(0, width - len(row))
        if not any(cells):
            continue  # blank lines are not rows
        if any(len(c) > MAX_CELL for c in cells):
            raise ImportFileError(M("line %(line)s: a cell is longer than %(max_cell)s characters",
                                    line=line, max_cell=MAX_CELL))
        out.append((line, tuple(cells)))
        if len(out) > MAX_ROWS:
            raise ImportFileError(M("more than %(max_rows)s rows; split the file",
                                    max_rows=MAX_ROWS))
    return TableFile(tuple(clean), tuple(out), encoding)
