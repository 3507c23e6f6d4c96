"""Conversions in the JSON API: GET and POST /{entity}/{id}/convert/{conversion}.

GET answers what the conversion would make (the proposal a client reviews);
POST runs it in one transaction and answers 201 with the records made, the
main one in ``Location``. A source already converted answers 409
``urn:tidepool:problem:conversion`` (``reason``: converted or changed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.metadata.conversions import conversions_of
from engine.metadata.model import Entity, Registry
from engine.records.coerce import MAX_ID
from engine.records.conversion import (
    ConversionResult,
    Converter,
    Proposal,
    TargetChoice,
)
from ui.api.problems import Problem

if TYPE_CHECKING:
    from starlette.responses import Response

    from ui.api.app import Call

JSON = "application/json"
_CHOICE_MEMBERS = frozenset({"include", "values", "attach_to"})


def _choices(body: Mapping[str, Any] | None) -> dict[str, TargetChoice]:
    """The body's per-target choices, every member checked before the engine runs."""
    body = dict(body or {})
    errors = {name: f"unknown field {name!r}" for name in sorted(set(body) - {"targets"})}
    targets = body.get("targets", {})
    if not isinstance(targets, dict):
        errors["targets"] = "must be an object of target name -> choice"
        targets = {}
    choices: dict[str, TargetChoice] = {}
    for name, choice in targets.items():
        if not isinstance(choice, dict):
            errors[f"targets.{name}"] = "must be an object"
            continue
        for member in sorted(set(choice) - _CHOICE_MEMBERS):
            errors[f"targets.{name}.{member}"] = f"unknown field {member!r}"
        include = choice.get("include", True)
        values = choice.get("values")
        attach = choice.get("attach_to")
        if not isinstance(include, bool):
            errors[f"targets.{name}.include"] = "must be true or false"
        if values is not None and not isinstance(values, dict):
            errors[f"targets.{name}.values"] = "must be an object of field values"
        if attach is not None and (not isinstance(attach, int) or isinstance(attach, bool)
                                   or not 1 <= attach <= MAX_ID):
            errors[f"targets.{name}.attach_to"] = "must be a record id"
        choices[name] = TargetChoice(include=include is not False,
                                     values=values if isinstance(values, dict) else None,
                                     attach_to=attach if isinstance(attach, int) else None)
    if errors:
        raise Problem(422, "some fields are not valid", kind="validation", errors=errors)
    return choices


def _proposal_json(proposal: Proposal, record: Callable[[Any], Any]) -> dict[str, Any]:
    return {
        "conversion": proposal.conversion.name,
        "source": record(proposal.source),
        "targets": [{"name": t.target.name, "entity": t.entity.name,
                     "optional": t.target.optional, "selected": t.target.selected,
                     "attach_existing": t.target.attach_existing,
                     "values": dict(t.values), "skipped": list(t.skipped),
                     "matches": list(t.matches), "hidden_match": t.hidden_match}
                    for t in proposal.targets]}


def _result_json(result: ConversionResult) -> dict[str, Any]:
    made = {name: {"entity": m.entity, "id": m.record_id, "attached": m.attached}
            for name, m in result.targets.items()}
    main = result.main
    return {"conversion": result.conversion,
            "source": {"entity": result.source_entity, "id": result.source_id},
            "main": {"entity": main.entity, "id": main.record_id, "attached": main.attached},
            "targets": made}


def preview(call: Call, json_response: Callable[..., Response]) -> Response:
    """GET: the proposal of the conversion for this record."""
    name = call.request.path_params["conversion"]
    proposal = Converter(call.runtime.records).preview(call.actor, name, call.record_id,
                                                       source_entity=call.entity)
    return json_response(_proposal_json(proposal, call.writer.record))


def convert(call: Call, json_response: Callable[..., Response]) -> Response:
    """POST: convert the record; 201 with what was made, the main target in Location."""
    name = call.request.path_params["conversion"]
    choices = _choices(call.body)
    result = Converter(call.runtime.records).convert(call.actor, name, call.record_id, choices,
                                                     source_entity=call.entity)
    base = call.request.url.path.split(f"/{call.entity}/", 1)[0]
    location = f"{base}/{result.main.entity}/{result.main.record_id}"
    return json_response(_result_json(result), status=201, headers={"Location": location})


def conversion_paths(registry: Registry, entity: Entity, *, tags: list[str],
                     record_id: Mapping[str, Any],
                     errors: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI paths of the conversions whose source is ``entity``."""
    paths: dict[str, Any] = {}
    choice = {"type": "object", "additionalProperties": False, "properties": {
        "include": {"type": "boolean", "description": "false leaves an optional target out; "
                                                      "true makes it."},
        "values": {"type": "object", "description": "The target's reviewed field values, "
                                                    "replacing the proposal whole."},
        "attach_to": {"type": "integer", "minimum": 1, "maximum": MAX_ID,
                      "description": "An existing record from the proposal's matches: link "
                                     "it instead of creating a twin."}}}
    body = {"type": "object", "additionalProperties": False, "properties": {
        "targets": {"type": "object", "additionalProperties": choice,
                    "description": "Per target name, what to change from the proposal."}}}
    made = {"type": "object", "required": ["entity", "id", "attached"],
            "properties": {"entity": {"type": "string"}, "id": {"type": "integer"},
                           "attached": {"type": "boolean"}}}
    result = {"type": "object", "required": ["conversion", "source", "main", "targets"],
              "properties": {"conversion": {"type": "string"},
                             "source": {"type": "object"}, "main": made,
                             "targets": {"type": "object", "additionalProperties": made}}}
    for conversion in conversions_of(registry.document).values():
        if conversion.source != entity.name:
            continue
        cname = conversion.name
        paths[f"/{entity.name}/{{record_id}}/convert/{cname}"] = {
            "parameters": [record_id],
            "get": {"operationId": f"preview_{cname}", "tags": tags,
                    "summary": f"What {conversion.label.get('en') or cname} would make "
                               f"of a {entity.name}",
                    "responses": {"200": {"description": "The proposal per target.",
                                          "content": {JSON: {"schema": {"type": "object"}}}},
                                  **errors("Forbidden", "NotFound", "Conflict")}},
            "post": {"operationId": f"convert_{cname}", "tags": tags,
                     "summary": f"{conversion.label.get('en') or cname} (one transaction)",
                     "requestBody": {"required": False,
                                     "content": {JSON: {"schema": body}}},
                     "responses": {"201": {"description": "Converted; Location is the main "
                                                          "target.",
                                           "content": {JSON: {"schema": result}}},
                                   **errors("Forbidden", "NotFound", "Conflict",
                                            "PayloadTooLarge", "UnsupportedMediaType",
                                            "UnprocessableContent")}},
        }
    return paths
