"""The Starlette application: every screen area composed over one ``UIContext``.

``create_app`` builds the context (runtime, settings, templates), asks each
screen module in ``SCREEN_MODULES`` for its routes (``routes(ui) ->
list[BaseRoute]``), mounts the JSON API from ``API_MODULE`` at ``/api/v1`` and
wraps everything in the session, CSRF and security-header middleware. Engine
errors become HTTP statuses in one table (``exception_handlers``). A module in
the lists that does not exist yet is skipped, so areas can land in any order.
See docs/ui.md, "Adding screens".
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import (
    AuthenticationError,
    ConflictError,
    ConversionError,
    DuplicateError,
    ForbiddenError,
    MergeConflictError,
    MergedRecordError,
    NotFoundError,
    PoolLimitError,
    QueryError,
    StageTransitionError,
    StatementTimeoutError,
    TidepoolError,
    ValidationError,
)
from engine.messages import message_of
from engine.runtime import LiveRuntime
from engine.storage.direct import release_kept
from ui.api.body import DEFAULT_MAX_BODY
from ui.api.bulk import MAX_BULK_BODY
from ui.api.hot import HotReadsApp, with_missing
from ui.auth import Session, SessionMiddleware
from ui.context import HERE, LoginRequired, UIContext, UISettings
from ui.csrf import CSRFMiddleware
from ui.limits import FORM_OVERHEAD, BodyLimitMiddleware, default_rules
from ui.pools.texts import LIMIT_TEXT
from ui.screens.records.display import system_label

#: Screen areas, in route order. Each module defines ``routes(ui: UIContext) -> list[BaseRoute]``.
#: Add an area by appending one line; a module that does not exist (yet) is skipped.
SCREEN_MODULES: list[str] = [
    "ui.auth",
    "ui.account",
    "ui.screens.home",
    "ui.screens.imports",
    "ui.screens.records",
    "ui.kanban.routes",
    "ui.pools.routes",
    "ui.notifications.routes",
    "ui.admin.routes",
    "ui.reports.routes",
    "ui.screens.profile",
    "ui.screens.tokens",
    "ui.screens.view_as",
    "ui.screens.shares",
    "ui.screens.pickers",
    "ui.screens.conversions",
    "ui.screens.duplicates",
]
#: The JSON API: ``build_api(live: LiveRuntime) -> ASGIApp``, mounted at ``API_PREFIX``.
API_MODULE = "ui.api"
API_PREFIX = "/api/v1"

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    # Scripts only from our own static files (htmx is vendored); no inline script.
    (b"content-security-policy",
     (b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
      b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")),
]


#: Environment variable naming the map tile server (see ``create_app``'s ``map_tiles``).
MAP_TILES_ENV = "TIDEPOOL_MAP_TILES"


def map_tile_url(url: str) -> str:
    """``url`` if it is an https tile template with {z}, {x} and {y}; ``ValueError`` otherwise
    ("" stays "": no map)."""
    url = url.strip()
    if not url:
        return ""
    parsed = urlsplit(url)
    if parsed.scheme != "https" or not parsed.netloc or any(
            part not in url for part in ("{z}", "{x}", "{y}")) or any(c in url for c in "'\" \n;"):
        raise ValueError(f"{MAP_TILES_ENV} must be an https URL with {{z}}, {{x}} and {{y}}: {url!r}")
    return url


def _origin(url: str) -> str:
    if not url:
        return ""
    parsed = urlsplit(url)
    return f"{parsed.scheme}://{parsed.netloc.replace('{s}', '*')}"


def _optional_module(name: str) -> Any | None:
    """The module if it exists; errors *inside* an existing module are not hidden."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a parent package is missing
        return None
    return importlib.import_module(name) if spec is not None else None


def _screen_routes(ui: UIContext, modules: Sequence[str]) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in modules:
        module = _optional_module(name)
        if module is not None:
            routes.extend(module.routes(ui))
    return routes


