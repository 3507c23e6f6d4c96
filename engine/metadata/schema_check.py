"""Validate metadata documents against schemas/ and explain each mistake plainly.

jsonschema's raw messages are written for schema authors ("False schema does
not allow ...", a oneOf listing every branch). A consultant needs the file, the
JSON pointer of the offending value and one sentence, so each error is turned
into a ``MetadataIssue`` here: unknown keys point at the key itself (with a
"did you mean"), properties that do not apply to a field type say so, and for
``oneOf`` only the branch the document was evidently aiming at is reported.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from referencing import Registry, Resource

from engine.errors import MetadataIssue

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

#: Document kind -> schema file name.
SCHEMA_FILES: Mapping[str, str] = {
    "manifest": "manifest.schema.json",
    "entity": "entity.schema.json",
    "pipeline": "pipeline.schema.json",
    "pool": "pool.schema.json",
    "role": "role.schema.json",
    "overlay": "overlay.schema.json",
    "report": "report.schema.json",
    "dashboard": "dashboard.schema.json",
    "leaderboard": "leaderboard.schema.json",
    "conversion": "conversion.schema.json",
}
_BASE_URI = "https://tidepool.dev/schemas/"
_IDENTIFIER_PATTERN = "^[a-z][a-z0-9_]{0,62}$"
_STRUCTURAL = frozenset({"required", "additionalProperties", "unevaluatedProperties", "type",
                         "const", "enum"})
# Marks the message of a property the document may not have at all (see _drop_shadowed).
_FORBIDDEN_PREFIX = "property "
# Properties whose value picks which other properties apply (field type, rule kind...).
_DISCRIMINATORS = ("type", "kind", "mode")


def load_schema(kind: str) -> dict[str, Any]:
    """The parsed JSON Schema of a document kind (see ``SCHEMA_FILES``)."""
    return dict(_schemas()[SCHEMA_FILES[kind]])


@lru_cache(maxsize=1)
def _schemas() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(SCHEMA_DIR.glob("*.schema.json"))}


@lru_cache(maxsize=1)
def _validators() -> dict[str, Draft202012Validator]:
    schemas = _schemas()
    registry: Registry[Any] = Registry().with_resources(
        (schema.get("$id", _BASE_URI + name), Resource.from_contents(schema))
        for name, schema in schemas.items()
    )
    return {kind: Draft202012Validator(schemas[file], registry=registry)
            for kind, file in SCHEMA_FILES.items()}


def validate_document(kind: str, document: Any, *, file: str) -> list[MetadataIssue]:
    """Every schema violation of ``document`` as issues, ordered by pointer."""
    validator = _validators()[kind]
    issues: list[MetadataIssue] = []
    for error in validator.iter_errors(document):
        issues.extend(_explain(error, document, file))
    return _dedupe(_drop_shadowed(sorted(issues, key=lambda i: pointer_key(i.pointer))))


def pointer(path: Iterable[Any]) -> str:
    """A JSON pointer (RFC 6901) from path segments: ("fields", 3) -> "/fields/3"."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def pointer_key(ptr: str) -> list[tuple[int, int, str]]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in ptr.split("/")]


def _drop_shadowed(issues: Sequence[MetadataIssue]) -> list[MetadataIssue]:
    """Drop issues inside a value that may not be there at all: saying that a
    forbidden "options" list is also too short would only distract."""
    forbidden = [i.pointer for i in issues if i.message.startswith(_FORBIDDEN_PREFIX)]
    return [i for i in issues
            if i.pointer not in forbidden or i.message.startswith(_FORBIDDEN_PREFIX)
            if not any(i.pointer.startswith(f + "/") for f in forbidden)]


def _dedupe(issues: Sequence[MetadataIssue]) -> list[MetadataIssue]:
    seen: set[MetadataIssue] = set()
    out = []
    for issue in issues:
        if issue not in seen:
            seen.add(issue)
            out.append(issue)
    return out


def _explain(error: SchemaError, root: Any, file: str) -> list[MetadataIssue]:
    path = list(error.absolute_path)
    where = pointer(path)
    if error.validator in ("oneOf", "anyOf") and error.context:
        return [issue for sub in _likeliest_branch(error) for issue in _explain(sub, root, file)]
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        return [MetadataIssue(file, pointer([*path, key]), msg)
                for key, msg in _unknown_keys(error)]
    return [MetadataIssue(file, where, _message(error, root, path))]


def _likeliest_branch(error: SchemaError) -> list[SchemaError]:
    """The errors of the oneOf/anyOf branch the document was evidently written for.

    A branch whose errors are all deep inside the value (rather than "missing
    key" or "unknown key" at its top) matched the document's shape; fewer
    errors break ties.
    """
    branches: dict[Any, list[SchemaError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def score(errors: list[SchemaError]) -> tuple[int, int]:
        shape = sum(1 for e in errors if not e.relative_path and e.validator in _STRUCTURAL)
        return shape, len(errors)

    return min(branches.values(), key=score)


def _unknown_keys(error: SchemaError) -> list[tuple[str, str]]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = list(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    out = []
    for key in instance:
        if key in known or any(p.search(key) for p in patterns):
            continue
        message = f"unknown property {key!r}"
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif known:
            message += f" (allowed: {', '.join(sorted(known))})"
        out.append((key, message))
    return out


def _message(error: SchemaError, root: Any, path: list[Any]) -> str:
    v = error.validator
    if v == "required":
        match = re.match(r"^'(.*)' is a required property$", error.message)
        name = match.group(1) if match else error.message
        return f"missing required property {name!r}{_context(root, path)}"
    if v == "not" and error.validator_value == {} and path:
        return f"{_FORBIDDEN_PREFIX}{path[-1]!r} is not allowed{_context(root, path[:-1])}"
    if v == "enum":
        allowed = [str(x) for x in error.validator_value]
        message = f"{error.instance!r} is not one of: {', '.join(allowed)}"
        if isinstance(error.instance, str):
            close = difflib.get_close_matches(error.instance, allowed, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        return message
    if v == "pattern":
        if error.validator_value == _IDENTIFIER_PATTERN:
            return (f"{error.instance!r} is not a valid name: use a lower-case letter first, then "
                    "lower-case letters, digits or '_', at most 63 characters")
        return f"{error.instance!r} does not match the required form {error.validator_value}"
    if v == "type":
        return f"expected {_type_name(error.validator_value)}, got {_json(error.instance)}"
    if v == "const":
        return f"expected {error.validator_value!r}, got {_json(error.instance)}"
    if v == "uniqueItems":
        return "the list has duplicate items"
    if v == "minItems":
        return f"needs at least {error.validator_value} item(s)"
    if v == "minProperties":
        return f"needs at least {error.validator_value} property(ies)"
    if v == "propertyNames":
        return f"invalid key: {error.message}"
    return str(error.message)


def _context(root: Any, path: list[Any]) -> str:
    """" on a field of type 'x'" when the object holding the error has a discriminator."""
    node = root
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    if isinstance(node, dict):
        for key in _DISCRIMINATORS:
            if isinstance(node.get(key), str):
                noun = {"type": "a field of type", "kind": "a rule of kind",
                        "mode": "distribution mode"}[key]
                return f" on {noun} {node[key]!r}"
    return ""


def _type_name(value: Any) -> str:
    names = {"object": "an object", "array": "a list", "string": "a string",
             "integer": "an integer", "number": "a number", "boolean": "true or false",
             "null": "null"}
    if isinstance(value, list):
        return " or ".join(names.get(str(v), str(v)) for v in value)
    return names.get(str(value), str(value))


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
