"""A pipelined test entity (neutral names: these tests exercise the engine, not an app).

``ticket`` moves through ``ticket_flow``::

    new -> triage | dropped
    triage -> any stage                     (next_stages omitted), needs ``due``
    doing -> triage | done | dropped        needs ``estimate`` and ``due``
    done  (won)  -> nothing                 (closed, next_stages omitted: terminal)
    dropped (lost) -> new                   (closed, but reopening is allowed), needs ``reason``
    parked -> nothing                       (an open stage with next_stages [])
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from engine.metadata.parse import registry_from_document
from engine.storage.tables import StorageSchema, build_schema
from tests.integration.records._docs import ACCOUNT, field, label, options

TICKET: dict[str, Any] = {
    "name": "ticket",
    "label": label("Ticket"),
    "title_field": "title",
    "features": ["owned", "pipelined", "activity", "soft_delete"],
    "fields": [
        field("title", "text", required=True),
        field("estimate", "money", currency="CNY", min=0),
        field("hours", "integer", min=0),
        field("due", "date"),
        field("reason", "select", options=options("dup", "wontfix")),
        field("secret", "text"),
    ],
    "indexes": [{"fields": ["title"]}],
    "search_fields": ["title"],
}


def stage(key: str, order: int, **extra: Any) -> dict[str, Any]:
    return {"key": key, "label": label(key.title()), "order": order, **extra}


FLOW: dict[str, Any] = {
    "name": "ticket_flow",
    "entity": "ticket",
    "label": label("Ticket flow"),
    "initial_stage": "new",
    "stages": [
        stage("new", 1, next_stages=["triage", "dropped"]),
        stage("triage", 2, required_fields=["due"]),
        stage("doing", 3, required_fields=["estimate", "due"],
              next_stages=["triage", "done", "dropped"]),
        stage("done", 4, kind="won", required_fields=["estimate"]),
        stage("dropped", 5, kind="lost", required_fields=["reason"], next_stages=["new"]),
        stage("parked", 6, next_stages=[]),
    ],
}


def document(roles: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apps": [], "entities": {"ticket": TICKET, "account": ACCOUNT},
            "pipelines": {"ticket_flow": FLOW}, "roles": roles or {}}


def create_tables(engine: Engine, roles: dict[str, Any] | None = None) -> StorageSchema:
    schema = build_schema(registry_from_document(document(roles)))
    schema.metadata.create_all(engine)
    return schema
