"""The home page (the entities the user may work with) and the language switch."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.permissions.identity import update_profile
from engine.storage.database import write_transaction
from ui import i18n
from ui.auth import safe_next
from ui.context import NavLink, UIContext


@dataclass(frozen=True)
class HomeView:
    title: str
    links: list[NavLink]


def routes(ui: UIContext) -> list[BaseRoute]:
    def home(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        view = HomeView(title=ui.t(request, "Home"), links=ui.nav(request, actor))
        return ui.render(request, "pages/home.html", view)

    def language(request: Request, form: FormData | None) -> Response:
        """Switch language: remembered in a cookie, and on the user when signed in."""
        assert form is not None
        chosen = i18n.supported(str(form.get("lang", "")))
        response = ui.redirect(request, safe_next(str(form.get("next", "/"))))
        if chosen is None:
            return response
        ui.set_locale_cookie(request, response, chosen)
        user = ui.user(request)
        if user is not None:
            with write_transaction(ui.runtime().engine) as conn:
                update_profile(conn, user.id, locale=chosen)
        return response

    return [Route("/", ui.endpoint(home), name="home"),
            Route("/language", ui.endpoint(language), methods=["POST"], name="language")]
