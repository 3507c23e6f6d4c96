"""Errors as RFC 9457 problem details: the one place engine errors become HTTP statuses.

Every error the API returns is ``application/problem+json`` with ``type``,
``title``, ``status``, ``detail`` and ``instance`` (the request path), plus
extension members where they help a client act: ``errors`` (field -> message)
on 422 and 400, ``current_version`` on a stale write, ``existing_id`` on a
duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import (
    HIDDEN_HOLDER,
    AuthenticationError,
    ConflictError,
    ConversionError,
    DuplicateError,
    ForbiddenError,
    MergeConflictError,
    MergedRecordError,
    NotFoundError,
    PoolLimitError,
    QueryError,
    StageTransitionError,
    StatementTimeoutError,
    TidepoolError,
    ValidationError,
)

PROBLEM_JSON = "application/problem+json"
#: Prefix of our problem ``type`` URIs; docs/api.md lists each one.
TYPE_BASE = "urn:tidepool:problem:"
REALM = "tidepool"


class Problem(Exception):
    """An HTTP error raised by the API layer itself (bad body, missing precondition...)."""

    def __init__(self, status: int, detail: str, *, kind: str | None = None,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.headers = dict(headers or {})
        self.extra = extra


def problem_body(status: int, detail: str, *, instance: str, kind: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    """The JSON object of one problem; ``kind`` None means ``about:blank`` (the status says it)."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + kind if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(request: Request, status: int, detail: str, *, kind: str | None = None,
                     headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    body = problem_body(status, detail, instance=request.url.path, kind=kind, **extra)
    return Response(json.dumps(body, ensure_ascii=False, default=str), status_code=status,
                    media_type=PROBLEM_JSON, headers=dict(headers or {}))


def challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 6750: no error code when no token came)."""
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += ', error_description="' + description.replace('"', "'") + '"'
    return value


def _from_engine(request: Request, exc: TidepoolError) -> Response:
    if isinstance(exc, ValidationError):
        return problem_response(request, 422, "some fields are not valid", kind="validation",
                                errors=exc.field_errors)
    if isinstance(exc, DuplicateError):
        # 409: the payload is well-formed, it collides with a record that exists.
        return problem_response(
            request, 409, str(exc), kind="duplicate", existing_id=exc.existing_id,
            key=exc.key, errors={f: f"already used by {exc.entity} {exc.existing_id}"
                                 if exc.existing_id is not None else
                                 f"already {HIDDEN_HOLDER}" for f in exc.fields})
    if isinstance(exc, ConflictError):
        if getattr(request.state, "precondition", None) == "if-match":
            return problem_response(request, 412, str(exc), kind="stale-version",
                                    current_version=exc.actual)
        return problem_response(request, 409, str(exc), kind="stale-version",
                                current_version=exc.actual)
    if isinstance(exc, ConversionError):
        # 409: the record's state (converted already, or just now) refuses it.
        return problem_response(request, 409, str(exc), kind="conversion", reason=exc.reason,
                                errors={"record": exc.message})
    if isinstance(exc, PoolLimitError):
        # 409: the request is fine; the record's state or a pool limit refuses it now.
        return problem_response(request, 409, str(exc), kind="pool-limit", limit=exc.limit,
                                errors={"record": exc.message})
    if isinstance(exc, StageTransitionError):
        # 409: the move is refused by the record's current stage, not by the payload's shape.
        return problem_response(request, 409, str(exc), kind="stage-transition",
                                from_stage=exc.from_stage, to_stage=exc.to_stage,
                                allowed=list(exc.allowed), errors={"stage": exc.message})
    if isinstance(exc, QueryError):
        return problem_response(request, 400, str(exc), kind="bad-query",
                                errors={exc.field or "query": exc.message})
    if isinstance(exc, MergedRecordError):
        # 308: the record lives on as the survivor; a client following redirects gets it.
        url = _survivor_path(request.url.path, exc)
        return problem_response(request, 308, f"{exc.entity} {exc.record_id} was merged into "
                                f"{exc.survivor_id}", kind="merged",
                                survivor_id=exc.survivor_id, survivor_url=url,
                                headers={"Location": url})
    if isinstance(exc, MergeConflictError):
        return problem_response(request, 409, str(exc), kind="merge-conflict",
                                errors={"merge": exc.message})
    if isinstance(exc, NotFoundError):
        # The same answer for "absent" and "you may not know it exists".
        return problem_response(request, 404, f"{exc.entity} {exc.record_id} not found")
    if isinstance(exc, ForbiddenError):
        return problem_response(request, 403, str(exc))
    if isinstance(exc, StatementTimeoutError):
        # 503: the request may succeed later or narrower; nothing was written.
        return problem_response(request, 503, str(exc), kind="statement-timeout")
    if isinstance(exc, AuthenticationError):
        return problem_response(request, 401, str(exc),
                                headers={"WWW-Authenticate": challenge("invalid_token", str(exc))})
    return problem_response(request, 400, str(exc))


def _survivor_path(path: str, exc: MergedRecordError) -> str:
    """The request's path with the merged id swapped for the survivor's."""
    marker = f"/{exc.entity}/{exc.record_id}"
    at = path.rfind(marker)
    if at < 0:
        return path
    return f"{path[:at]}/{exc.entity}/{exc.survivor_id}{path[at + len(marker):]}"


async def engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TidepoolError)
    return _from_engine(request, exc)


async def api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc.status, exc.detail, kind=exc.kind, headers=exc.headers,
                            **exc.extra)


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing's own errors (unknown path 404, wrong method 405) as problems too."""
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else {
        404: "no such resource", 405: f"{request.method} is not allowed here",
    }.get(exc.status_code, exc.detail)
    return problem_response(request, exc.status_code, detail, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    # Never the exception text: it may carry SQL or values.
    return problem_response(request, 500, "the server failed to handle this request")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    TidepoolError: engine_error,
    Problem: api_problem,
    HTTPException: http_error,
    500: server_error,
}
