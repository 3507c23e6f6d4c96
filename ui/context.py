"""What every screen area shares: the runtime, who is asking, and how pages render.

One ``UIContext`` is built by ``ui.app.create_app`` and handed to each area's
``routes(ui)``. Route handlers use it to find the signed-in actor
(``ui.actor(request)``), translate (``ui.t``), and render (``ui.render``), which
decides in one place between a full page and an htmx fragment. Areas contribute
navigation links (``add_nav``) and record action buttons (``add_detail_actions``)
without editing each other's code. See docs/ui.md, "Adding screens".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from engine.actor import Actor
from engine.errors import ForbiddenError
from engine.metadata.model import SUPPORTED_LOCALES, Entity
from engine.permissions.identity import User
from engine.permissions.versions import one_read_per_request
from engine.records.record import Record
from engine.runtime import LiveRuntime, Runtime
from engine.storage.settings import company_time_zone
from ui import i18n, partials, vocabulary, zones
from ui.auth import Session, SessionCodec, is_secure, session_of, set_session_cookie
from ui.csrf import SAFE_METHODS, csrf_token
from ui.inline import InlineReads
from ui.limits import FORM_LIMITS
from ui.threads import in_thread

HERE = Path(__file__).resolve().parent
#: The role whose holders reach the admin area (``require_admin``).
ADMIN_ROLE = "admin"
ONE_YEAR = 365 * 24 * 3600
#: Seconds the company's zone is cached between reads.
COMPANY_ZONE_TTL = 5.0


class LoginRequired(Exception):
    """Raised by ``UIContext.actor`` for an anonymous or ended session; the app
    answers with a redirect to the sign-in page."""


@dataclass(frozen=True)
class UISettings:
    """Options of one app instance (``create_app`` fills them).

    Parameters:
        secret_key: signs session cookies and derives CSRF tokens.
        upload_dir: where uploaded files are stored (None: uploads refused).
        max_upload_bytes: the largest request body a form may send.
        https: force the cookies' ``Secure`` flag on/off; None follows the request scheme.
        banner: a line shown on every page (e.g. the demo's password hint).
        map_tiles: the tile URL template of geo point map previews ("" = no map).
    """

    secret_key: bytes
    upload_dir: Path | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    https: bool | None = None
    banner: str = ""
    map_tiles: str = ""


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    active: bool = False


@dataclass(frozen=True)
class ActionButton:
    """A button on a record's detail page, contributed by any area.

    ``method`` "get" renders a link; anything else a small form posting to
    ``url`` (with the CSRF token), confirmed first when ``confirm`` is set.
    """

    label: str
    url: str
    method: str = "post"
    confirm: str | None = None
    style: str = ""  # "" | "danger" | "secondary"


#: A route handler: the request and its parsed form (None for GET), run in a worker thread.
Handler = Callable[[Request, FormData | None], Response]
#: Contributes navigation links for the signed-in actor.
NavProvider = Callable[[Request, Actor], Sequence[NavLink]]
#: Contributes action buttons to one record's detail page.
DetailActionProvider = Callable[[Request, Actor, Entity, Record], Sequence[ActionButton]]
#: Replaces the signed-in actor for a request (e.g. an admin viewing as another user).
ActorHook = Callable[[Request, Actor], Actor]


@dataclass(frozen=True)
class LanguageLink:
    """A button of the language switcher (a POST form: no URL of its own)."""

    code: str
    name: str
    current: bool


def _language_links(locale: str) -> tuple[LanguageLink, ...]:
    return tuple(LanguageLink(code, i18n.LANGUAGE_NAMES[code], code == locale)
                 for code in SUPPORTED_LOCALES)


#: The switcher's buttons for each page locale (the same on every page).
_LANGUAGES = {locale: _language_links(locale) for locale in SUPPORTED_LOCALES}


@dataclass(frozen=True)
class Chrome:
    """What ``base.html`` shows around every page."""

    locale: str
    csrf_token: str
    languages: tuple[LanguageLink, ...]
    user_name: str = ""
    nav: tuple[NavLink, ...] = ()  # a tuple: its rendering is cached per value
    banner: str = ""
    path: str = "/"
    viewing_as: str = ""  # the user an admin is viewing as (a banner with an exit)


def is_fragment_request(request: Request) -> bool:
    """An htmx request that swaps part of a page (``HX-Request-Type: partial``).

    Boosted links, history restores and ``HX-Request-Type: full`` get whole pages.
    """
    h = request.headers
    return (h.get("hx-request") == "true" and h.get("hx-request-type", "partial") != "full"
            and h.get("hx-boosted") != "true" and h.get("hx-history-restore-request") != "true")


@pass_context
def _gettext(context: Context, message: str) -> str:
    return i18n.translations(context.get("locale", "en")).gettext(message)


#: ``_('...')`` without values, by (locale, message): catalogs are read once per process
#: (``i18n.translations``), so the escaped result is the same on every page.
_PLAIN_MESSAGES: dict[tuple[str, str], Markup] = {}


@pass_context
def _gettext_alias(context: Context, message: str, **values: Any) -> Any:
    """``{{ _('...') }}``: Jinja's newstyle gettext (translation as markup, values
    escaped into it), with the value-free calls of a page looked up in a dict: a
    list page makes ~40 of them, and the extension's call chain cost ~8 % of it."""
    if values or not context.eval_ctx.autoescape:
        return context.call(context.resolve("gettext"), message, **values)
    key = (context.get("locale", "en"), message)
    found = _PLAIN_MESSAGES.get(key)
    if found is None:
        found = Markup(_gettext(context, message)) % {}
        _PLAIN_MESSAGES[key] = found
    return found


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return i18n.translations(context.get("locale", "en")).ngettext(singular, plural, n)


