"""The schemas are the reference: complete, strict, in step with the model and the docs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.metadata.docgen import REFERENCE_DIR, render_reference
from engine.metadata.model import ACTIONS, Feature, FieldType, RowScope
from engine.metadata.names import RESERVED_WORDS, SYSTEM_COLUMNS
from engine.metadata.schema_check import SCHEMA_FILES, _schemas, load_schema

CONDITIONAL = {"if", "then", "else", "not"}


def objects(node: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every object schema declaring properties, outside if/then/not branches."""
    if isinstance(node, Mapping):
        if "properties" in node and isinstance(node["properties"], Mapping):
            yield path, node
        for key, value in node.items():
            if key not in CONDITIONAL:
                yield from objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from objects(value, f"{path}/{i}")


@pytest.mark.parametrize("name", sorted(_schemas()))
def test_schema_is_valid_strict_and_described(name: str) -> None:
    schema = _schemas()[name]
    Draft202012Validator.check_schema(schema)
    assert schema.get("description")
    for path, obj in objects(schema):
        assert obj.get("additionalProperties") is False or \
            obj.get("unevaluatedProperties") is False, f"{name}{path} is not strict"
        for prop, sub in obj["properties"].items():
            assert sub.get("description"), f"{name}{path}/properties/{prop} has no description"


@pytest.mark.parametrize("kind", [k for k in SCHEMA_FILES if k != "overlay"])
def test_documents_may_name_their_schema(kind: str) -> None:
    assert "$schema" in load_schema(kind)["properties"]


def test_schema_enums_match_the_model() -> None:
    entity = load_schema("entity")
    field = entity["$defs"]["field"]["properties"]
    assert field["type"]["enum"] == [t.value for t in FieldType]
    assert entity["properties"]["features"]["items"]["enum"] == [f.value for f in Feature]
    grant = load_schema("role")["$defs"]["grant"]["properties"]
    assert tuple(grant["actions"]["items"]["enum"]) == ACTIONS
    assert grant["scope"]["enum"] == [s.value for s in RowScope]


def test_storage_uses_the_same_system_columns() -> None:
    from engine.storage.tables import SYSTEM_COLUMNS as STORAGE_COLUMNS
    assert dict(STORAGE_COLUMNS) == SYSTEM_COLUMNS


@pytest.mark.parametrize("word", ["select", "order", "user", "group", "limit", "offset",
                                  "analyse", "returning", "rowid", "window"])
def test_reserved_words_cover_both_databases(word: str) -> None:
    assert word in RESERVED_WORDS


def test_reference_docs_are_generated_from_the_schemas() -> None:
    rendered = render_reference()
    committed = {p.name: p.read_text(encoding="utf-8") for p in REFERENCE_DIR.glob("*.md")}
    assert committed == rendered, (
        "docs/reference/ is stale: run `python -m engine.metadata.docgen` and commit")


def test_every_property_appears_in_the_reference() -> None:
    rendered = render_reference()
    for kind, file in SCHEMA_FILES.items():
        page = rendered[f"{kind}.md"]
        for _, obj in objects(_schemas()[file]):
            for prop in obj["properties"]:
                assert f"| `{prop}` |" in page, f"{prop} missing from {kind}.md"
