"""Merging duplicates in the JSON API, and the OpenAPI paths of it (soft-delete entities).

* ``POST /{entity}/merge`` ``{"survivor_id", "merged_ids", "values"}``: 201 with the
  merge (``Location``: the merge) and the survivor as stored;
* ``GET /{entity}/merges/{merge_id}``: one merge, for whoever may read its survivor;
* ``POST /{entity}/merges/{merge_id}/undo``: restores what the merge changed.

A GET of a merged record answers ``308 Permanent Redirect`` to the survivor with a
problem body of type ``urn:tidepool:problem:merged`` (ui/api/problems.py).
The rules are engine/records/merge.py's; these handlers check the body's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.metadata.model import Entity, Feature
from engine.records.coerce import MAX_ID
from engine.records.merge import MAX_MERGED, MergeResult, get_merge
from ui.api.problems import Problem

if TYPE_CHECKING:
    from starlette.responses import Response

    from ui.api.app import Call

JSON = "application/json"
_MEMBERS = frozenset({"survivor_id", "merged_ids", "values"})


def _id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _body(call: Call) -> tuple[int, list[int], dict[str, Any]]:
    body = dict(call.body or {})
    errors = {name: f"unknown field {name!r}" for name in sorted(set(body) - _MEMBERS)}
    survivor, merged, values = body.get("survivor_id"), body.get("merged_ids"), \
        body.get("values", {})
    if not _id(survivor):
        errors["survivor_id"] = "must be a record id"
    if not isinstance(merged, list) or not merged or len(merged) > MAX_MERGED \
            or not all(_id(i) for i in merged):
        errors["merged_ids"] = f"must be a list of 1 to {MAX_MERGED} record ids"
    if not isinstance(values, dict):
        errors["values"] = "must be an object: field -> record id or {\"value\": ...}"
    if errors:
        raise Problem(422, "some fields are not valid", kind="validation", errors=errors)
    assert isinstance(survivor, int) and isinstance(merged, list) and isinstance(values, dict)
    return survivor, merged, values


def document(call: Call, result: MergeResult) -> dict[str, Any]:
    """A merge as the API shows it."""
    base = f"{call.request.scope.get('root_path', '')}/{result.entity}"
    return {"id": result.id, "entity": result.entity, "survivor_id": result.survivor_id,
            "merged_ids": list(result.merged_ids), "actor_id": result.actor_id,
            "at": result.at, "undone_at": result.undone_at, "fields": list(result.fields),
            "references": result.references, "survivor_url": f"{base}/{result.survivor_id}",
            "undo_url": f"{base}/merges/{result.id}/undo"}


def _merge_id(call: Call) -> int:
    value = call.request.path_params["merge_id"]
    if value > MAX_ID:
        raise Problem(404, f"merge {value} not found")
    return int(value)


def handlers(json_response: Callable[..., Response]) -> dict[str, Callable[[Call], Response]]:
    """The three handlers, given the app's JSON response maker."""
    def merge(call: Call) -> Response:
        survivor, merged, values = _body(call)
        result = call.runtime.records.merge(call.actor, call.entity, survivor, merged,
                                            values=values)
        record = call.runtime.records.get(call.actor, call.entity, result.survivor_id)
        doc = document(call, result)
        return json_response({**doc, "survivor": call.writer.record(record)}, status=201,
                             headers={"Location": doc["undo_url"].rsplit("/", 1)[0]})

    def show(call: Call) -> Response:
        result = get_merge(call.runtime.records, call.actor, call.entity, _merge_id(call))
        return json_response(document(call, result))

    def undo(call: Call) -> Response:
        result = call.runtime.records.undo_merge(call.actor, call.entity, _merge_id(call))
        return json_response(document(call, result))

    return {"merge": merge, "show": show, "undo": undo}


def merge_paths(entity: Entity, *, tags: list[str],
                errors: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """OpenAPI paths of merging ``entity`` (only entities with a recycle bin merge)."""
    if not entity.has(Feature.SOFT_DELETE):
        return {}
    name = entity.name
    merge_id = {"name": "merge_id", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
    ident = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    merge_doc: dict[str, Any] = {
        "type": "object", "required": ["id", "entity", "survivor_id", "merged_ids", "at"],
        "properties": {
            "id": {"type": "integer"}, "entity": {"type": "string"},
            "survivor_id": {"type": "integer"},
            "merged_ids": {"type": "array", "items": {"type": "integer"}},
            "actor_id": {"type": ["integer", "null"]},
            "at": {"type": "string", "format": "date-time"},
            "undone_at": {"type": ["string", "null"], "format": "date-time"},
            "fields": {"type": "array", "items": {"type": "string"},
                       "description": "The survivor's fields the merge changed."},
            "references": {"type": "integer",
                           "description": "Pointers moved to the survivor (child records, "
                                          "shares, feed, pool events, stage history...)."},
            "survivor_url": {"type": "string"}, "undo_url": {"type": "string"},
            "survivor": {"$ref": f"#/components/schemas/{name}"}}}

    def doc(description: str) -> dict[str, Any]:
        return {"description": description, "content": {JSON: {"schema": merge_doc}}}

    return {
        f"/{name}/merge": {"post": {
            "operationId": f"merge_{name}", "tags": tags,
            "summary": f"Merge duplicate {entity.plural_label.get('en') or name} into one",
            "description": ("Needs the merge grant, update on the survivor and delete on "
                            "each merged record. `values` maps a field to the id of the "
                            "record whose value the survivor keeps, or to "
                            "`{\"value\": ...}`; a field left out keeps the newest non-empty "
                            "value. The merged records go to the recycle bin; a GET of one "
                            "answers 308 to the survivor."),
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "type": "object", "required": ["survivor_id", "merged_ids"],
                "additionalProperties": False, "properties": {
                    "survivor_id": ident,
                    "merged_ids": {"type": "array", "items": ident, "minItems": 1,
                                   "maxItems": MAX_MERGED},
                    "values": {"type": "object", "additionalProperties": {"oneOf": [
                        ident, {"type": "object", "required": ["value"],
                                "additionalProperties": False,
                                "properties": {"value": {}}}]}}}}}}},
            "responses": {"201": doc("Merged; `survivor` is the record as stored."),
                          **errors("Forbidden", "NotFound", "Conflict", "PayloadTooLarge",
                                   "UnsupportedMediaType", "UnprocessableContent")}}},
        f"/{name}/merges/{{merge_id}}": {"parameters": [merge_id], "get": {
            "operationId": f"get_merge_{name}", "tags": tags,
            "summary": f"One merge of {name} records",
            "responses": {"200": doc("The merge."), **errors("NotFound", "Forbidden")}}},
        f"/{name}/merges/{{merge_id}}/undo": {"parameters": [merge_id], "post": {
            "operationId": f"undo_merge_{name}", "tags": tags,
            "summary": f"Undo a merge of {name} records",
            "description": ("Restores the merged records, the survivor's prior values and "
                            "every moved reference. 409 when a field the merge set was "
                            "changed since, or the merge was undone already."),
            "responses": {"200": doc("Undone."),
                          **errors("Forbidden", "NotFound", "Conflict")}}},
    }
