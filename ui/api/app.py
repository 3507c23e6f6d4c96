"""The JSON API under /api/v1: a Starlette sub-application over the records service.

``build_api(live)`` returns the app that ``ui/app.py`` mounts at ``/api/v1``.
Each request reads ``live.current()``, so entities and fields an admin adds
show up at once, here and in ``/openapi.json``. Handlers are small and
synchronous (run in the thread pool, as the database calls block): parse the
request, make one records-service call, serialise. Authentication, the entity
check and the body are handled once, in ``_endpoint``, before a handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.actor import Actor
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.versions import one_read_per_request
from engine.records.coerce import MAX_ID
from engine.records.dedup import DedupWarning, checked_fields
from engine.runtime import LiveRuntime, Runtime
from ui.api import conversions, files, merges, pools
from ui.api._schemas import WARNINGS
from ui.api.auth import actor_for_token, bearer_token
from ui.api.body import DEFAULT_MAX_BODY, read_json_object
from ui.api.bulk import MAX_BULK_BODY, bulk_create
from ui.api.hot import HotReads
from ui.api.links import ListRequests
from ui.api.openapi import OpenApiCache
from ui.api.params import (
    activity_query,
    etag,
    precondition,
    record_query,
)
from ui.api.problems import EXCEPTION_HANDLERS, Problem
from ui.api.serialise import RecordWriter, activity_entry
from ui.inline import InlineReads
from ui.threads import in_thread

#: Ids beyond a signed 64-bit integer cannot exist; refusing them early keeps them out of SQL.

#: List queries and next-link parts kept per query string (pure functions of the request).
_LIST_REQUESTS = ListRequests()


@dataclass(frozen=True)
class Call:
    """One authenticated API request, ready for a handler."""

    request: Request
    runtime: Runtime
    actor: Actor
    entity: str
    record_id: int
    body: dict[str, Any] | None

    @property
    def writer(self) -> RecordWriter:
        return RecordWriter.of(self.runtime.registry.entity(self.entity))


Handler = Callable[[Call], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_response(data: Any, *, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    # orjson: a 50-record page serialised about 7x faster than with json.dumps, and it
    # writes datetimes itself (ISO 8601, the offset kept: +00:00 as isoformat does).
    try:
        body = orjson.dumps(data, default=_default)
    except orjson.JSONEncodeError:
        # A dict with a key that is not a string. Tried second: orjson's option for
        # such keys takes its slower path for every dict (a third of a list page's
        # encoding, issue 13), and API bodies almost never need it.
        body = orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json",
                    headers=dict(headers or {}))


def with_query_param(request: Request, name: str, value: str) -> str:
    """The request's URL with ``name`` set to ``value`` (moved last, as Starlette's
    ``include_query_params`` does), built from the URL's text: the query is everything
    after the first "?" (one in the path is escaped). Half the CPU of building a second
    ``URL`` through ``urlsplit``, on every page with a next link (issue 13)."""
    base = str(request.url).partition("?")[0]
    # The query as parsed for the handler (``parse_qsl``, blanks kept), not parsed again.
    items = [(k, v) for k, v in request.query_params.multi_items() if k != name]
    items.append((name, value))
    return f"{base}?{urlencode(items)}"


def _record_response(call: Call, record: Any, *, status: int = 200,
                     headers: Mapping[str, str] | None = None,
                     warnings: Sequence[DedupWarning] = ()) -> Response:
    """The record as the caller may see it, its ETag, and possible duplicates (fuzzy
    dedup rules) in ``_warnings`` when there are any."""
    body = call.writer.record(record)
    if warnings:
        body[WARNINGS] = [w.as_json() for w in warnings]
    return json_response(body, status=status,
                         headers={"ETag": etag(record.version), **(headers or {})})


# --- handlers: parse, one service call, serialise ---------------------------------------------

def list_records(call: Call) -> Response:
    # Parsed once per query string (ui/api/links.py): the same as list_query and
    # with_query_param(request, "after", token) on every request.
    query, link_query = _LIST_REQUESTS.query(call.entity, call.request)
    page = call.runtime.records.list_json(call.actor, call.entity, query)
    next_url = _LIST_REQUESTS.next_url(call.request, link_query, page.next_token) \
        if page.next_token else None
    return json_response(
        {"items": call.writer.values_page(page.rows), "next": next_url,
         "next_token": page.next_token},
        headers={"Link": f'<{next_url}>; rel="next"'} if next_url else None)


def create_record(call: Call) -> Response:
    """201 with the record; possible duplicates (fuzzy dedup rules) ride along in
    ``_warnings`` - the record is created either way, as before the rules existed."""
    assert call.body is not None
    records = call.runtime.records
    warnings = records.dedup_warnings(call.actor, call.entity, [call.body])
    record = records.create(call.actor, call.entity, call.body)
    location = f"{call.request.url.path.rstrip('/')}/{record.id}"
    return _record_response(call, record, status=201, headers={"Location": location},
                            warnings=warnings)


def get_record(call: Call) -> Response:
    include_deleted = record_query(call.entity, call.request.query_params)
    record = call.runtime.records.get(call.actor, call.entity, call.record_id,
                                      include_deleted=include_deleted)
    return _record_response(call, record)


def update_record(call: Call) -> Response:
    assert call.body is not None
    values = dict(call.body)
    version = precondition(call.request.headers.get("if-match"), values.pop("version", None),
                           required=True)
    assert version is not None
    if version.from_header:
        call.request.state.precondition = "if-match"  # a stale version is then a 412
    records = call.runtime.records
    checked = checked_fields(call.runtime.registry.entity(call.entity))
    # As a create does: a value that a fuzzy dedup rule reads may now look like another
    # record. Only values the update changed are checked (as the forms do): a client
    # resending an unchanged name is not warned again, nor pays the lookup.
    before = (records.get(call.actor, call.entity, call.record_id)
              if checked.intersection(values) else None)
    record = records.update(call.actor, call.entity, call.record_id, values,
                            version=version.version)
    changed = {name: values[name] for name in checked.intersection(values)
               if before is not None and before.get(name) != record.get(name)}
    warnings = records.dedup_warnings(call.actor, call.entity, [changed],
                                      exclude_id=record.id) if changed else []
    return _record_response(call, record, warnings=warnings)


def delete_record(call: Call) -> Response:
    version = precondition(call.request.headers.get("if-match"), None, required=False)
    if version is not None:
        call.request.state.precondition = "if-match"
    call.runtime.records.delete(call.actor, call.entity, call.record_id,
                                version=version.version if version else None)
    return Response(status_code=204)


def restore_record(call: Call) -> Response:
    record = call.runtime.records.restore(call.actor, call.entity, call.record_id)
    return _record_response(call, record)


def comment_record(call: Call) -> Response:
    assert call.body is not None
    unknown = sorted(set(call.body) - {"body"})
    if unknown:
        raise Problem(422, "some fields are not valid", kind="validation",
                      errors={name: f"unknown field {name!r}" for name in unknown})
    call.runtime.records.comment(call.actor, call.entity, call.record_id,
                                 call.body.get("body"))  # type: ignore[arg-type]
    return Response(status_code=204)


def assign_record(call: Call) -> Response:
    assert call.body is not None
    values = dict(call.body)
    version = precondition(call.request.headers.get("if-match"), values.pop("version", None),
                           required=False)
    if version is not None and version.from_header:
        call.request.state.precondition = "if-match"
    errors = {name: f"unknown field {name!r}" for name in sorted(set(values) - {"owner_id"})}
    owner = values.get("owner_id")
    if "owner_id" not in values:
        errors["owner_id"] = "is required (null gives the record to no one)"
    elif owner is not None and (not isinstance(owner, int) or isinstance(owner, bool)
                                or not 1 <= owner <= MAX_ID):
        errors["owner_id"] = "must be a user id or null"
    if errors:
        raise Problem(422, "some fields are not valid", kind="validation", errors=errors)
    record = call.runtime.records.assign(call.actor, call.entity, call.record_id, owner,
                                         version=version.version if version else None)
    return _record_response(call, record)


def record_activity(call: Call) -> Response:
    query = activity_query(call.entity, call.request.query_params)
    # One entry more than asked tells whether an older page exists.
    entries = call.runtime.records.activity(call.actor, call.entity, call.record_id,
                                            limit=query.limit + 1, before_id=query.before)
    shown = entries[:query.limit]
    next_url = with_query_param(call.request, "before", str(shown[-1].id)) \
        if len(entries) > query.limit else None
    return json_response({"items": [activity_entry(e, files=call.writer.files) for e in shown],
                          "next": next_url},
                         headers={"Link": f'<{next_url}>; rel="next"'} if next_url else None)


# --- plumbing -----------------------------------------------------------------------------------

def _authenticate(live: LiveRuntime, token: str) -> tuple[Runtime, Actor]:
    runtime = live.current()
    return runtime, actor_for_token(runtime, token, live.credentials)


#: Reads that may run on the event loop (``ui/inline.py``): one bounded statement each.
_INLINE_HANDLERS = frozenset({list_records, get_record})


def _endpoint(live: LiveRuntime, handlers: Mapping[str, tuple[Handler, bool | None]], *,
              max_body: int, inline: InlineReads) -> Endpoint:
    """One route's endpoint: authenticate, check entity and id, read the body, dispatch.

    ``handlers`` maps a method to its handler and whether it takes a JSON body
    (None: an optional one, e.g. a claim with or without a reason).
    The body (bounded by ``max_body``) is read on the event loop; then one trip to
    the thread pool authenticates (from the process's credential cache, usually
    without touching the database) and runs the handler: each thread hand-off cost
    about as much CPU as a point read's SQL (issue 13). A list page or point read on
    SQLite with a token known here runs on the event loop instead, bounded, through
    ``inline`` (``ui/inline.py``).
    """
    def run(request: Request, token: str, body: dict[str, Any] | None) -> Response:
        with one_read_per_request():
            return dispatch(request, token, body)

    def dispatch(request: Request, token: str, body: dict[str, Any] | None) -> Response:
        runtime, actor = _authenticate(live, token)
        entity = request.path_params["entity"]
        if entity not in runtime.registry.entities:
            raise Problem(404, f"there is no entity {entity!r}")
        record_id = request.path_params.get("record_id", 0)
        if record_id > MAX_ID:
            raise Problem(404, f"{entity} {record_id} not found")
        handler, _ = handlers["GET" if request.method == "HEAD" else request.method]
        return handler(Call(request=request, runtime=runtime, actor=actor, entity=entity,
                            record_id=record_id, body=body))

    async def endpoint(request: Request) -> Response:
        token = bearer_token(request.headers.get("authorization"))
        handler, takes_body = handlers["GET" if request.method == "HEAD" else request.method]
        if handler in _INLINE_HANDLERS and inline.enabled \
                and live.credentials.answers_from_memory(token):
            return await inline.run(run, request, token, None)
        if takes_body is not False and not live.credentials.knows(token):
            # A token not yet found good here is checked before a byte of the body is read
            # (docs/security.md); a known one keeps the single trip to the thread pool.
            await in_thread(_authenticate, live, token)
        body = await read_json_object(request, max_bytes=max_body,
                                      required=takes_body is True) \
            if takes_body is not False else None
        return await in_thread(run, request, token, body)

    return endpoint


def build_api(live: LiveRuntime, *, max_body: int = DEFAULT_MAX_BODY,
              upload_dir: Path | None = None,
              max_upload_bytes: int = 10 * 1024 * 1024, prefix: str = "/api/v1") -> Starlette:
    """The /api/v1 application over ``live`` (built with ``policy_factory=CasbinAccessPolicy``).

    ``upload_dir``: where file fields keep their bytes (None refuses uploads);
    ``max_upload_bytes``: the largest file an upload takes; ``prefix``: where the app
    mounts it (``state.hot_reads`` serves its list and point reads from there).
    """
    if not isinstance(live.current().policy, CasbinAccessPolicy):
        # Refused up front: without the real policy every token would read every row.
        raise TypeError("the API needs a LiveRuntime built with "
                        "policy_factory=CasbinAccessPolicy")
    documents = OpenApiCache()
    inline = InlineReads(live.engine)

    async def openapi(request: Request) -> Response:
        token = bearer_token(request.headers.get("authorization"))
        runtime, _ = await in_thread(_authenticate, live, token)
        return json_response(documents.get(runtime))

    def route(path: str, handlers: Mapping[str, tuple[Handler, bool | None]], *,
              body_limit: int | None = None) -> Route:
        return Route(path, _endpoint(live, handlers, max_body=body_limit or max_body,
                                     inline=inline), methods=list(handlers))

    async def upload(request: Request) -> Response:
        token = bearer_token(request.headers.get("authorization"))
        runtime, actor = await in_thread(_authenticate, live, token)
        entity = request.path_params["entity"]
        if entity not in runtime.registry.entities:
            raise Problem(404, f"there is no entity {entity!r}")
        body = await files.receive_upload(request, runtime, actor, entity,
                                          upload_dir=upload_dir, max_bytes=max_upload_bytes)
        return json_response(body, status=201)

    def download(call: Call) -> Response:
        return files.download(call.runtime, call.actor, call.entity, call.record_id,
                              call.request.path_params["field"], upload_dir=upload_dir)

    merging = merges.handlers(json_response)
    records = route("/{entity}", {"GET": (list_records, False), "POST": (create_record, True)})
    record = route("/{entity}/{record_id:id}", {"GET": (get_record, False),
                                                "PATCH": (update_record, True),
                                                "DELETE": (delete_record, False)})
    routes = [
        Route("/openapi.json", openapi, methods=["GET"]),
        route("/{entity}/merge", {"POST": (merging["merge"], True)}),
        route("/{entity}/merges/{merge_id:id}", {"GET": (merging["show"], False)}),
        route("/{entity}/merges/{merge_id:id}/undo", {"POST": (merging["undo"], False)}),
        records,
        route("/{entity}/bulk", {"POST": (bulk_create, True)},
              body_limit=max(max_body, MAX_BULK_BODY)),
        record,
        route("/{entity}/{record_id:id}/restore", {"POST": (restore_record, False)}),
        route("/{entity}/{record_id:id}/activity", {"GET": (record_activity, False)}),
        route("/{entity}/{record_id:id}/comments", {"POST": (comment_record, True)}),
        route("/{entity}/{record_id:id}/assign", {"POST": (assign_record, True)}),
        Route("/{entity}/files/{field}", upload, methods=["POST"]),
        route("/{entity}/{record_id:id}/convert/{conversion}",
              {"GET": (lambda call: conversions.preview(call, json_response), False),
               "POST": (lambda call: conversions.convert(call, json_response), None)}),
        route("/{entity}/{record_id:id}/files/{field}", {"GET": (download, False)}),
        *(route(f"/{{entity}}/{{record_id:id}}/{operation}",
                {"POST": (pools.handler(operation, _record_response), None)})
          for operation in pools.OPERATIONS),
    ]
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    app.state.inline = inline  # its counters, for tests and benchmarks
    # The same two endpoints, for the app to reach without the route table (ui/api/hot.py).
    app.state.hot_reads = HotReads(prefix, list_endpoint=records.endpoint,
                                   get_endpoint=record.endpoint)
    return app