@pass_context
def _instant(context: Context, value: datetime | None) -> str:
    """``{{ at|instant }}``: an instant in the viewer's zone and the page's locale."""
    return "" if value is None else zones.format_instant(value, context.get("locale", "en"))


@pass_context
def _vocab(context: Context, word: object) -> str:
    return vocabulary.vocab(context.get("locale", "en"), word)


@pass_context
def _translate(context: Context, message: object) -> str:
    return i18n.translate(context.get("locale", "en"), message)


def build_templates(directory: Path = HERE / "templates") -> Environment:
    env = Environment(loader=FileSystemLoader(directory), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], auto_reload=False,
                      trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = _gettext_alias
    env.globals["zone_name"] = zones.zone_name  # the viewer's zone, named next to time inputs
    env.filters["instant"] = _instant
    env.filters["vocab"] = _vocab  # metadata words (actions, scopes, types...) as labels
    env.filters["tr"] = _translate  # engine messages (plan lines...) in the page's locale
    partials.install(env)  # {{ cached("partial.html", value) }}
    return env


@dataclass
class _PinnedCaches:
    """Answers that hold while ``registry`` and ``state`` (the policy's) are current."""

    registry: object
    state: object
    #: (user, impersonator, roles, locale) -> navigation links (label, url)
    nav: dict[tuple[object, ...], tuple[tuple[str, str], ...]] = field(default_factory=dict)


