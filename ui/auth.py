"""Sessions and signing in and out.

A session is a signed cookie (``tp_session``: HttpOnly, SameSite=Lax, Secure
over https) holding a random session id, and once signed in the user id and the
user's ``session_epoch`` at sign-in. Nothing is stored server-side: every
request that needs the user checks ``session_is_valid`` (``UIContext.user``), so
a password change, a deactivation or "sign out" (which bumps the epoch) ends
every session of that user at once. Cookies older than ``SESSION_MAX_AGE`` are
refused by their signature's timestamp.

Every visitor gets a session (anonymous until sign-in) so that the sign-in form
itself carries a CSRF token; signing in issues a new session id.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData, MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import AuthenticationError
from engine.permissions.identity import authenticate, end_sessions
from engine.storage.database import write_transaction
from ui.zones import format_instant

if TYPE_CHECKING:
    from ui.context import UIContext

SESSION_COOKIE = "tp_session"
SESSION_MAX_AGE = 14 * 24 * 3600  # seconds
#: Cookies whose signature was checked, kept per process (a bound, not an LRU).
MAX_VERIFIED = 10_000
_SCOPE_KEY = "tidepool.session"
_NEW_KEY = "tidepool.session_new"


@dataclass(frozen=True)
class Session:
    """What the session cookie says: a random id, and who signed in (if anyone)."""

    sid: str
    user_id: int | None = None
    epoch: int = 0

    @classmethod
    def anonymous(cls) -> Session:
        return cls(sid=secrets.token_urlsafe(24))

    @classmethod
    def signed_in(cls, user_id: int, epoch: int) -> Session:
        return cls(sid=secrets.token_urlsafe(24), user_id=user_id, epoch=epoch)


class SessionCodec:
    """Signs sessions into cookie values and back (itsdangerous, HMAC-SHA1 + timestamp).

    A browser sends the same cookie with every request: the session a cookie's
    signature was found good for is kept with the time it was signed, so the next
    request with it only checks its age (the HMAC, base64 and JSON of the check cost
    ~4 % of a list page, issue 13). Only cookies that passed the check are kept, so
    forged ones cannot fill the cache, and a kept one expires as its signature would.
    """

    def __init__(self, secret: bytes, *, max_age: int = SESSION_MAX_AGE) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="tidepool.session")
        self.max_age = max_age
        self._verified: dict[str, tuple[Session, int]] = {}  # cookie -> (session, signed at)

    def encode(self, session: Session) -> str:
        payload: dict[str, Any] = {"s": session.sid}
        if session.user_id is not None:
            payload.update(u=session.user_id, e=session.epoch)
        return str(self._serializer.dumps(payload))

    def decode(self, value: str) -> Session | None:
        known = self._verified.get(value)
        if known is not None:
            # itsdangerous's own test: whole seconds since signing, not ahead, not too old
            age = int(time.time()) - known[1]
            return known[0] if 0 <= age <= self.max_age else None
        try:
            payload, signed_at = self._serializer.loads(value, max_age=self.max_age,
                                                        return_timestamp=True)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("s"), str):
            return None
        user_id, epoch = payload.get("u"), payload.get("e", 0)
        if user_id is not None and not (isinstance(user_id, int) and isinstance(epoch, int)):
            return None
        session = Session(sid=payload["s"], user_id=user_id, epoch=epoch if user_id else 0)
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified[value] = (session, int(signed_at.timestamp()))
        return session


def session_from_scope(scope: Scope) -> Session:
    """The request's session (set by ``SessionMiddleware``)."""
    session = scope.get(_SCOPE_KEY)
    if not isinstance(session, Session):
        raise RuntimeError("SessionMiddleware is not installed")  # noqa: TRY004
    return session


def session_of(conn: HTTPConnection) -> Session:
    return session_from_scope(conn.scope)


def is_secure(conn: HTTPConnection, https: bool | None) -> bool:
    """Whether cookies get ``Secure``: configured, or else the request came over https."""
    return https if https is not None else conn.url.scheme == "https"


