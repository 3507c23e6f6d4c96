"""Pool operations in the JSON API: POST /{entity}/{id}/claim|return|recycle|move|lock|unlock,
and their OpenAPI paths (pooled entities only). Assigning (分配) is the generic
POST /{entity}/{id}/assign: it takes a pool record out of its pool and is held to
the pool's capacity by the workflow layer's write hook.

Each handler checks the body's members, makes one ``PoolService`` call and
returns the record as stored; a limit that refuses answers 409 with
``type: urn:tidepool:problem:pool-limit`` and ``limit`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.metadata.model import Entity, Feature
from engine.records.record import Record
from engine.workflow.pools import PoolService
from ui.api.problems import Problem

if TYPE_CHECKING:
    from starlette.responses import Response

    from ui.api.app import Call

JSON = "application/json"

#: operation -> (members it takes, members it requires, summary)
OPERATIONS: dict[str, tuple[frozenset[str], frozenset[str], str]] = {
    "claim": (frozenset({"reason"}), frozenset(), "Claim a {name} from its pool (领取)"),
    "return": (frozenset({"reason", "pool"}), frozenset({"reason"}),
               "Return a {name} you hold to a pool, with a reason (退回)"),
    "recycle": (frozenset({"reason", "pool"}), frozenset({"reason"}),
                "Take a {name} back from its holder into a pool (回收, leaders)"),
    "move": (frozenset({"to_pool", "reason"}), frozenset({"to_pool"}),
             "Move a {name} in a pool to another pool (移动)"),
    "lock": (frozenset({"reason"}), frozenset(), "Lock a held {name}: it never drops (锁定)"),
    "unlock": (frozenset({"reason"}), frozenset(), "Unlock a held {name}"),
}

_STRING = {"type": "string", "minLength": 1, "maxLength": 500}
_MEMBERS: dict[str, dict[str, Any]] = {
    "reason": _STRING, "pool": {"type": "string"}, "to_pool": {"type": "string"},
}


def _body(call: Call, operation: str) -> dict[str, Any]:
    body = dict(call.body or {})
    takes, needs, _ = OPERATIONS[operation]
    errors = {name: f"unknown field {name!r}" for name in sorted(set(body) - takes)}
    for name in sorted(needs - set(body)):
        errors[name] = "is required"
    for name, value in body.items():
        if name not in takes or value is None:
            continue
        if not isinstance(value, str):
            errors[name] = "must be a string"
    if errors:
        raise Problem(422, "some fields are not valid", kind="validation", errors=errors)
    return body


def _run(call: Call, operation: str) -> Record:
    body = _body(call, operation)
    pools = PoolService(call.runtime.records)
    actor, entity, record_id = call.actor, call.entity, call.record_id
    reason = body.get("reason")
    if operation == "claim":
        return pools.claim(actor, entity, record_id, reason=reason)
    if operation == "return":
        return pools.return_to_pool(actor, entity, record_id, reason=reason or "",
                                    pool=body.get("pool"))
    if operation == "recycle":
        return pools.recycle(actor, entity, record_id, reason=reason or "",
                             pool=body.get("pool"))
    if operation == "move":
        return pools.move(actor, entity, record_id, to_pool=body["to_pool"], reason=reason)
    if operation == "lock":
        return pools.lock(actor, entity, record_id, reason=reason)
    return pools.unlock(actor, entity, record_id, reason=reason)


def handler(operation: str, respond: Callable[[Call, Record], Response]
            ) -> Callable[[Call], Response]:
    """The API handler of one pool operation (``respond`` renders the record)."""
    def handle(call: Call) -> Response:
        if not call.runtime.registry.entity(call.entity).has(Feature.POOLED):
            raise Problem(404, f"{call.entity} has no pools")
        return respond(call, _run(call, operation))

    return handle


def pool_paths(entity: Entity, *, tags: list[str], record_id: Mapping[str, Any],
               errors: Callable[..., dict[str, Any]],
               record_response: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI paths of the pool operations of a pooled entity."""
    if not entity.has(Feature.POOLED):
        return {}
    paths: dict[str, Any] = {}
    for operation, (takes, needs, summary) in OPERATIONS.items():
        schema = {"type": "object", "additionalProperties": False,
                  "required": sorted(needs),
                  "properties": {m: _MEMBERS[m] for m in sorted(takes)}}
        paths[f"/{entity.name}/{{record_id}}/{operation}"] = {
            "parameters": [record_id],
            "post": {"operationId": f"{operation.replace('-', '_')}_{entity.name}",
                     "tags": tags, "summary": summary.format(name=entity.name),
                     "requestBody": {"required": bool(needs),
                                     "content": {JSON: {"schema": schema}}},
                     "responses": {"200": record_response(),
                                   **errors("Forbidden", "NotFound", "Conflict",
                                            "PayloadTooLarge", "UnsupportedMediaType",
                                            "UnprocessableContent")}},
        }
    return paths
