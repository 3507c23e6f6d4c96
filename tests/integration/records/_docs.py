"""Registry documents for the records-service tests, built as plain dicts.

Entity names are neutral on purpose: these tests exercise the engine, not an app.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert

from engine.metadata.model import Registry
from engine.metadata.parse import registry_from_document
from engine.storage.tables import StorageSchema, build_schema


def label(text: str) -> dict[str, str]:
    return {"en": text, "zh-CN": text}


def field(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": label(name), **extra}


def options(*values: str) -> list[dict[str, Any]]:
    return [{"value": v, "label": {"en": v.title(), "zh-CN": f"选项{v}"}} for v in values]


ACCOUNT = {
    "name": "account",
    "label": label("Account"),
    "title_field": "name",
    "features": ["owned", "activity", "soft_delete"],
    "fields": [
        field("name", "text", required=True, max_length=100),
        field("phone", "phone"),
        field("email", "email"),
        field("website", "url"),
        field("licence_no", "text", pattern="[0-9A-Z]{6,18}"),
        field("city", "text", max_length=40),
        field("revenue", "money", currency="CNY", min=0),
        field("employees", "integer", min=0, max=1000000),
        field("stars", "rating"),
        field("score", "percent"),
        field("ratio", "decimal", precision=10, scale=3),
        field("active", "boolean", default=True),
        field("founded", "date"),
        field("next_call", "datetime"),
        field("tier", "select", options=options("gold", "silver", "bronze")),
        field("tags", "multi_select", options=options("a", "b", "c")),
        field("location", "geo_point"),
        field("address", "address"),
        field("logo", "file", accept=["image/*"], max_size=1000),
        field("notes", "long_text"),
        field("number", "auto_number", format="ACC-{YYYY}-{seq:4}"),
        field("parent", "reference", target="account"),
        field("manager", "user"),
    ],
    "unique_keys": [
        {"name": "phone", "fields": ["phone"]},
        {"name": "licence_city", "fields": ["licence_no", "city"]},
    ],
    "indexes": [{"fields": ["name"]}, {"fields": ["employees"]}, {"fields": ["founded"]}],
    "search_fields": ["name", "email", "notes"],
}

CONTACT = {
    "name": "contact",
    "label": label("Contact"),
    "title_field": "name",
    "features": ["activity"],
    "fields": [
        field("name", "text", required=True),
        field("account", "reference", target="account", required=True),
        field("email", "email", unique=True),
    ],
}

#: A ~10-field entity with no features but activity: the bulk-create benchmark shape.
ITEM = {
    "name": "item",
    "label": label("Item"),
    "title_field": "title",
    "features": ["activity"],
    "fields": [
        field("title", "text", required=True, max_length=120),
        field("sku", "text", unique=True),
        field("qty", "integer", min=0),
        field("price", "decimal", precision=12, scale=2),
        field("in_stock", "boolean"),
        field("released", "date"),
        field("kind", "select", options=options("x", "y", "z")),
        field("email", "email"),
        field("phone", "phone"),
        field("note", "long_text"),
    ],
}


def document(*entities: dict[str, Any]) -> dict[str, Any]:
    chosen = entities or (ACCOUNT, CONTACT, ITEM)
    return {"apps": [], "entities": {e["name"]: e for e in chosen}}


def registry(*entities: dict[str, Any]) -> Registry:
    return registry_from_document(document(*entities))


def create_tables(engine: Engine, *entities: dict[str, Any]) -> StorageSchema:
    schema = build_schema(registry(*entities))
    schema.metadata.create_all(engine)
    return schema


def add_user(engine: Engine, schema: StorageSchema, login: str, *, active: bool = True) -> int:
    users = schema.system["tp_user"]
    with engine.begin() as conn:
        return int(conn.execute(insert(users).values(
            login=login, display_name=login, active=active,
            created_at=datetime.now(UTC)).returning(users.c.id)).scalar_one())
