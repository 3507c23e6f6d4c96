"""Small lookups every records route needs: the entity of the URL, the record id."""

from __future__ import annotations

from starlette.requests import Request

from engine.errors import NotFoundError
from engine.metadata.model import Entity
from engine.runtime import Runtime


def entity_of(runtime: Runtime, request: Request) -> Entity:
    """The entity named in the path; 404 for an unknown one (same as an invisible one)."""
    name = request.path_params["entity"]
    entity = runtime.registry.entities.get(name)
    if entity is None:
        raise NotFoundError("entity", name)
    return entity


def record_id_of(request: Request) -> int:
    value = request.path_params["record_id"]
    if not isinstance(value, int) or value > 2**63 - 1:
        raise NotFoundError(request.path_params["entity"], value)
    return value
