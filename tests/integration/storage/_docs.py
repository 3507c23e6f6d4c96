"""Tiny builders of registry documents for the migration tests.

They produce the canonical document shape (engine/metadata/parse.py) directly,
so these tests do not depend on the package loader.
"""

from __future__ import annotations

from typing import Any

from engine.metadata.model import Registry
from engine.metadata.parse import registry_from_document


def field(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": {"en": name.title(), "zh-CN": name}, **extra}


def options(*values: str) -> list[dict[str, Any]]:
    return [{"value": v, "label": {"en": v.title()}} for v in values]


def entity(name: str, *fields: dict[str, Any], title: str | None = None,
           features: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": {"en": name.title(), "zh-CN": name},
        "fields": list(fields),
        "title_field": title or fields[0]["name"],
        "features": list(features),
        **extra,
    }


def registry(*entities: dict[str, Any], **sections: dict[str, Any]) -> Registry:
    """A registry of ``entities`` plus any of pipelines / pools / roles by name."""
    document = {
        "apps": [{"name": "testapp", "version": "1.0.0", "label": {"en": "Test"}}],
        "entities": {e["name"]: e for e in entities},
        "pipelines": sections.get("pipelines", {}),
        "pools": sections.get("pools", {}),
        "roles": sections.get("roles", {}),
    }
    return registry_from_document(document)
