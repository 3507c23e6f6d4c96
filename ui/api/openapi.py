"""The OpenAPI 3.1 document of the API, generated from the current metadata.

Per entity: component schemas ``<entity>`` (a record as returned),
``<entity>.create`` and ``<entity>.update`` (request bodies) and
``<entity>.page`` (a list page), and the paths of every operation. Shared parts
are the bearer security scheme, the problem-details schema and responses, and
the activity feed. The document is rebuilt when the runtime is (a metadata
change), and cached in between.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.metadata.model import Entity, Feature, FieldType, Registry
from engine.records.coerce import MAX_ID
from engine.records.query import DEFAULT_LIMIT, MAX_LIMIT, Op
from engine.runtime import Runtime
from ui.api._schemas import (
    Schema,
    create_schema,
    record_schema,
    update_schema,
    warning_schema,
)
from ui.api.bulk import MAX_RECORDS
from ui.api.conversions import conversion_paths
from ui.api.merges import merge_paths
from ui.api.params import DEFAULT_ACTIVITY_LIMIT, MAX_ACTIVITY_LIMIT
from ui.api.pools import pool_paths
from ui.api.problems import PROBLEM_JSON

API_VERSION = "1"
JSON = "application/json"

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
#: Error responses: (component name, status, description).
ERRORS = {
    "BadRequest": (400, ("A malformed body, header or query (unknown field, operator, sort, "
                        "bad page token).")),
    "Unauthorized": (401, ("No API token, or one that is unknown, revoked or expired, or whose "
                          "user is deactivated.")),
    "Forbidden": (403, "Your roles do not allow this action on this entity or record."),
    "NotFound": (404, "No such record, or one you may not see."),
    "Conflict": (409, ("A stale version (``current_version`` says the record's), a "
                      "duplicate unique value (``existing_id`` names the record, left out when "
                      "you may not read it), or a stage "
                      "move the pipeline refuses (``allowed`` lists the next stages), or a pool "
                      "operation refused by the record's state or a pool limit (``limit`` "
                      "names it), or a conversion of a record converted before "
                      "(``reason``).")),
    "PreconditionFailed": (412, "The If-Match version is stale (``current_version``)."),
    "PayloadTooLarge": (413, "The body is larger than the API reads."),
    "UnsupportedMediaType": (415, "The body is not application/json."),
    "UnprocessableContent": (422, ("Field values that break their definitions; ``errors`` "
                                  "holds one message per field.")),
    "PreconditionRequired": (428, ("An update without If-Match or a ``version`` member, or an "
                                  "If-Match that names no version (``*``).")),
    "ServiceUnavailable": (503, ("A database statement ran past the statement timeout; "
                                "nothing was written. Narrow the request and try again.")),
}
#: What any request may answer, whatever the operation: no or a bad token, a malformed
#: query or header, a statement stopped by the timeout.
_ALWAYS = ("Unauthorized", "BadRequest", "ServiceUnavailable")


def _errors(*names: str) -> dict[str, Any]:
    return {str(ERRORS[n][0]): {"$ref": f"#/components/responses/{n}"}
            for n in dict.fromkeys((*_ALWAYS, *names))}


def _json(schema: Schema, description: str, headers: dict[str, Any] | None = None) -> Schema:
    out: Schema = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


_ETAG_HEADER = {"ETag": {"description": 'The record\'s version as a strong ETag, e.g. "3".',
                         "schema": {"type": "string"}}}
_LINK_HEADER = {"Link": {"description": 'rel="next": the next page, when there is one.',
                         "schema": {"type": "string"}}}


def _list_parameters(entity: Entity, sortable: frozenset[str]) -> list[Schema]:
    sorts = sorted(sortable)
    params: list[Schema] = [
        {"name": "q", "in": "query", "schema": {"type": "string"},
         "description": "Search text: a case-insensitive substring of any of "
                        + (", ".join(entity.search_fields) or "(no searchable fields)")},
        {"name": "sort", "in": "query",
         "schema": {"type": "string", "enum": [*sorts, *(f"-{s}" for s in sorts)],
                    "default": "-updated_at"},
         "description": "An indexed field; a leading - sorts descending. Ties go by id."},
        {"$ref": "#/components/parameters/limit"},
        {"$ref": "#/components/parameters/after"},
        {"$ref": "#/components/parameters/include_deleted"},
    ]
    if entity.has(Feature.SOFT_DELETE):
        params.append({"name": "only_deleted", "in": "query", "schema": {"type": "boolean"},
                       "description": "List the recycle bin."})
    filterable = [f.name for f in entity.fields]
    params.append({
        "name": "filter", "in": "query", "style": "deepObject", "explode": True,
        "description": "filter[<field>][<op>]=<value>; filter[<field>]=<value> means eq. "
                       "Operators: " + ", ".join(o.value for o in Op) + ". in takes "
                       "comma-separated values, between two, is_empty/not_empty none. "
                       "System columns (owner_id, created_at...) filter too.",
        "schema": {"type": "object", "additionalProperties": False, "properties": {
            name: {"anyOf": [{"type": "string"},
                             {"type": "object", "additionalProperties": {"type": "string"}}]}
            for name in filterable}},
    })
    return params


def _entity_paths(registry: Registry, entity: Entity, sortable: frozenset[str]) -> Schema:
    name = entity.name
    tags = [name]
    record_id = {"$ref": "#/components/parameters/record_id"}
    paths: Schema = {
        f"/{name}": {
            "get": {"operationId": f"list_{name}", "tags": tags,
                    "summary": f"List {entity.plural_label.get('en') or name}",
                    "parameters": _list_parameters(entity, sortable),
                    "responses": {"200": _json(_ref(f"{name}.page"), "One keyset page.",
                                               _LINK_HEADER),
                                  **_errors("BadRequest", "Forbidden")}},
            "post": {"operationId": f"create_{name}", "tags": tags,
                     "summary": f"Create a {name}",
                     "requestBody": {"required": True,
                                     "content": {JSON: {"schema": _ref(f"{name}.create")}}},
                     "responses": {
                         "201": _json(_ref(name), "Created.", {
                             **_ETAG_HEADER, "Location": {"schema": {"type": "string"},
                                                          "description": "The new record."}}),
                         **_errors("BadRequest", "Forbidden", "Conflict", "PayloadTooLarge",
                                   "UnsupportedMediaType", "UnprocessableContent")}},
        },
        f"/{name}/bulk": _bulk_path(entity, tags),
        f"/{name}/{{record_id}}": {
            "parameters": [record_id],
            "get": {"operationId": f"get_{name}", "tags": tags, "summary": f"Get a {name}",
                    "parameters": [{"$ref": "#/components/parameters/include_deleted"}],
                    "responses": {"200": _json(_ref(name), "The record.", _ETAG_HEADER),
                                  **_errors("BadRequest", "Forbidden", "NotFound")}},
            "patch": {"operationId": f"update_{name}", "tags": tags,
                      "summary": f"Update a {name}",
                      "parameters": [{"$ref": "#/components/parameters/if_match"}],
                      "requestBody": {"required": True,
                                      "content": {JSON: {"schema": _ref(f"{name}.update")}}},
                      "responses": {"200": _json(_ref(name), "The updated record.",
                                                 _ETAG_HEADER),
                                    **_errors("BadRequest", "Forbidden", "NotFound", "Conflict",
                                              "PreconditionFailed", "PayloadTooLarge",
                                              "UnsupportedMediaType", "UnprocessableContent",
                                              "PreconditionRequired")}},
            "delete": {"operationId": f"delete_{name}", "tags": tags,
                       "summary": f"Delete a {name}" + (" (to the recycle bin)"
                                                        if entity.has(Feature.SOFT_DELETE)
                                                        else " for good"),
                       "parameters": [{"$ref": "#/components/parameters/if_match"}],
                       "responses": {"204": {"description": "Deleted."},
                                     **_errors("BadRequest", "Forbidden", "NotFound",
                                               "Conflict", "PreconditionFailed",
                                               "PreconditionRequired")}},
        },
        f"/{name}/{{record_id}}/activity": {
            "parameters": [record_id],
            "get": {"operationId": f"activity_{name}", "tags": tags,
                    "summary": f"The activity feed of a {name}, newest first",
                    "parameters": [
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1,
                                    "maximum": MAX_ACTIVITY_LIMIT,
                                    "default": DEFAULT_ACTIVITY_LIMIT}},
                        {"name": "before", "in": "query", "schema": {"type": "integer"},
                         "description": "Entries older than this entry id."}],
                    "responses": {"200": _json(_ref("ActivityPage"), "Feed entries.",
                                               _LINK_HEADER),
                                  **_errors("BadRequest", "Forbidden", "NotFound")}},
        },
    }
    if entity.has(Feature.ACTIVITY):
        paths[f"/{name}/{{record_id}}/comments"] = {
            "parameters": [record_id],
            "post": {"operationId": f"comment_{name}", "tags": tags,
                     "summary": f"Comment on a {name} (in its activity feed)",
                     "requestBody": {"required": True, "content": {JSON: {"schema": {
                         "type": "object", "required": ["body"], "additionalProperties": False,
                         "properties": {"body": {"type": "string", "minLength": 1}}}}}},
                     "responses": {"204": {"description": "Added to the feed."},
                                   **_errors("Forbidden", "NotFound", "PayloadTooLarge",
                                             "UnsupportedMediaType", "UnprocessableContent")}},
        }
    if entity.has(Feature.OWNED):
        paths[f"/{name}/{{record_id}}/assign"] = {
            "parameters": [record_id],
            "post": {"operationId": f"assign_{name}", "tags": tags,
                     "summary": f"Give a {name} to another owner",
                     "parameters": [{"$ref": "#/components/parameters/if_match"}],
                     "requestBody": {"required": True, "content": {JSON: {"schema": {
                         "type": "object", "required": ["owner_id"],
                         "additionalProperties": False, "properties": {
                             "owner_id": {"type": ["integer", "null"], "minimum": 1},
                             "version": {"type": "integer", "minimum": 1}}}}}},
                     "responses": {"200": _json(_ref(name), "The record with its new owner.",
                                                _ETAG_HEADER),
                                   **_errors("Forbidden", "NotFound", "Conflict",
                                             "PreconditionFailed", "PayloadTooLarge",
                                             "UnsupportedMediaType", "UnprocessableContent",
                                             "PreconditionRequired")}},
        }
    for field in entity.fields:
        if field.type is FieldType.FILE:
            paths.update(_file_paths(name, field.name, tags, record_id))
    paths.update(pool_paths(entity, tags=tags, record_id=record_id, errors=_errors,
                            record_response=lambda: _json(_ref(name), "The record as stored.",
                                                          _ETAG_HEADER)))
    paths.update(conversion_paths(registry, entity, tags=tags, record_id=record_id,
                                  errors=_errors))
    if entity.has(Feature.SOFT_DELETE):
        paths[f"/{name}/{{record_id}}/restore"] = {
            "parameters": [record_id],
            "post": {"operationId": f"restore_{name}", "tags": tags,
                     "summary": f"Bring a {name} back from the recycle bin",
                     "responses": {"200": _json(_ref(name), "The restored record.",
                                                _ETAG_HEADER),
                                   **_errors("Forbidden", "NotFound")}},
        }
    paths.update(merge_paths(entity, tags=tags, errors=_errors))
    return paths


def _file_paths(name: str, field: str, tags: list[str], record_id: Schema) -> Schema:
    """Upload (an opaque ``upload_id`` for a create or update) and download through the record."""
    upload: Schema = {
        "type": "object", "required": ["upload_id", "name", "size", "content_type"],
        "additionalProperties": False, "properties": {
            "upload_id": {"type": "string",
                          "description": f"Set {field} to {{\"upload_id\": ...}} in a create "
                                         "or update; good once, for this field, for you."},
            "name": {"type": "string"}, "size": {"type": "integer", "minimum": 0},
            "content_type": {"type": "string"}}}
    return {
        f"/{name}/files/{field}": {"post": {
            "operationId": f"upload_{name}_{field}", "tags": tags,
            "summary": f"Upload a file for {name}.{field}",
            "parameters": [{"name": "name", "in": "query", "schema": {"type": "string"},
                            "description": "The file's name."}],
            "requestBody": {"required": True, "content": {"*/*": {"schema": {
                "type": "string", "format": "binary"}}}},
            "responses": {"201": _json(upload, "Stored: write the upload_id to the field."),
                          **_errors("Forbidden", "NotFound", "PayloadTooLarge",
                                    "UnprocessableContent")}}},
        f"/{name}/{{record_id}}/files/{field}": {"parameters": [record_id], "get": {
            "operationId": f"download_{name}_{field}", "tags": tags,
            "summary": f"Download {name}.{field} (needs read access to the record)",
            "responses": {"200": {"description": "The file, as an attachment.",
                                  "content": {"application/octet-stream": {"schema": {
                                      "type": "string", "format": "binary"}}}},
                          **_errors("NotFound")}}},
    }


def _bulk_path(entity: Entity, tags: list[str]) -> Schema:
    """``POST /{entity}/bulk`` (ui/api/bulk.py)."""
    name = entity.name
    result: Schema = {"type": "object", "required": ["index"], "properties": {
        "index": {"type": "integer", "minimum": 0},
        "id": {"type": "integer", "description": "The new record (created rows)."},
        "errors": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Why the row was refused, per field."}}}
    return {"post": {
        "operationId": f"bulk_create_{name}", "tags": tags,
        "summary": f"Create up to {MAX_RECORDS} {entity.plural_label.get('en') or name} at once",
        "description": ("`atomic` true (default): all or nothing, a refusal is one 422 whose "
                        "`errors` are keyed `<row>.<field>`. false: the valid rows are "
                        "created and every row gets a result."),
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["records"], "additionalProperties": False,
            "properties": {
                "records": {"type": "array", "minItems": 1, "maxItems": MAX_RECORDS,
                            "items": _ref(f"{name}.create")},
                "atomic": {"type": "boolean", "default": True}}}}}},
        "responses": {
            "201": _json({"type": "object", "required": ["created", "ids"], "properties": {
                "created": {"type": "integer"},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "warnings": _WARNINGS}},
                "All created (atomic), ids in the order sent."),
            "200": _json({"type": "object", "required": ["created", "failed", "results"],
                          "properties": {"created": {"type": "integer"},
                                         "failed": {"type": "integer"},
                                         "results": {"type": "array", "items": result},
                                         "warnings": _WARNINGS}},
                         "One result per row (atomic false)."),
            **_errors("BadRequest", "Forbidden", "PayloadTooLarge", "UnsupportedMediaType",
                      "UnprocessableContent")}}}


#: Possible duplicates of a bulk create (present only when a fuzzy dedup rule matched).
_WARNINGS: Schema = {"type": "array", "items": warning_schema(),
                     "description": "Possible duplicates of created rows (fuzzy dedup rules; "
                                    "`index` is the row). Present only when one matched."}


def _page_schema(name: str) -> Schema:
    return {"type": "object", "required": ["items", "next", "next_token"],
            "additionalProperties": False, "properties": {
                "items": {"type": "array", "items": _ref(name)},
                "next": {"type": ["string", "null"], "format": "uri",
                         "description": "The next page's URL (this query, after=next_token)."},
                "next_token": {"type": ["string", "null"]}}}


def _shared_components() -> Schema:
    problem: Schema = {
        "type": "object", "required": ["type", "title", "status", "detail", "instance"],
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "instance": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "One message per field (422, 400, 409 duplicates)."},
            "current_version": {"type": ["integer", "null"]},
            "existing_id": {"type": "integer",
                            "description": "The record holding a duplicate key; left out "
                                           "when you may not read it."},
            "key": {"type": "string"},
            "from_stage": {"type": ["string", "null"]}, "to_stage": {"type": "string"},
            "allowed": {"type": "array", "items": {"type": "string"}},
            "limit": {"type": "string", "description": "The pool limit that refused: "
                      "taken, not_held, max_held, daily_claims, reclaim_cooldown_days, "
                      "new_record_hours, max_locked, locked, not_locked, not_in_pool."},
            "reason": {"type": "string", "description": "Why a conversion was refused: "
                       "converted (it was before) or changed (someone got there first)."}}}
    entry: Schema = {
        "type": "object", "required": ["id", "kind", "actor_id", "at", "changes"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "examples": ["create", "update", "delete", "restore"]},
            "actor_id": {"type": ["integer", "null"]},
            "at": {"type": "string", "format": "date-time"},
            "changes": {"type": "array", "items": {
                "type": "object", "required": ["field", "old", "new"],
                "additionalProperties": False,
                "properties": {"field": {"type": "string"}, "old": {}, "new": {}}}},
            "body": {"type": ["string", "null"]},
            "via": {"type": ["string", "null"],
                    "description": "The rule or job behind a system write, e.g. "
                                   "rule:customer_pool.no_follow_up_7d."}}}
    return {
        "schemas": {
            "Problem": problem,
            "ActivityEntry": entry,
            "ActivityPage": {"type": "object", "required": ["items", "next"],
                             "additionalProperties": False, "properties": {
                                 "items": {"type": "array", "items": _ref("ActivityEntry")},
                                 "next": {"type": ["string", "null"], "format": "uri"}}},
        },
        "responses": {name: {"description": text, "content": {PROBLEM_JSON: {"schema": _PROBLEM}}}
                      for name, (_, text) in ERRORS.items()},
        "parameters": {
            "record_id": {"name": "record_id", "in": "path", "required": True,
                          "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
            "limit": {"name": "limit", "in": "query",
                      "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                 "default": DEFAULT_LIMIT}},
            "after": {"name": "after", "in": "query", "schema": {"type": "string"},
                      "description": "The next_token of the previous page."},
            "include_deleted": {"name": "include_deleted", "in": "query",
                                "schema": {"type": "boolean", "default": False},
                                "description": "Include records in the recycle bin."},
            "if_match": {"name": "If-Match", "in": "header", "schema": {"type": "string"},
                         "description": 'The ETag of the version you are changing, e.g. "3".'},
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "An API token (tpk_...)."}},
    }


def build_document(runtime: Runtime) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for the runtime's registry."""
    registry = runtime.registry
    components = _shared_components()
    paths: Schema = {"/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document",
        "responses": {"200": {"description": "The OpenAPI 3.1 document.",
                              "content": {JSON: {"schema": {"type": "object"}}}},
                      **_errors()}}}}
    tags = []
    for name in sorted(registry.entities):
        entity = registry.entity(name)
        components["schemas"][name] = record_schema(registry, entity)
        components["schemas"][f"{name}.create"] = create_schema(registry, entity)
        components["schemas"][f"{name}.update"] = update_schema(registry, entity)
        components["schemas"][f"{name}.page"] = _page_schema(name)
        paths.update(_entity_paths(registry, entity, runtime.records.plan(name).sortable))
        tags.append({"name": name, "description": entity.plural_label.get("en") or name})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tidepool API", "version": API_VERSION,
                 "description": "Records of every entity, generated from the metadata "
                                "(version " + str(runtime.version) + ")."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "tags": tags,
        "paths": paths,
        "components": components,
    }


class OpenApiCache:
    """The document of the last runtime asked for; a new runtime (new metadata) rebuilds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runtime: Runtime | None = None
        self._document: dict[str, Any] = {}

    def get(self, runtime: Runtime) -> dict[str, Any]:
        with self._lock:
            if self._runtime is not runtime:
                self._document = build_document(runtime)
                self._runtime = runtime
            return self._document
