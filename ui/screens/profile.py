"""The signed-in user's own settings, and the company-wide settings for admins.

- ``/profile``: the user's time zone (or "the company's"), shown with the time it
  is now there, so a wrong choice is visible at once.
- ``/admin/settings``: the company's time zone, which every user without their
  own choice reads and types times in, and which "today" and "this week" follow.

Both forms apply at once and redirect back (303); an unknown zone re-renders
the form with the message (422).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.errors import ValidationError
from engine.permissions.identity import set_time_zone
from engine.reports.freshness import change_company_zone
from engine.storage.database import write_transaction
from engine.storage.settings import (
    TIME_ZONE,
    check_time_zone,
    server_time_zone,
    time_zone_names,
)
from ui.context import UIContext
from ui.screens.records.listing import Choice
from ui.zones import format_instant, viewing_in, zone_named

COMPANY = ""  # the profile form's value for "follow the company's zone"


@dataclass(frozen=True)
class ZoneForm:
    """A time zone chooser: the choices, what it is now there, and any error."""

    title: str
    action: str
    choices: list[Choice]
    now_text: str
    error: str = ""
    saved: bool = False


def zone_choices(selected: str, *, first: Choice | None = None) -> list[Choice]:
    """Every IANA zone, ``selected`` marked; ``first`` (e.g. "the company's") on top."""
    choices = [Choice(name, name, name == selected) for name in time_zone_names()]
    return [first, *choices] if first is not None else choices


def now_in(name: str, locale: str) -> str:
    """The time it is now in zone ``name``, named, in the locale's format."""
    with viewing_in(zone_named(name)):
        return format_instant(dt.datetime.now(dt.UTC), locale, with_zone=True)


def routes(ui: UIContext) -> list[BaseRoute]:
    def profile_view(request: Request, chosen: str, error: str = "") -> ZoneForm:
        company = ui.company_zone()
        first = Choice(COMPANY, ui.t(request, "The company's (%(zone)s)", zone=company),
                       chosen == COMPANY)
        return ZoneForm(title=ui.t(request, "My profile"), action="/profile",
                        choices=zone_choices(chosen, first=first),
                        now_text=now_in(chosen or company, ui.locale(request)), error=error,
                        saved=request.query_params.get("saved") == "1")

    def profile(request: Request, form: FormData | None) -> Response:
        user = ui.user(request)
        ui.actor(request)  # signed in, or off to the sign-in page
        assert user is not None
        if form is None:
            return ui.render(request, "pages/profile.html",
                             profile_view(request, user.time_zone or COMPANY))
        chosen = str(form.get(TIME_ZONE, "")).strip()
        try:
            with write_transaction(ui.runtime().engine) as conn:
                set_time_zone(conn, user.id, chosen or None)
        except ValidationError:
            view = profile_view(request, user.time_zone or COMPANY,
                                ui.t(request, "Choose a time zone from the list."))
            return ui.render(request, "pages/profile.html", view, status=422)
        return ui.redirect(request, "/profile?saved=1")

    def company_view(request: Request, chosen: str, error: str = "") -> ZoneForm:
        return ZoneForm(title=ui.t(request, "Company settings"), action="/admin/settings",
                        choices=zone_choices(chosen),
                        now_text=now_in(chosen, ui.locale(request)), error=error,
                        saved=request.query_params.get("saved") == "1")

    def company(request: Request, form: FormData | None) -> Response:
        ui.require_admin(request)
        if form is None:
            return ui.render(request, "admin/settings.html",
                             company_view(request, ui.company_zone()),
                             context={"server_zone": server_time_zone()})
        chosen = str(form.get(TIME_ZONE, "")).strip()
        try:
            check_time_zone(chosen)
            runtime = ui.runtime()
            with write_transaction(runtime.engine) as conn:
                # the zone and the day-keyed rollups change together (engine.reports.freshness)
                change_company_zone(conn, runtime.records, runtime.registry, chosen)
        except ValidationError:
            view = company_view(request, ui.company_zone(),
                                ui.t(request, "Choose a time zone from the list."))
            return ui.render(request, "admin/settings.html", view, status=422,
                             context={"server_zone": server_time_zone()})
        ui.forget_company_zone()
        return ui.redirect(request, "/admin/settings?saved=1")

    return [Route("/profile", ui.endpoint(profile), methods=["GET", "POST"], name="profile"),
            Route("/admin/settings", ui.endpoint(company), methods=["GET", "POST"],
                  name="admin_settings")]
