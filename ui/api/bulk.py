"""``POST /api/v1/{entity}/bulk``: create up to ``MAX_RECORDS`` records in one request.

The body is ``{"records": [...], "atomic": true}``. Atomic (the default) is all
or nothing: 201 with the new ids in order, or one 422 ``validation`` problem
whose ``errors`` are keyed by row and field (``"3.phone"``) and nothing written.
With ``"atomic": false`` the valid rows are created and the others reported:
200 with one result per row (``{"index": 3, "errors": {...}}`` or
``{"index": 0, "id": 17}``). Each record is what ``POST /{entity}`` takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.records.bulk_results import create_each
from ui.api.problems import Problem

if TYPE_CHECKING:
    from starlette.responses import Response

    from ui.api.app import Call

#: Records per request; larger imports go in several requests (or ``tidepool import``).
MAX_RECORDS = 1000
#: The largest bulk body read (bytes): MAX_RECORDS records of about 8 KiB each.
MAX_BULK_BODY = 8 * 1024 * 1024


def bulk_payload(body: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The records and the mode of a bulk body, or a 422 problem naming what is wrong."""
    errors: dict[str, str] = {
        name: f"unknown member {name!r}" for name in sorted(set(body) - {"records", "atomic"})}
    records = body.get("records")
    atomic = body.get("atomic", True)
    if not isinstance(records, list) or not records:
        errors["records"] = "a non-empty array of records"
    elif len(records) > MAX_RECORDS:
        errors["records"] = f"at most {MAX_RECORDS} records per request"
    else:
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                errors[str(i)] = "each record must be a JSON object"
    if not isinstance(atomic, bool):
        errors["atomic"] = "true (all or nothing) or false (a result per record)"
    if errors:
        raise Problem(422, "the bulk request is not valid", kind="validation", errors=errors)
    assert isinstance(records, list)
    return records, atomic


def bulk_create(call: Call) -> Response:
    from ui.api.app import json_response

    assert call.body is not None
    records, atomic = bulk_payload(call.body)
    warnings = call.runtime.records.dedup_warnings(call.actor, call.entity, records)
    shown = [{"index": w.index, **w.as_json()} for w in warnings]
    if atomic:
        ids = call.runtime.records.bulk_create(call.actor, call.entity, records)
        body: dict[str, object] = {"created": len(ids), "ids": ids}
        if shown:  # only then, so answers without matches stay as they were
            body["warnings"] = shown
        return json_response(body, status=201)
    results = create_each(call.runtime.records, call.actor, call.entity, records)
    created = sum(1 for r in results if r.created)
    answer: dict[str, object] = {
        "created": created, "failed": len(results) - created,
        "results": [{"index": r.index, "id": r.id} if r.created
                    else {"index": r.index, "errors": r.errors} for r in results]}
    if shown:
        answer["warnings"] = [w for w in shown if results[int(str(w["index"]))].created]
    return json_response(answer)
