"""Limits on what a request may carry, checked before anything reads it.

- **Bodies**: ``BodyLimitMiddleware`` gives every route a largest body. A
  ``Content-Length`` above it is answered 413 before a byte is read, and a body
  without one (chunked) is counted while it streams and cut off at the limit, so
  no route, middleware or form parser ever buffers or spools more.
- **Anonymous visitors**: nothing is parsed for them beyond the sign-in form.
  An unsafe request from a visitor without a signed-in session, to anything but
  the few routes a visitor may post to, is sent to the sign-in page (or refused)
  before its body is read. The JSON API is left to its bearer token, which it
  checks before reading a body.
- **Forms**: ``FORM_LIMITS`` (fields, files, size of one field) go to Starlette's
  form parser wherever a form is read; a parse error (no multipart boundary, too
  many fields, a field too large) is a 400.
- **Ids in paths**: the ``id`` URL convertor matches only whole numbers a signed
  64-bit column can hold, so a longer or larger id is a 404 and never reaches SQL.

docs/security.md lists every limit, where it is checked and how to change it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.records.coerce import MAX_ID

KIB = 1024
MIB = 1024 * KIB
#: The body of a form without files (bulk actions, comments, admin pages).
DEFAULT_FORM_BODY = 1 * MIB
#: The sign-in, sign-out and language forms: a few short fields.
SMALL_FORM_BODY = 16 * KIB
#: What a record form may add to the largest upload: its other fields and the multipart framing.
FORM_OVERHEAD = 1 * MIB
#: Methods that carry no body worth reading.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Passed to ``Request.form`` wherever a form is parsed (screens and the CSRF check).
FORM_LIMITS: dict[str, Any] = {"max_files": 20, "max_fields": 1000, "max_part_size": 1 * MIB}
#: Where a visitor who has not signed in may send a body.
ANONYMOUS_PATHS = frozenset({"/login", "/language"})
#: The largest id the databases store (signed 64-bit).


def _at_most(limit: int) -> str:
    """A regex of the decimal numbers 0..limit without leading zeros (the digit-by-digit
    construction: a shorter number, or the same length and smaller at the first difference)."""
    text = str(limit)
    parts = ["0", f"[1-9][0-9]{{0,{len(text) - 2}}}"]
    for i, digit in enumerate(text):
        rest = len(text) - i - 1
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            parts.append(f"{text[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    parts.append(text)
    return "(?:" + "|".join(parts) + ")"


class IdConvertor(Convertor[int]):
    """``{name:id}``: a record id as a path segment, 0..2**63-1 (other digits do not match)."""

    regex = _at_most(MAX_ID)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 0 <= value <= MAX_ID:
            raise ValueError("an id is a whole number within signed 64-bit")
        return str(value)


register_url_convertor("id", IdConvertor())


def is_id_text(text: str) -> bool:
    """Whether ``text`` is an id as a URL or a form sends it (ASCII digits, 0..2**63-1)."""
    return re.fullmatch(IdConvertor.regex, text) is not None


def whole_number(text: str) -> int | None:
    """A form's or URL's whole number (a version, an owner id), or None when it is not one.

    ``str.isdigit`` is not enough: it accepts "²" (which ``int`` refuses) and numbers
    beyond what a column holds.
    """
    text = text.strip()
    return int(text) if is_id_text(text) else None


class BodyTooLarge(HTTPException):
    """A body past its route's limit: a 413, whoever was reading it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than this address accepts "
                              f"({limit} bytes).")
        self.limit = limit


@dataclass(frozen=True)
class BodyRule:
    """The largest body of the paths that ``pattern`` (a regex) matches from their start."""

    pattern: str
    max_bytes: int


def default_rules(*, max_upload_bytes: int, api_prefix: str, api_max_body: int,
                  api_bulk_body: int) -> tuple[BodyRule, ...]:
    """The app's limits, first match wins: record forms and API uploads may carry a file,
    API bulk creates many records, the rest of the API its own limit, the sign-in forms
    a little, everything else ``DEFAULT_FORM_BODY``."""
    api = re.escape(api_prefix)
    return (
        BodyRule(api + r"/[^/]+/files/[^/]+$", max_upload_bytes),
        BodyRule(api + r"/[^/]+/bulk$", api_bulk_body),
        BodyRule(api + "/", api_max_body),
        BodyRule(r"/(login|logout|language)$", SMALL_FORM_BODY),
        BodyRule(r"/e/[^/]+/(new|[0-9]+/edit)$", max_upload_bytes + FORM_OVERHEAD),
        BodyRule(r"/", DEFAULT_FORM_BODY),
    )


class BodyLimitMiddleware:
    """Refuse bodies past their route's limit, and bodies from visitors who have not signed in.

    Must run inside ``ui.auth.SessionMiddleware`` (it reads the session) and
    outside everything that reads a body (the CSRF check reads forms).
    """

    def __init__(self, app: ASGIApp, *, rules: Sequence[BodyRule],
                 anonymous_paths: frozenset[str] = ANONYMOUS_PATHS,
                 open_prefixes: Sequence[str] = ()) -> None:
        self.app = app
        self.rules = tuple((re.compile(rule.pattern), rule.max_bytes) for rule in rules)
        self.anonymous_paths = anonymous_paths
        self.open_prefixes = tuple(open_prefixes)

    def limit_for(self, path: str) -> int:
        """The largest body ``path`` accepts: the first rule whose pattern matches its start."""
        return next((max_bytes for pattern, max_bytes in self.rules if pattern.match(path)),
                    DEFAULT_FORM_BODY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        if not path.startswith(self.open_prefixes) and path not in self.anonymous_paths \
                and _anonymous(scope):
            await _send_to_sign_in(scope, receive, send, headers)
            return
        limit = self.limit_for(path)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isascii() or not declared.strip().isdigit() or len(declared) > 18:
                await PlainTextResponse("Content-Length is not a number.", status_code=400)(
                    scope, receive, send)
                return
            if int(declared) > limit:
                await _too_large(limit)(scope, receive, send)
                return
        started = False

        async def counted_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, _counting(receive, limit), counted_send)
        except BodyTooLarge:
            # Raised while a middleware (outside the app's error handlers) was reading.
            if not started:
                await _too_large(limit)(scope, receive, send)


def _counting(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


def _too_large(limit: int) -> Response:
    return PlainTextResponse(f"The request body is larger than this address accepts "
                             f"({limit} bytes).", status_code=413, headers={"Connection": "close"})


def _anonymous(scope: Scope) -> bool:
    from ui.auth import session_from_scope  # ui.auth's routes import ui.context, which imports us

    return session_from_scope(scope).user_id is None


async def _send_to_sign_in(scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
    """What an unsafe request without a session gets: the sign-in page, body unread.

    htmx gets ``HX-Redirect`` (it would swap a redirected page into a fragment);
    the connection is closed so the unread body is not waited for.
    """
    target = "/login?next=" + quote("/", safe="")
    response: Response
    if headers.get("hx-request") == "true":
        response = Response(status_code=204, headers={"HX-Redirect": target,
                                                      "Connection": "close"})
    else:
        response = RedirectResponse(target, status_code=303, headers={"Connection": "close"})
    await response(scope, receive, send)
