"""Request bodies: JSON objects only, size-capped, read before any service call.

Numbers with a fraction are read as ``Decimal`` so money and decimal fields
keep every digit the client sent (a float would turn 0.1 into 0.1000000000000000055).
Duplicate keys and NaN/Infinity are refused rather than silently resolved.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from ui.api.problems import Problem

#: Largest request body the API reads (bytes); a record payload is far smaller.
DEFAULT_MAX_BODY = 1_048_576
#: Deepest nesting of objects and arrays a body may have (a record payload is 3 deep).
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"the key {key!r} appears twice")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_shape(value: Any) -> None:
    """Refuse nesting past ``MAX_DEPTH`` and lone surrogates ("\\ud800"), which no
    database or response encoder can take; iterative, so depth costs no stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                raise Problem(400, "the body holds a lone surrogate (\\ud800-\\udfff), "
                                   "which is not a character", kind="bad-body")
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise Problem(400, f"the body nests deeper than {MAX_DEPTH} levels",
                              kind="bad-body")
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
                stack.extend((part, depth + 1) for part in item.values())
            else:
                stack.extend((part, depth + 1) for part in item)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes, or a 400 problem saying what is wrong."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=Decimal,
                           object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Problem(400, "the body is not UTF-8", kind="bad-body") from None
    except RecursionError:
        raise Problem(400, f"the body nests deeper than {MAX_DEPTH} levels",
                      kind="bad-body") from None
    except ValueError as exc:
        raise Problem(400, f"the body is not valid JSON: {str(exc)[:200]}",
                      kind="bad-body") from None
    if not isinstance(value, dict):
        raise Problem(400, "the body must be a JSON object", kind="bad-body")
    _check_shape(value)
    return value


async def read_json_object(request: Request, *, max_bytes: int = DEFAULT_MAX_BODY,
                           required: bool = True) -> dict[str, Any] | None:
    """The request's JSON object; 415 unless JSON, 413 past ``max_bytes``.

    With ``required=False`` an empty body (no Content-Type, no bytes) is None.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise Problem(413, f"the body is larger than {max_bytes} bytes")
        except ValueError:
            raise Problem(400, "Content-Length is not a number", kind="bad-body") from None
    content_type = request.headers.get("content-type")
    chunks: list[bytes] = []
    size = 0
    # Counted while streaming: a chunked body has no Content-Length to trust.
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise Problem(413, f"the body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    if not required and size == 0 and content_type is None:
        return None
    if content_type is None or not _is_json(content_type):
        raise Problem(415, "send the body as application/json",
                      headers={"Accept-Patch": "application/json"}
                      if request.method == "PATCH" else None)
    return parse_json_object(b"".join(chunks))
