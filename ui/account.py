"""The signed-in user's own password: ``/account/password`` (form and change).

The current password is asked for even inside a valid session: a session left
open on a shared computer must not be enough to take the account over. A wrong
current password counts against the sign-in throttle like a failed sign-in.
After a change every other session of the user ends and their API tokens are
revoked (``engine.permissions.identity.change_password``); this browser gets
a new session under the new epoch so it stays signed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.errors import AuthenticationError, ValidationError
from engine.permissions.identity import change_password
from ui.auth import Session, locked_message
from ui.context import LoginRequired, UIContext

PATH = "/account/password"


@dataclass(frozen=True)
class PasswordView:
    """What the form shows: one message per field, or that the change was made."""

    errors: dict[str, str]
    error: str = ""
    changed: bool = False


def client_address(request: Request) -> str | None:
    """The address sign-in throttling counts by (the proxy's unless it forwards it)."""
    return request.client.host if request.client else None


def _errors(ui: UIContext, request: Request, exc: ValidationError) -> dict[str, str]:
    found: dict[str, str] = {}
    fields = exc.field_errors
    if "current_password" in fields:
        found["current_password"] = ui.t(request, "The current password is not right.")
    if "password" in fields:
        found["password"] = ui.t(request, "The new password must have 8 to 1024 characters, "
                                          "not only spaces, and differ from the current one.")
    return found


def routes(ui: UIContext) -> list[BaseRoute]:
    """``GET`` shows the form, ``POST`` changes the password (CSRF checked by middleware)."""

    def form(request: Request, _form: FormData | None) -> Response:
        if ui.user(request) is None:
            raise LoginRequired()
        changed = request.query_params.get("changed") == "1"
        return ui.render(request, "pages/account_password.html",
                         PasswordView(errors={}, changed=changed))

    def submit(request: Request, data: FormData | None) -> Response:
        user = ui.user(request)
        if user is None:
            raise LoginRequired()
        assert data is not None
        current = str(data.get("current_password", ""))
        new, again = str(data.get("password", "")), str(data.get("password_again", ""))
        if new != again:
            view = PasswordView(errors={"password_again": ui.t(
                request, "The two new passwords differ.")})
            return ui.render(request, "pages/account_password.html", view, status=422)
        try:
            changed = change_password(ui.runtime().engine, user.id, current=current, new=new,
                                      client=client_address(request))
        except ValidationError as exc:
            view = PasswordView(errors=_errors(ui, request, exc))
            return ui.render(request, "pages/account_password.html", view, status=422)
        except AuthenticationError as exc:
            view = PasswordView(errors={}, error=locked_message(
                ui, request, exc.locked_until or dt.datetime.now(dt.UTC)))
            return ui.render(request, "pages/account_password.html", view, status=429)
        response = ui.redirect(request, PATH + "?changed=1")
        ui.start_session(request, response, Session.signed_in(changed.id, changed.session_epoch))
        return response

    return [
        Route(PATH, ui.endpoint(form), methods=["GET"], name="account_password"),
        Route(PATH, ui.endpoint(submit), methods=["POST"], name="account_password_submit"),
    ]
