"""CSRF protection: every state-changing request carries the session's token.

The token is an HMAC of the session id (``ui.auth.Session.sid``) under the
secret key, so it needs no storage and changes when the session does (sign-in
issues a new session id). It travels either in the ``X-CSRF-Token`` header
(htmx sends it from ``hx-headers:inherited`` on ``<body>``) or in the
``csrf_token`` form field (plain forms, which work without JavaScript).

``CSRFMiddleware`` refuses POST/PUT/PATCH/DELETE without a valid token with 403
before any route runs, so no screen can forget the check. Paths under an
exempt prefix (the JSON API, which authenticates by bearer token and never by
cookie) are left alone.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable, Sequence

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui.limits import FORM_LIMITS

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@functools.lru_cache(maxsize=10_000)
def csrf_token(secret: bytes, sid: str) -> str:
    """The CSRF token of session ``sid`` (kept per session: every page draws it, and it
    is a pure function of the two)."""
    digest = hmac.new(secret, b"tidepool.csrf:" + sid.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_matches(secret: bytes, sid: str, candidate: str | None) -> bool:
    return bool(candidate) and hmac.compare_digest(csrf_token(secret, sid), str(candidate))


class CSRFMiddleware:
    """Refuse unsafe methods whose token is missing or wrong (403).

    Must run inside ``ui.auth.SessionMiddleware`` (it reads the session from the
    scope). A form body is read once to find the field and replayed to the app.
    """

    def __init__(self, app: ASGIApp, *, secret: bytes, max_body: int,
                 exempt_prefixes: Sequence[str] = ()) -> None:
        self.app = app
        self.secret = secret
        self.max_body = max_body
        self.exempt_prefixes = tuple(exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS \
                or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        from ui.auth import session_from_scope  # ui.auth imports this module

        sid = session_from_scope(scope).sid
        headers = Headers(scope=scope)
        if token_matches(self.secret, sid, headers.get(CSRF_HEADER)):
            await self.app(scope, receive, send)
            return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _FORM_TYPES:
            await _refuse(scope, receive, send)
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await PlainTextResponse("Request body too large", status_code=413)(
                scope, receive, send)
            return
        replay = _replayer(body, receive)
        try:
            form = await Request(scope, replay()).form(**FORM_LIMITS)
        except (HTTPException, MultiPartException) as exc:
            # No boundary, too many fields, a field too large: the client's mistake.
            detail = exc.detail if isinstance(exc, HTTPException) else exc.message
            await PlainTextResponse(f"The form could not be read: {detail}",
                                    status_code=400)(scope, receive, send)
            return
        try:
            candidate = form.get(CSRF_FIELD)
            ok = isinstance(candidate, str) and token_matches(self.secret, sid, candidate)
        finally:
            await form.close()
        if not ok:
            await _refuse(scope, receive, send)
            return
        await self.app(scope, replay(), send)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    response = PlainTextResponse(
        "Forbidden: the form's security token is missing or out of date. "
        "Reload the page and try again.", status_code=403)
    await response(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replayer(body: bytes, receive: Receive) -> Callable[[], Receive]:
    """Fresh ``receive`` callables that hand the buffered body over once each, then
    pass on to the real channel (so disconnects still reach the app)."""
    def make() -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return replay
    return make