def _with_image_source(headers: list[tuple[bytes, bytes]],
                       source: str) -> list[tuple[bytes, bytes]]:
    """The headers with ``source`` (an origin such as https://tile.example.org) allowed
    for images: map tiles, when a tile server is configured."""
    if not source:
        return headers
    return [(k, v.replace(b"img-src 'self' data:", b"img-src 'self' data: " + source.encode()))
            if k == b"content-security-policy" else (k, v) for k, v in headers]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, image_source: str = "") -> None:
        self.app = app
        self.headers = _with_image_source(_SECURITY_HEADERS, image_source)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_missing(message.get("headers", []), self.headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error_handlers(ui: UIContext) -> dict[Any, Callable[..., Any]]:
    def page(status: int, message: str, request: Request) -> Response:
        return ui.render(request, "pages/error.html", {"status": status, "message": message},
                         status=status)

    async def login_required(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        from urllib.parse import quote

        response = ui.redirect(request, f"/login?next={quote(target, safe='/')}")
        if ui.session(request).user_id is not None:  # an ended session: forget it
            ui.start_session(request, response, Session.anonymous())
        return response

    async def merged(request: Request, exc: Exception) -> Response:
        # A merged record lives on as its survivor: go there, saying why.
        assert isinstance(exc, MergedRecordError)
        if request.method != "GET":
            return await not_found(request, exc)
        from ui.screens.records.merge import merged_redirect

        return ui.redirect(request, merged_redirect(request.url.path, exc.entity,
                                                    exc.record_id, exc.survivor_id))

    async def merge_refused(request: Request, exc: Exception) -> Response:
        return page(409, ui.t(request, getattr(exc, "message", "") or str(exc)), request)

    async def not_found(request: Request, exc: Exception) -> Response:
        return page(404, ui.t(request, "Not found."), request)

    async def forbidden(request: Request, exc: Exception) -> Response:
        reason = getattr(exc, "reason", "") or message_of(exc)
        return page(403, ui.t(request, "You may not do this.") + f" ({ui.t(request, reason)})",
                    request)

    async def bad_query(request: Request, exc: Exception) -> Response:
        if isinstance(exc, QueryError):
            return page(400, ui.t(request, "This list cannot be shown: %(problem)s",
                                  problem=(f"{_query_field(exc, request)}: " if exc.field
                                           else "")
                                  + ui.t(request, exc.message)), request)
        return page(400, ui.t(request, message_of(exc)), request)

    def _query_field(exc: QueryError, request: Request) -> str:
        """The label of the field a list query got wrong (its name when it has none)."""
        entity = ui.runtime().registry.entities.get(exc.entity)
        if entity is not None and entity.has_field(exc.field):
            return entity.field(exc.field).label.get(ui.locale(request)) or exc.field
        return system_label(exc.field, ui.locale(request))

    async def conflict(request: Request, exc: Exception) -> Response:
        return page(409, ui.t(request, "Someone else changed this record meanwhile. "
                                       "Reload it and make your change again."), request)

    async def invalid(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ValidationError):
            return page(422, "; ".join(f"{name}: {ui.t(request, message)}"
                                       for name, message in exc.field_errors.items()), request)
        if isinstance(exc, DuplicateError):
            return page(422, ui.t(request, "A record with these values already exists (#%(id)s).",
                                  id=exc.existing_id), request)
        return page(422, ui.t(request, message_of(exc)), request)

    async def stage_refused(request: Request, exc: Exception) -> Response:
        # 409 as in the API: the record's current stage refuses the move.
        return page(409, ui.t(request, getattr(exc, "message", "") or message_of(exc)), request)

    async def pool_refused(request: Request, exc: Exception) -> Response:
        # 409 as in the API: the record's state or a pool limit refuses it now.
        limit = getattr(exc, "limit", "")
        return page(409, ui.t(request, LIMIT_TEXT.get(limit, "This pool operation was refused."))
                    + f" ({ui.t(request, getattr(exc, 'message', ''))})", request)

    async def conversion_refused(request: Request, exc: Exception) -> Response:
        # 409 as in the API: the record was converted before (or just now).
        return page(409, ui.t(request, getattr(exc, "message", str(exc))), request)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return await not_found(request, exc)
        return page(exc.status_code, str(exc.detail), request)

    async def timed_out(request: Request, exc: Exception) -> Response:
        return page(503, ui.t(request, "The database took too long and the request was "
                                       "stopped. Narrow the filter or search and try again."),
                    request)

    async def other(request: Request, exc: Exception) -> Response:
        return page(400, ui.t(request, message_of(exc)), request)

    return {
        LoginRequired: login_required, AuthenticationError: login_required,
        MergedRecordError: merged, MergeConflictError: merge_refused,
        NotFoundError: not_found, ForbiddenError: forbidden, QueryError: bad_query,
        ConflictError: conflict, ValidationError: invalid, DuplicateError: invalid,
        StageTransitionError: stage_refused, StatementTimeoutError: timed_out,
        PoolLimitError: pool_refused, ConversionError: conversion_refused,
        HTTPException: http_error, TidepoolError: other,
    }


def _lifespan(live: LiveRuntime, *,
              dispose: bool) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """What the app does when it stops: the connections the event loop's reads keep
    (``engine.storage.direct.kept_connection``, SQLite) go back to the pool, and an
    engine the app owns is disposed (its pooled connections closed)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # On the event loop's thread, after the last request: no read is in flight.
            release_kept(live.engine)
            if dispose:
                live.dispose()

    return lifespan


def create_app(live: LiveRuntime, *, secret_key: bytes, upload_dir: Path | None = None,
               max_upload_bytes: int = 10 * 1024 * 1024, https: bool | None = None,
               banner: str = "", screen_modules: Sequence[str] | None = None,
               api_module: str | None = API_MODULE, map_tiles: str | None = None,
               dispose_on_shutdown: bool = False) -> Starlette:
    """Build the web app over ``live``.

    Parameters:
        live: the database's runtime (built with ``CasbinAccessPolicy`` as policy factory).
        secret_key: signs sessions and CSRF tokens (``ui.secret.load_secret_key``).
        upload_dir: where file fields store uploads; None refuses uploads.
        max_upload_bytes: the largest form body accepted.
        https: force the cookies' Secure flag; None follows each request's scheme.
        banner: a line shown on every page (the demo's hint).
        screen_modules: override ``SCREEN_MODULES`` (tests).
        api_module: the module providing ``build_api``; None mounts no API.
        map_tiles: an https tile URL template (``https://tile.openstreetmap.org/{z}/{x}/{y}.png``)
            for the map preview of geo points; None reads ``TIDEPOOL_MAP_TILES``; "" shows
            no map (the default: everything works offline).
        dispose_on_shutdown: dispose ``live``'s engine when the app stops (for an app
            that made it, as ``ui.serve.build_app``); the kept connections are given
            back either way.
    """
    if len(secret_key) < 32:
        raise ValueError("secret_key must be at least 32 bytes")
    tiles = map_tile_url(os.environ.get(MAP_TILES_ENV, "") if map_tiles is None else map_tiles)
    settings = UISettings(secret_key=secret_key, upload_dir=upload_dir,
                          max_upload_bytes=max_upload_bytes, https=https, banner=banner,
                          map_tiles=tiles)
    ui = UIContext(live, settings)
    routes: list[BaseRoute] = []
    api = _optional_module(api_module) if api_module else None
    hot = None
    if api is not None:
        # First: an API request otherwise tried every screen route's pattern before
        # reaching the mount (about 50 regex matches, a tenth of a point read's CPU).
        api_app = api.build_api(live, upload_dir=upload_dir, max_upload_bytes=max_upload_bytes,
                                prefix=API_PREFIX)
        routes.append(Mount(API_PREFIX, app=api_app, name="api"))
        hot = getattr(api_app.state, "hot_reads", None)
    routes += _screen_routes(ui, SCREEN_MODULES if screen_modules is None else screen_modules)
    routes.append(Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"))
    app = HotReadsApp(
        routes=routes, exception_handlers=_error_handlers(ui),
        lifespan=_lifespan(live, dispose=dispose_on_shutdown),
        middleware=[
            Middleware(SecurityHeadersMiddleware, image_source=_origin(tiles)),
            Middleware(SessionMiddleware, codec=ui.codec, https=https,
                       exempt_prefixes=(API_PREFIX + "/",)),
            # Before anything reads a body: per-route size, nothing from anonymous visitors.
            Middleware(BodyLimitMiddleware, rules=default_rules(
                max_upload_bytes=max_upload_bytes, api_prefix=API_PREFIX,
                api_max_body=DEFAULT_MAX_BODY, api_bulk_body=MAX_BULK_BODY),
                open_prefixes=(API_PREFIX + "/",)),
            Middleware(CSRFMiddleware, secret=secret_key, max_body=max_upload_bytes + FORM_OVERHEAD,
                       exempt_prefixes=(API_PREFIX + "/",)),
        ])
    if hot is not None:
        # The API's list and point reads straight to their endpoints (ui/api/hot.py),
        # before the middleware: the session, body-limit and CSRF layers skip them
        # anyway, and the security headers are added there.
        hot.headers = _with_image_source(_SECURITY_HEADERS, _origin(tiles))
        app.hot = hot
    app.state.ui = ui
    return app
