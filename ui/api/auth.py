"""Who is calling: an API token in ``Authorization: Bearer``, turned into an ``Actor``.

The API accepts no cookies: a request is authenticated by its token alone, so
a browser's session cannot be ridden by another site and no CSRF token is
needed. A missing, unknown, revoked or expired token, or one of a deactivated
user, is a 401 with a ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

from engine.actor import Actor
from engine.errors import AuthenticationError
from engine.permissions.credentials import CredentialCache
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.tokens import check_token, touch_token
from engine.runtime import Runtime
from engine.storage.database import write_transaction
from ui.api.problems import Problem, challenge


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or a 401 problem."""
    if not authorization:
        raise Problem(401, "this API needs an API token: send Authorization: Bearer <token>",
                      headers={"WWW-Authenticate": challenge()})
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "only bearer tokens are accepted (Authorization: Bearer <token>)",
                      headers={"WWW-Authenticate": challenge("invalid_request",
                                                             "expected a bearer token")})
    return token


def actor_for_token(runtime: Runtime, token: str,
                    credentials: CredentialCache | None = None) -> Actor:
    """The actor behind a token (its user's roles from the current access policy).

    With ``credentials`` (the process's cache, ``LiveRuntime.credentials``) a token
    seen before costs no database work. The token's last use is recorded at most
    once a minute, in its own write.
    """
    policy = runtime.policy
    if not isinstance(policy, CasbinAccessPolicy):
        # Without the real policy every token would read every row.
        raise TypeError("the API needs a LiveRuntime built with "
                           "policy_factory=CasbinAccessPolicy")
    try:
        if credentials is not None:
            check = credentials.token(token)
        else:
            with runtime.engine.connect() as conn:
                check = check_token(conn, token)
    except AuthenticationError as exc:
        raise Problem(401, str(exc), headers={"WWW-Authenticate": challenge(
            "invalid_token", str(exc))}) from None
    if check.needs_touch:  # at most once a minute per token: reads stay reads
        with write_transaction(runtime.engine) as conn:
            touch_token(conn, check.token_id)
    user = check.user
    return policy.actor_for(user.id, login=user.login, locale=user.locale)
