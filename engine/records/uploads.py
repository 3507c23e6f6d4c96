"""File fields: storage keys the server issued, taken by writes, never shown to readers.

A file's bytes lie under a *storage key* chosen by the server. The key stays
in the record (the download route finds the bytes with it, after checking that
the reader may read the record and the field) and nowhere else: not in an API
answer, not in a screen, not in a payload. Instead:

1. an upload stores the bytes and registers them (``register``): a row in the
   ``tp_upload`` ledger holding the key and an opaque ``token`` for the uploader;
2. a create or update names the token as the field's value,
   ``{"upload_id": "<token>"}``; ``resolve`` replaces it with the stored value,
   if the token was issued for that entity and field, to that user, and is unused;
3. in the write's transaction ``attach`` binds the upload to the record: the
   token is spent, and a second write naming it (this record or any other) is
   refused as if it had never been issued.

So a client can neither forge a key nor move a key it once saw to another record:
a value carrying a ``key`` is refused (422) unless the engine itself writes it
(``Actor.system()``: imports and migrations of stored files), and a remembered
key or token is worthless once the record is out of reach.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from engine.actor import Actor
from engine.metadata.model import FieldType
from engine.records._plan import EntityPlan
from engine.records.coerce import InputSource

UPLOAD_ID = "upload_id"
#: Longest token looked up (issued ones are 32 characters).
MAX_TOKEN = 64
NOT_ISSUED = "no upload with this upload_id for this field: upload the file first"
KEY_REFUSED = "a file is set by uploading it: send the upload_id the upload returned"


def file_fields(plan: EntityPlan) -> tuple[str, ...]:
    return tuple(n for n, fp in plan.fields.items() if fp.field.type is FieldType.FILE)


def public_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A stored file value as readers see it: name, size and type, never the storage key."""
    return {k: v for k, v in value.items() if k in ("name", "size", "content_type")}


def register(conn: Connection, table: Table, *, entity: str, field: str,
             uploaded_by: int | None, storage_key: str, name: str, size: int,
             content_type: str, now: datetime) -> str:
    """Record stored bytes in the ledger; returns the opaque token the uploader writes."""
    token = secrets.token_urlsafe(24)
    conn.execute(insert(table).values(
        token=token, storage_key=storage_key, entity=entity, field=field,
        uploaded_by=uploaded_by, name=name, size=size, content_type=content_type,
        created_at=now))
    return token


@dataclass(frozen=True)
class Pending:
    """An upload a payload names, to bind to the written record (row ``index``)."""

    index: int
    field: str
    token: str
    error_key: str


def _error_key(index: int, name: str, bulk: bool) -> str:
    return f"{index}.{name}" if bulk else name


def resolve(conn: Connection, table: Table, plan: EntityPlan, actor: Actor,
            payloads: Sequence[Mapping[str, Any]], *, source: InputSource, bulk: bool,
            errors: dict[str, str]) -> tuple[list[Mapping[str, Any]], list[Pending]]:
    """Payloads with each ``{"upload_id": token}`` replaced by its stored value.

    A token that was not issued for this entity and field to this actor, or was
    used already, and any client value carrying its own storage key, are errors
    on the field (the value is dropped, so no later check talks over the error).
    Returns the uploads to ``attach`` once the rows are written.
    """
    names = file_fields(plan)
    if not names or not any(n in p for p in payloads for n in names):
        return list(payloads), []
    wanted: list[tuple[int, str, str]] = []
    refused: list[tuple[int, str]] = []
    for i, payload in enumerate(payloads):
        for name in names:
            value = _value(payload.get(name), source)
            if not isinstance(value, dict):
                continue   # empty (a removal) or malformed: the coercer says which
            token = value.get(UPLOAD_ID)
            if set(value) == {UPLOAD_ID} and isinstance(token, str):
                wanted.append((i, name, token))
            elif not actor.is_system:
                errors[_error_key(i, name, bulk)] = KEY_REFUSED
                refused.append((i, name))
    if not wanted and not refused:
        return list(payloads), []
    tokens = sorted({t for _, _, t in wanted if 0 < len(t) <= MAX_TOKEN})
    stmt = select(table).where(table.c.token.in_(tokens), table.c.entity == plan.name,
                               table.c.attached_at.is_(None))
    if not actor.is_system:
        stmt = stmt.where(table.c.uploaded_by == actor.user_id)
    found = {}
    if tokens:  # on the write's own connection: one transaction sees and binds them
        found = {row.token: row for row in conn.execute(stmt)}
    out = [dict(p) for p in payloads]
    for i, name in refused:
        out[i].pop(name, None)
    pending: list[Pending] = []
    used: set[str] = set()
    for i, name, token in wanted:
        row = found.get(token)
        key = _error_key(i, name, bulk)
        if row is None or row.field != name or token in used:
            errors[key] = NOT_ISSUED
            out[i].pop(name, None)
            continue
        used.add(token)
        stored = {"name": row.name, "size": int(row.size), "content_type": row.content_type,
                  "key": row.storage_key}
        out[i][name] = json.dumps(stored) if source is InputSource.STRING else stored
        pending.append(Pending(i, name, token, key))
    result: list[Mapping[str, Any]] = list(out)
    return result, pending


def _value(raw: Any, source: InputSource) -> Any:
    if isinstance(raw, str) and InputSource(source) is InputSource.STRING and raw.strip():
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def attach(conn: Connection, table: Table, pending: Sequence[Pending], *, ids: Sequence[int],
           now: datetime, errors: dict[str, str]) -> None:
    """Bind each named upload to its written record (``ids[index]``), spending its token.

    Runs in the write's transaction: a token another write spent in the meantime
    fails here (its row is no longer unattached) and the whole write rolls back.
    """
    for p in pending:
        result = conn.execute(update(table)
                              .where(table.c.token == p.token, table.c.attached_at.is_(None))
                              .values(record_id=ids[p.index], attached_at=now))
        if result.rowcount != 1:
            errors[p.error_key] = NOT_ISSUED
