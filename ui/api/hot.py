"""The API's hot reads, a list page and a point read, dispatched without the route table.

Every request to the app passed two Starlette applications before its handler ran:
the screens' (error middleware, session, body limit, CSRF, exception middleware, a
router, the ``/api/v1`` mount) and the API's own (error and exception middleware, a
router walking up to seven routes, the endpoint wrapper). For ``GET /api/v1/{entity}``
and ``GET /api/v1/{entity}/{id}`` none of it does anything but route: the session and
CSRF checks skip the API, a GET has no body to limit, and the API's exception
handlers are plain functions. That walk cost about a tenth of a list page's CPU on
SQLite (issue 13).

``HotReads`` (consulted by ``ui/app.py``'s app, ``HotReadsApp``, before its middleware
stack; it adds the app's security headers itself, as the security-header middleware
does: its own headers first, then each security header they lack) recognises exactly
these two shapes and calls the *same* endpoint functions the API's routes call, with
the scope a mount and route would have given them (``root_path``, ``path_params``). Authentication, the entity
and id checks, the inline read and the handlers are the API's own. An exception
becomes a response through the API's own handlers (``EXCEPTION_HANDLERS``), looked
up as Starlette looks them up; one they do not handle is a 500 problem and is raised
on, as the API's error middleware does. Everything else, including a path that
routes differently (``/openapi.json``), goes to the app unchanged.

Before the stack, not inside it: Starlette's server-error middleware and the
security-header middleware each wrapped ``send`` in a closure and both messages of
every response went through both (~2 % of a list page's instructions, issue 13). The
server-error middleware does nothing for these reads: a failure is answered here as
the API's 500 problem and raised on, which that middleware, finding the response
started, only raised on too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ui.api.problems import EXCEPTION_HANDLERS
from ui.limits import IdConvertor

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]
#: Methods these endpoints answer (HEAD as GET, as Starlette's routes do).
_READS = frozenset({"GET", "HEAD"})


def route_path(scope: Scope) -> str:
    """The path below the app's ``root_path``, as Starlette's router matches it (its own
    helper is private: a Starlette upgrade must not change which paths come here)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path):] if path[len(root_path)] == "/" else path


def with_missing(headers: Sequence[tuple[bytes, bytes]],
                 defaults: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers``, then each of ``defaults`` whose name they lack: how the app's security
    headers join a response (``ui.app.SecurityHeadersMiddleware`` and the hot reads)."""
    present = {k.lower() for k, _ in headers}
    return [*headers, *(h for h in defaults if h[0] not in present)]


class HotReads:
    """The list and point-read endpoints of the API mounted at ``prefix``, found by one
    regex match; ``handles`` tells the front whether a scope is one of them."""

    def __init__(self, prefix: str, *, list_endpoint: Endpoint, get_endpoint: Endpoint,
                 handlers: Mapping[Any, Handler] = EXCEPTION_HANDLERS) -> None:
        self.prefix = prefix
        # An entity name is an identifier (the metadata schema's pattern): a segment with a
        # dot or a dash is routed as before, so "/openapi.json" never lands here.
        self._path = re.compile(re.escape(prefix) + r"/(?P<entity>[A-Za-z_][A-Za-z0-9_]*)"
                                r"(?:/(?P<record_id>" + IdConvertor.regex + r"))?")
        self._list = list_endpoint
        self._get = get_endpoint
        # As Starlette splits them: 500 and Exception are the server-error handler's, the
        # other status codes are looked up first for an HTTPException, then classes.
        self._by_status = {k: v for k, v in handlers.items()
                           if isinstance(k, int) and k != 500}
        self._by_type = {k: v for k, v in handlers.items()
                         if isinstance(k, type) and k is not Exception}
        self._server_error = handlers[500]
        #: headers every response gets unless it has its own of that name (the app's
        #: security headers, set by the app serving these reads)
        self.headers: list[tuple[bytes, bytes]] = []
        #: requests answered here (observable in tests and benchmarks)
        self.served = 0

    def match(self, scope: Scope) -> re.Match[str] | None:
        """The path's match if ``scope`` (an HTTP scope) is a list or point read of this API."""
        if scope["method"] not in _READS:
            return None
        return self._path.fullmatch(route_path(scope))

    async def serve(self, scope: Scope, receive: Receive, send: Send,
                    found: re.Match[str]) -> None:
        """Answer the read ``found`` matched, as the mounted API would."""
        self.served += 1
        record_id = found.group("record_id")
        params: dict[str, Any] = {"entity": found.group("entity")}
        if record_id is not None:
            params["record_id"] = int(record_id)
        root_path = scope.get("root_path", "")
        # What the mount and the route put in the scope (Starlette's Mount.matches).
        scope.update(path_params=params, app_root_path=scope.get("app_root_path", root_path),
                     root_path=root_path + self.prefix)
        request = Request(scope, receive, send)
        try:
            response = await (self._get if record_id is not None else self._list)(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                await self._headed(await self._server_error(request, exc))(scope, receive, send)
                raise
            response = await handler(request, exc)
        await self._headed(response)(scope, receive, send)

    def _headed(self, response: Response) -> Response:
        """``response`` with each of ``headers`` it lacks, after its own (as
        ``ui.app.SecurityHeadersMiddleware`` adds them, through the same function)."""
        if self.headers:
            response.raw_headers = with_missing(response.raw_headers, self.headers)
        return response

    def _handler(self, exc: Exception) -> Handler | None:
        """The handler Starlette's exception middleware would pick for ``exc``."""
        if isinstance(exc, HTTPException) and exc.status_code in self._by_status:
            return self._by_status[exc.status_code]
        for cls in type(exc).__mro__:
            found = self._by_type.get(cls)
            if found is not None:
                return found
        return None


class HotReadsApp(Starlette):
    """A Starlette app whose ``hot`` reads (if set) are answered before its middleware
    stack; everything else goes through the stack as in Starlette."""

    hot: HotReads | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot
        if hot is not None and scope["type"] == "http":
            found = hot.match(scope)
            if found is not None:
                scope["app"] = self  # as Starlette sets it
                await hot.serve(scope, receive, send, found)
                return
        await super().__call__(scope, receive, send)
