"""Auto numbers such as ``OPP-{YYYY}{MM}-{seq:5}`` from rows of ``tp_sequence``.

The counter is kept per (entity, field, period), where the period is the date
part of the format ("202611" for ``{YYYY}{MM}``), so numbering restarts each
period. Values are reserved with one upsert ... RETURNING in the caller's
transaction: concurrent writers serialise on the counter row, and a rolled
back insert takes its reservation with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import MetadataError, MetadataIssue
from engine.metadata.model import Field

DEFAULT_FORMAT = "{seq}"
_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|seq(?::(\d{1,2}))?)\}")


@dataclass(frozen=True)
class AutoNumberFormat:
    """A parsed auto-number format."""

    text: str

    def period(self, now: datetime) -> str:
        """The part of the format that resets the counter (date tokens only)."""
        return "".join(_date_token(m.group(1), now) for m in _TOKEN.finditer(self.text)
                       if not m.group(1).startswith("seq"))

    def render(self, now: datetime, seq: int) -> str:
        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("seq"):
                width = int(match.group(2) or 0)
                return str(seq).zfill(width)
            return _date_token(token, now)

        return _TOKEN.sub(replace, self.text)


def _date_token(token: str, now: datetime) -> str:
    return {"YYYY": f"{now.year:04d}", "YY": f"{now.year % 100:02d}",
            "MM": f"{now.month:02d}", "DD": f"{now.day:02d}"}[token]


def parse_format(field: Field) -> AutoNumberFormat:
    """Read a field's format; one without ``{seq}`` could never be unique, so it is refused."""
    text = field.format or DEFAULT_FORMAT
    if not any(m.group(1).startswith("seq") for m in _TOKEN.finditer(text)):
        raise MetadataError([MetadataIssue(field.source.file, field.source.pointer,
                                           f"auto number format {text!r} has no {{seq}}")])
    return AutoNumberFormat(text)


def reserve(conn: Connection, sequence: Table, *, entity: str, field: str, period: str,
            count: int = 1) -> int:
    """Advance the counter by ``count`` and return its new last value.

    The reserved values are ``last - count + 1 .. last``.
    """
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(sequence).values(entity=entity, field=field, period=period,
                                     last_value=count)
    stmt = upsert.on_conflict_do_update(
        index_elements=[sequence.c.entity, sequence.c.field, sequence.c.period],
        set_={"last_value": sequence.c.last_value + count},
    ).returning(sequence.c.last_value)
    return int(conn.execute(stmt).scalar_one())
