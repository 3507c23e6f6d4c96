""""My API tokens" on the profile: create one with a name and an expiry (the secret is
shown once, on the page that creates it), list them, revoke one.

- ``GET /profile/tokens``: the list and the create form.
- ``POST /profile/tokens``: create; answers 201 with the page showing the token once
  (never a redirect, so the secret is not in any URL or history entry).
- ``POST /profile/tokens/{id}/revoke``: revoke one of *your* tokens; anyone else's
  is 404, as if it did not exist.

The expiry is a date in the user's zone: the token works through that day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.errors import NotFoundError, ValidationError
from engine.permissions.tokens import TokenInfo, create_token, get_token, list_tokens, revoke_token
from engine.storage.database import write_transaction
from ui.context import UIContext
from ui.zones import expiry_after, format_instant, today

#: What the expiry field offers first (a token that never expires is a choice, not a default).
DEFAULT_DAYS = 90


@dataclass(frozen=True)
class TokenRow:
    id: int
    name: str
    prefix: str
    created: str
    expires: str
    last_used: str
    state: str            # active | expired | revoked (a CSS class too)
    state_label: str
    revoke_url: str


@dataclass
class TokensView:
    title: str
    rows: list[TokenRow]
    name: str = ""
    expires_on: str = ""
    min_date: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    created_token: str = ""
    created_name: str = ""


def _state(info: TokenInfo, now: dt.datetime) -> str:
    if info.revoked_at is not None:
        return "revoked"
    if info.expires_at is not None and info.expires_at <= now:
        return "expired"
    return "active"


def routes(ui: UIContext) -> list[BaseRoute]:
    def rows(request: Request, user_id: int) -> list[TokenRow]:
        locale = ui.locale(request)
        now = dt.datetime.now(dt.UTC)
        labels = {"active": ui.t(request, "active"), "expired": ui.t(request, "expired"),
                  "revoked": ui.t(request, "revoked")}
        with ui.runtime().engine.connect() as conn:
            tokens = list_tokens(conn, user_id)
        return [TokenRow(
            id=i.id, name=i.name, prefix=i.prefix, created=format_instant(i.created_at, locale),
            expires=format_instant(i.expires_at, locale) if i.expires_at
            else ui.t(request, "never"),
            last_used=format_instant(i.last_used_at, locale) if i.last_used_at else "—",
            state=_state(i, now), state_label=labels[_state(i, now)],
            revoke_url=f"/profile/tokens/{i.id}/revoke") for i in reversed(tokens)]

    def view(request: Request, user_id: int, **values: object) -> TokensView:
        first = today() + dt.timedelta(days=1)
        defaults: dict[str, object] = {
            "expires_on": (today() + dt.timedelta(days=DEFAULT_DAYS)).isoformat()}
        return TokensView(title=ui.t(request, "My API tokens"), rows=rows(request, user_id),
                          min_date=first.isoformat(), **{**defaults, **values})  # type: ignore[arg-type]

    def tokens(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        assert actor.user_id is not None
        if form is None:
            return ui.render(request, "pages/tokens.html", view(request, actor.user_id))
        name = str(form.get("name", "")).strip()
        expires_on = str(form.get("expires_on", "")).strip()
        errors: dict[str, str] = {}
        expires_at, expiry_error = expiry_after(expires_on)
        if expiry_error:
            errors["expires_on"] = ui.t(request, expiry_error)
        if not name or len(name) > 100:
            errors["name"] = ui.t(request, "Give the token a name of at most 100 characters.")
        if not errors:
            try:
                with write_transaction(ui.runtime().engine) as conn:
                    info, plaintext = create_token(conn, actor.user_id, name=name,
                                                   expires_at=expires_at)
            except ValidationError as exc:
                errors = {k: ui.t(request, v) for k, v in exc.field_errors.items()}
            else:
                return ui.render(request, "pages/tokens.html",
                                 view(request, actor.user_id, created_token=plaintext,
                                      created_name=info.name),
                                 status=201, headers={"Cache-Control": "no-store"})
        return ui.render(request, "pages/tokens.html",
                         view(request, actor.user_id, name=name, expires_on=expires_on,
                              errors=errors), status=422)

    def revoke(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        token_id = int(request.path_params["token_id"])
        with write_transaction(ui.runtime().engine) as conn:
            if get_token(conn, token_id).user_id != actor.user_id:
                raise NotFoundError("api_token", token_id)  # not yours: as if absent
            revoke_token(conn, token_id)
        return ui.redirect(request, "/profile/tokens")

    return [Route("/profile/tokens", ui.endpoint(tokens), methods=["GET", "POST"],
                  name="my_tokens"),
            Route("/profile/tokens/{token_id:int}/revoke", ui.endpoint(revoke),
                  methods=["POST"], name="revoke_my_token")]