class UIContext:
    """Shared services of the UI; one per app.

    Parameters:
        live: the database's current runtime (reloads when metadata changes).
        settings: the app's options.
        templates: the Jinja environment (autoescaping, gettext installed).
    """

    def __init__(self, live: LiveRuntime, settings: UISettings, *,
                 templates: Environment | None = None) -> None:
        self.live = live
        self.settings = settings
        self.templates = templates or build_templates()
        self.templates.globals["map_tiles"] = settings.map_tiles
        #: Whole pages around their rows (``render_shell``).
        self.shells = partials.ShellCache()
        #: The cached nav links as ``NavLink``s, by (links, positions of the current ones)
        #: (``nav``).
        self._nav_links: dict[tuple[tuple[tuple[str, str], ...], tuple[int, ...]],
                              tuple[NavLink, ...]] = {}
        self.codec = SessionCodec(settings.secret_key)
        self._nav: list[tuple[NavProvider, bool]] = []  # (provider, cached)
        #: The per-user caches of one (registry, policy state): replaced whole, so an
        #: answer worked out under an older pair lands in a dict nobody reads any more.
        self._pinned_caches = _PinnedCaches(None, None)
        self._detail_actions: list[DetailActionProvider] = []
        self._company_zone: tuple[str, float] | None = None
        self._actor_hooks: list[ActorHook] = []
        #: Pages that may be served on the event loop (``endpoint(..., inline=True)``).
        self.inline = InlineReads(live.engine)

    # --- the runtime --------------------------------------------------------------------------

    def endpoint(self, handler: Handler, *,
                 inline: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """A Starlette endpoint running ``handler(request, form)`` in a worker thread.

        Database calls are blocking; running them off the event loop keeps one slow
        query from stalling every other request. The form (urlencoded or multipart)
        is read first, on the loop, and closed (temporary upload files) afterwards.

        ``inline``: a GET handler that only reads (the list page) runs on the event
        loop on SQLite, bounded as the API's reads are (``ui/inline.py``: every
        statement stopped at a short budget, no version stamp read), and again in a
        thread when the bound refuses it. The hop cost the list page more CPU than
        any single part of its work: SQLite's driver hands the GIL back and forth
        between the thread and the loop at every row it steps (issue 13).
        """
        def in_zone(request: Request, form: FormData | None) -> Response:
            # the caches' stamp checks share one statement for the whole request
            with one_read_per_request(), zones.viewing_in(self.zone(request)):
                return handler(request, form)

        async def run(request: Request) -> Response:
            form = None
            if request.method not in SAFE_METHODS:
                form = await request.form(**FORM_LIMITS)
            try:
                if inline and form is None and self.inline.enabled:
                    return await self.inline.run(in_zone, request, None)
                return await in_thread(in_zone, request, form)
            finally:
                if form is not None:
                    await form.close()

        run.__name__ = getattr(handler, "__name__", "endpoint")
        return run

    def runtime(self) -> Runtime:
        """The current runtime; call once per request and keep it for that request."""
        return self.live.current()

    # --- who is asking -------------------------------------------------------------------------

    def session(self, request: Request) -> Session:
        return session_of(request)

    def user(self, request: Request) -> User | None:
        """The signed-in user, or None (anonymous, or the session was ended)."""
        known = request.state._state  # the dict itself: ``State``'s __getattr__ is Python
        if "tp_user" in known:
            return known["tp_user"]  # type: ignore[no-any-return]
        session = self.session(request)
        user = None
        if session.user_id is not None:
            # From the process's credential cache: no database work for a session
            # checked within the last minute, unless a sign-out, password change or
            # deactivation moved the credentials stamp since.
            user = self.live.credentials.session_user(session.user_id, session.epoch)
        request.state.tp_user = user
        return user

    def actor(self, request: Request) -> Actor:
        """The signed-in user as an ``Actor`` with their roles; ``LoginRequired`` otherwise."""
        known = request.state._state  # the dict itself: ``State``'s __getattr__ is Python
        if "tp_actor" in known:
            return known["tp_actor"]  # type: ignore[no-any-return]
        user = self.user(request)
        if user is None:
            raise LoginRequired()
        policy = self.runtime().policy
        actor_for = getattr(policy, "actor_for", None)
        actor = actor_for(user.id, login=user.login, locale=self.locale(request)) \
            if actor_for is not None else Actor(user_id=user.id, login=user.login,
                                                locale=self.locale(request))
        actor = replace(actor, time_zone=zones.zone_name(self.zone(request)))
        for hook in self._actor_hooks:
            actor = hook(request, actor)
        request.state.tp_actor = actor
        return actor

    def require_admin(self, request: Request) -> Actor:
        """The actor if they hold the admin role; ``ForbiddenError`` (403) otherwise."""
        actor = self.actor(request)
        if ADMIN_ROLE not in actor.roles:
            raise ForbiddenError("admin", "configure", "only administrators may do this")
        return actor

    def may(self, actor: Actor, entity: Entity, action: str) -> bool:
        """Whether the actor holds ``action`` on the entity at all (for showing buttons).

        A list page asks a dozen times: the policy answers yes/no (``allows``),
        building no exception and message for each refusal.
        """
        return self.runtime().policy.allows(actor, entity, action)

    def _pinned(self, runtime: Runtime) -> _PinnedCaches | None:
        """The per-user caches of the current registry and policy state (new, empty ones
        when either changed); None for a policy without a state object (no caching)."""
        state = getattr(runtime.policy, "state", None)
        if state is None:
            return None
        current = state()
        caches = self._pinned_caches
        if caches.registry is not runtime.registry or caches.state is not current:
            caches = self._pinned_caches = _PinnedCaches(runtime.registry, current)
        return caches

    # --- time zone -----------------------------------------------------------------------------

    def company_zone(self) -> str:
        """The company's zone name, read at most every few seconds (it rarely changes)."""
        now = time.monotonic()
        cached = self._company_zone
        if cached is not None and now - cached[1] < COMPANY_ZONE_TTL:
            return cached[0]
        with self.runtime().engine.connect() as conn:
            name = company_time_zone(conn)
        self._company_zone = (name, now)
        return name

    def forget_company_zone(self) -> None:
        """Drop the cached company zone (after an admin changed it)."""
        self._company_zone = None

    def zone(self, request: Request) -> tzinfo:
        """The viewer's zone: their own choice, else the company's."""
        known = request.state._state  # the dict itself: ``State``'s __getattr__ is Python
        if "tp_zone" in known:
            return known["tp_zone"]  # type: ignore[no-any-return]
        user = self.user(request)
        name = user.time_zone if user is not None and user.time_zone else self.company_zone()
        zone = zones.zone_named(name)
        request.state.tp_zone = zone
        return zone

    # --- language ------------------------------------------------------------------------------

    def locale(self, request: Request) -> str:
        known = request.state._state  # the dict itself: ``State``'s __getattr__ is Python
        if "tp_locale" in known:
            return known["tp_locale"]  # type: ignore[no-any-return]
        user = self.user(request)
        locale = i18n.negotiate(param=request.query_params.get(i18n.LANG_PARAM),
                                cookie=request.cookies.get(i18n.LANG_COOKIE),
                                user_locale=user.locale if user else None,
                                accept_language=request.headers.get("accept-language", ""))
        request.state.tp_locale = locale
        return locale

    def t(self, request: Request, message: str, **values: object) -> str:
        """``message`` translated to the request's locale (``%(name)s`` filled from values)."""
        return i18n.t(self.locale(request), message, **values)

    # --- contributions from screen areas -------------------------------------------------------

    def add_nav(self, provider: NavProvider, *, cached: bool = False) -> None:
        """Add navigation links. ``cached``: the provider's links depend only on the
        actor, the locale, the registry and the policy, so they are kept per user and
        locale (``nav``), and each link is current when the path is its URL or under it."""
        self._nav.append((provider, cached))

    def add_actor_hook(self, hook: ActorHook) -> None:
        """Let an area replace the request's actor (view-as); hooks run in order, once."""
        self._actor_hooks.append(hook)

    def add_detail_actions(self, provider: DetailActionProvider) -> None:
        self._detail_actions.append(provider)

    def detail_actions(self, request: Request, actor: Actor, entity: Entity,
                       record: Record) -> list[ActionButton]:
        return [b for p in self._detail_actions for b in p(request, actor, entity, record)]

    def nav(self, request: Request, actor: Actor) -> list[NavLink]:
        """Entities the actor may read (in registry order), then contributed links."""
        path = request.url.path
        cached_links = self._cached_links(request, actor)
        # The links differ between pages only in which are current: kept by that, not by
        # the path, which gave every record's page an entry of its own.
        current = tuple(i for i, (_, url) in enumerate(cached_links)
                        if path == url or path.startswith(url + "/"))
        key = (cached_links, current)
        drawn = self._nav_links.get(key)
        if drawn is None:  # the same few (links, current) pairs on every page
            drawn = tuple(NavLink(label, url, active=i in current)
                          for i, (label, url) in enumerate(cached_links))
            if len(self._nav_links) >= 1000:
                self._nav_links.clear()
            self._nav_links[key] = drawn
        links = list(drawn)
        for provider, cached in self._nav:
            if not cached:
                links.extend(provider(request, actor))
        return links

    def _cached_links(self, request: Request, actor: Actor) -> tuple[tuple[str, str], ...]:
        """(label, url) of the entities the actor may read and of the cached providers'
        links, kept per user, locale, registry and policy state: every page showed
        them, and checking each entity and report per request cost more than drawing
        them."""
        runtime = self.runtime()
        locale = self.locale(request)
        caches = self._pinned(runtime)
        key = (actor.user_id, actor.impersonator_id, actor.roles, locale)
        found = caches.nav.get(key) if caches is not None else None
        if found is None:
            found = tuple(
                (entity.plural_label.get(locale) or entity.label.get(locale), f"/e/{entity.name}")
                for entity in runtime.registry.entities.values()
                if self.may(actor, entity, "read"))
            found += tuple((link.label, link.url) for provider, cached in self._nav if cached
                           for link in provider(request, actor))
            if caches is not None:
                if len(caches.nav) >= 1000:
                    caches.nav.clear()
                caches.nav[key] = found
        return found

    # --- rendering -----------------------------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        known = request.state._state
        if "tp_csrf" in known:  # the page and its chrome ask for it
            return known["tp_csrf"]  # type: ignore[no-any-return]
        token = request.state.tp_csrf = csrf_token(self.settings.secret_key,
                                                   self.session(request).sid)
        return token

    def chrome(self, request: Request) -> Chrome:
        locale = self.locale(request)
        user = self.user(request)
        languages = _LANGUAGES[locale]  # locale() answers only supported locales
        nav = tuple(self.nav(request, self.actor(request))) if user is not None else ()
        return Chrome(locale=locale, csrf_token=self.csrf_token(request), languages=languages,
                      user_name=user.display_name if user else "", nav=nav,
                      banner=i18n.translate(locale, self.settings.banner),
                      path=request.url.path,
                      viewing_as=str(getattr(request.state, "tp_viewing_as", "") or ""))

    def render(self, request: Request, template: str, view: Any, *, status: int = 200,
               fragment: str | None = None, headers: Mapping[str, str] | None = None,
               context: Mapping[str, Any] | None = None) -> HTMLResponse:
        """Render ``template`` as a page, or as a fragment for a partial htmx request.

        A fragment request renders ``fragment`` if given, else ``template`` without
        the page chrome (``layout`` is ``_bare.html`` instead of ``base.html``).
        Responses say ``Vary: HX-Request`` since one URL answers both ways.
        """
        name, values = self._page_values(request, template, fragment)
        html = self.templates.get_template(name).render({"view": view, **values,
                                                         **(context or {})})
        return self._page_response(request, html, status=status, headers=headers)

    def render_shell(self, request: Request, template: str, *, key: Hashable,
                     shell: Callable[[], Any], page: Callable[[], Any],
                     slots: Sequence[tuple[str, str]],
                     fragment: str | None = None) -> HTMLResponse:
        """``render`` for a page whose view is a hashable value but for a few large parts
        (``partials.ShellCache``): ``shell()`` is the view with each slot's placeholder
        where the part's markup goes, ``key`` stands for it (equal keys, equal shells),
        and ``page()`` is the view itself, drawn as ``render`` would when a placeholder
        cannot be found. Both are asked for only when drawn. The text around the slots
        is kept per template, key, page values (``_page_values``: layout, locale, CSRF
        token, chrome) and zone: all the template reads."""
        name, values = self._page_values(request, template, fragment)
        shell_key = (name, key, tuple(values.items()), zones.current_zone())

        def draw(view: Any) -> str:
            return self.templates.get_template(name).render({**values, "view": view})

        body = self.shells.render(shell_key, lambda: draw(shell()), lambda: draw(page()), slots)
        return self._page_response(request, body)

    def _page_values(self, request: Request, template: str,
                     fragment: str | None) -> tuple[str, dict[str, Any]]:
        """The template to draw and the values every page gets besides its view, for
        ``render`` and ``render_shell`` alike: one place, so a value added here
        reaches both (and ``render_shell``'s cache key, which holds all of them).
        Every value is hashable."""
        partial = is_fragment_request(request)
        name = fragment if (partial and fragment) else template
        return name, {
            "locale": self.locale(request), "csrf_token": self.csrf_token(request),
            "layout": "_bare.html" if partial else "base.html",
            "chrome": None if partial else self.chrome(request),
        }

    def _page_response(self, request: Request, html: str | bytes, *, status: int = 200,
                       headers: Mapping[str, str] | None = None) -> HTMLResponse:
        """A rendered page's response: ``Vary: HX-Request`` (one URL answers as a page
        and as a fragment) and the locale cookie when ``?lang=`` chose a new one."""
        response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
        response.headers["Vary"] = "HX-Request"
        self._remember_locale(request, response)
        return response

    def redirect(self, request: Request, url: str) -> Response:
        """See Other for a plain request; ``HX-Redirect`` for htmx (it follows the
        redirect itself otherwise and would swap the whole page into a fragment)."""
        if request.headers.get("hx-request") == "true":
            response: Response = Response(status_code=204, headers={"HX-Redirect": url})
        else:
            response = RedirectResponse(url, status_code=303)
        self._remember_locale(request, response)
        return response

    def start_session(self, request: Request, response: Response, session: Session, *,
                      locale: str | None = None) -> None:
        """Put a new session cookie on ``response`` (sign-in, sign-out)."""
        set_session_cookie(response, self.codec, session,
                           secure=is_secure(request, self.settings.https))
        if locale and i18n.supported(locale) and not request.cookies.get(i18n.LANG_COOKIE):
            self.set_locale_cookie(request, response, locale)

    def set_locale_cookie(self, request: Request, response: Response, locale: str) -> None:
        response.set_cookie(i18n.LANG_COOKIE, locale, max_age=ONE_YEAR, httponly=True,
                            samesite="lax", secure=is_secure(request, self.settings.https))

    def _remember_locale(self, request: Request, response: Response) -> None:
        chosen = i18n.supported(request.query_params.get(i18n.LANG_PARAM))
        if chosen and chosen != request.cookies.get(i18n.LANG_COOKIE):
            self.set_locale_cookie(request, response, chosen)