def set_session_cookie(response: Response, codec: SessionCodec, session: Session, *,
                       secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, codec.encode(session), max_age=codec.max_age,
                        httponly=True, samesite="lax", secure=secure, path="/")


class SessionMiddleware:
    """Read the session cookie into the scope; give a new visitor an anonymous session.

    A response that sets the cookie itself (sign-in, sign-out) keeps its own.
    Paths under ``exempt_prefixes`` (the token-authenticated API) get no session:
    the API never reads one, and signing a cookie for every API response cost CPU.
    """

    def __init__(self, app: ASGIApp, *, codec: SessionCodec, https: bool | None,
                 exempt_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.codec = codec
        self.https = https
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt_prefixes
                                       and scope["path"].startswith(self.exempt_prefixes)):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        raw = conn.cookies.get(SESSION_COOKIE)
        session = self.codec.decode(raw) if raw else None
        scope[_SCOPE_KEY] = session or Session.anonymous()
        if session is not None:
            await self.app(scope, receive, send)
            return
        secure = is_secure(conn, self.https)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not any(v.startswith(SESSION_COOKIE + "=")
                           for v in headers.getlist("set-cookie")):
                    cookie = Response()
                    set_session_cookie(cookie, self.codec, scope[_SCOPE_KEY], secure=secure)
                    headers.append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_with_cookie)


# --- the sign-in and sign-out screens --------------------------------------------------------

@dataclass(frozen=True)
class LoginView:
    login: str
    next: str
    error: str = ""


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``/x`` yes, ``//evil.example`` or ``https://...`` no."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target


def locked_message(ui: UIContext, request: Request, until: dt.datetime) -> str:
    """When a locked-out sign-in may try again, in the viewer's zone, the zone named (an
    anonymous viewer reads the company's zone; a user's own zone is not told to strangers)."""
    return ui.t(request, "Too many failed sign-ins. Try again after %(time)s.",
                time=format_instant(until, ui.locale(request), with_zone=True))


def _auth_message(ui: UIContext, request: Request, exc: AuthenticationError) -> str:
    if exc.reason == "locked" and exc.locked_until is not None:
        return locked_message(ui, request, exc.locked_until)
    if exc.reason == "inactive":
        return ui.t(request, "This account is deactivated. Ask an administrator.")
    return ui.t(request, "Wrong login or password.")


def routes(ui: UIContext) -> list[BaseRoute]:
    """``/login`` (form and sign-in) and ``/logout``."""

    def login_form(request: Request, form: FormData | None) -> Response:
        if ui.user(request) is not None:
            return ui.redirect(request, safe_next(request.query_params.get("next")))
        view = LoginView(login="", next=safe_next(request.query_params.get("next")))
        return ui.render(request, "pages/login.html", view)

    def login(request: Request, form: FormData | None) -> Response:
        assert form is not None
        login_name, password = str(form.get("login", "")), str(form.get("password", ""))
        target = safe_next(str(form.get("next", "")))
        try:
            user = authenticate(ui.runtime().engine, login_name, password,
                                client=request.client.host if request.client else None)
        except AuthenticationError as exc:
            view = LoginView(login=login_name, next=target,
                             error=_auth_message(ui, request, exc))
            status = 429 if exc.reason == "locked" else 401
            return ui.render(request, "pages/login.html", view, status=status)
        response = ui.redirect(request, target)
        ui.start_session(request, response, Session.signed_in(user.id, user.session_epoch),
                         locale=user.locale)
        return response

    def logout(request: Request, form: FormData | None) -> Response:
        user = ui.user(request)
        if user is not None:
            # Cookies are stateless: ending the epoch is what makes a copied cookie useless.
            with write_transaction(ui.runtime().engine) as conn:
                end_sessions(conn, user.id)
        response = ui.redirect(request, "/login")
        ui.start_session(request, response, Session.anonymous())
        return response

    return [
        Route("/login", ui.endpoint(login_form), methods=["GET"], name="login"),
        Route("/login", ui.endpoint(login), methods=["POST"], name="login_submit"),
        Route("/logout", ui.endpoint(logout), methods=["POST"], name="logout"),
    ]
