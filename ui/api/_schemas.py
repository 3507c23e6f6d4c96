"""JSON Schema (2020-12, as OpenAPI 3.1 uses it) of field values, from field metadata.

Two shapes per field: ``read`` describes what the API returns (``to_json``:
decimals and money amounts as strings, instants as ISO 8601, references as
ids), ``write`` what it accepts (decimals also as JSON numbers, money without a
currency when the field has a default one). Every value may be null: an empty
field is null, and writing null clears a field that is not required.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String

from engine.metadata.model import Entity, Feature, Field, FieldType, Registry
from engine.metadata.names import SYSTEM_COLUMNS
from engine.records.validate import DEFAULT_RATING_MAX
from engine.storage.tables import column_type

Schema = dict[str, Any]

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
#: Every record has these, whatever the reader may see.
ALWAYS_PRESENT = ("id", "version", "created_at", "updated_at", "created_by")


def nullable(schema: Schema) -> Schema:
    """The schema plus null."""
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    elif kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _annotations(field: Field) -> Schema:
    out: Schema = {"title": field.label.get("en")}
    if field.help:
        out["description"] = field.help.get("en")
    labels = field.label.as_dict()
    if labels:
        out["x-labels"] = labels
    return out


def _text(field: Field) -> Schema:
    schema: Schema = {"type": "string"}
    column = column_type(field)
    max_length = field.max_length
    if isinstance(column, String) and column.length:
        max_length = min(max_length or column.length, column.length)
    if max_length is not None:
        schema["maxLength"] = max_length
    if field.min_length is not None:
        schema["minLength"] = field.min_length
    if field.pattern:
        # The service matches the whole value; JSON Schema patterns match anywhere.
        schema["pattern"] = f"^(?:{field.pattern})$"
    if field.type is FieldType.EMAIL:
        schema["format"] = "email"
    elif field.type is FieldType.URL:
        # An IRI: addresses may hold Chinese (or any) letters; what an IRI may not hold
        # is percent-encoded when stored (engine.records.coerce.web_address).
        schema["format"] = "iri"
    return schema


def _range(field: Field, low: float | None, high: float | None) -> Schema:
    out: Schema = {}
    if low is not None:
        out["minimum"] = low
    if high is not None:
        out["maximum"] = high
    return out


def _decimal(field: Field, *, write: bool) -> Schema:
    bounds = (field.min, field.max)
    if field.type is FieldType.PERCENT and bounds == (None, None):
        bounds = (0, 100)
    if write:
        # Numbers are checked against the range; strings are read as decimals.
        return {"anyOf": [{"type": "number", **_range(field, *bounds)},
                          {"type": "string", "pattern": DECIMAL_PATTERN}]}
    shown = [f"at least {bounds[0]}" if bounds[0] is not None else "",
             f"at most {bounds[1]}" if bounds[1] is not None else ""]
    out: Schema = {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN}
    if any(shown):
        out["x-range"] = " and ".join(s for s in shown if s)
    return out


def _money(field: Field, *, write: bool) -> Schema:
    amount = _decimal(field, write=write)
    currency: Schema = {"type": "string", "pattern": CURRENCY_PATTERN if not write
                        else r"^[A-Za-z]{3}$"}
    if field.currency:
        currency["default"] = field.currency
    required = ["amount"] if write and field.currency else ["amount", "currency"]
    return {"type": "object", "properties": {"amount": amount, "currency": currency},
            "required": required, "additionalProperties": False}


def value_schema(field: Field, *, write: bool) -> Schema:
    """The schema of one field's non-null value."""
    t = field.type
    if t in (FieldType.TEXT, FieldType.LONG_TEXT, FieldType.RICH_TEXT, FieldType.EMAIL,
             FieldType.PHONE, FieldType.URL, FieldType.AUTO_NUMBER):
        return _text(field)
    if t is FieldType.SELECT:
        return {"type": "string", "enum": list(field.option_values)}
    if t is FieldType.MULTI_SELECT:
        return {"type": "array", "items": {"type": "string", "enum": list(field.option_values)},
                "uniqueItems": True, "minItems": 1}
    if t is FieldType.INTEGER:
        return {"type": "integer", **_range(field, field.min, field.max)}
    if t is FieldType.RATING:
        return {"type": "integer", **_range(field, field.min if field.min is not None else 1,
                                            field.max if field.max is not None
                                            else DEFAULT_RATING_MAX)}
    if t in (FieldType.DECIMAL, FieldType.PERCENT):
        return _decimal(field, write=write)
    if t is FieldType.MONEY:
        return _money(field, write=write)
    if t is FieldType.BOOLEAN:
        return {"type": "boolean"}
    if t is FieldType.DATE:
        return {"type": "string", "format": "date"}
    if t is FieldType.DATETIME:
        return {"type": "string", "format": "date-time"}
    if t is FieldType.REFERENCE:
        return {"type": "integer", "minimum": 1, "x-target": field.target,
                "description": f"the id of a {field.target} record"}
    if t is FieldType.USER:
        return {"type": "integer", "minimum": 1, "description": "the id of a user"}
    if t is FieldType.GEO_POINT:
        return {"type": "object", "required": ["lat", "lng"], "additionalProperties": False,
                "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                               "lng": {"type": "number", "minimum": -180, "maximum": 180}}}
    if t is FieldType.ADDRESS:
        return {"type": "object",
                "additionalProperties": {"type": ["string", "number", "null"]}}
    if t is FieldType.FILE:
        if write:  # the server issued the storage key: a write names the upload only
            return {"type": "object", "required": ["upload_id"], "additionalProperties": False,
                    "description": f"Upload first (POST /{{entity}}/files/{field.name}), "
                                   "then send the upload_id it returned.",
                    "properties": {"upload_id": {"type": "string", "minLength": 1}}}
        file: Schema = {"type": "object", "required": ["name", "url"],
                        "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1},
            "size": {"type": "integer", "minimum": 0,
                     **({"maximum": field.max_size} if field.max_size is not None else {})},
            "content_type": {"type": "string"},
            "url": {"type": "string", "description": "Download it here (read access needed)."}}}
        if field.accept:
            file["properties"]["content_type"]["x-accept"] = list(field.accept)
        return file
    raise AssertionError(f"unmapped field type {t}")


def field_schema(field: Field, *, write: bool) -> Schema:
    value = value_schema(field, write=write)
    schema = nullable(value) if "anyOf" not in value else {
        "anyOf": [*value["anyOf"], {"type": "null"}]}
    # Annotations sit beside the type; a description on the value itself wins.
    return {**_annotations(field), **schema}


def _system(name: str, registry: Registry, entity: Entity) -> Schema:
    if name in ("id", "version"):
        return {"type": "integer", "minimum": 1, "readOnly": True}
    if name in ("created_at", "updated_at"):
        return {"type": "string", "format": "date-time", "readOnly": True}
    if name == "deleted_at":
        return {"type": ["string", "null"], "format": "date-time", "readOnly": True,
                "description": "set while the record is in the recycle bin"}
    if name == "created_by":
        return {"type": ["integer", "null"], "readOnly": True}
    if name == "owner_id":
        return {"type": ["integer", "null"], "minimum": 1,
                "description": "the owning user; may be given on create (default: you)"}
    if name == "pool_id":
        pools = sorted(p.name for p in registry.pools.values() if p.entity == entity.name)
        return {"type": ["string", "null"], "enum": [*pools, None], "readOnly": True}
    if name == "stage":
        return {**stage_schema(registry, entity), "type": ["string", "null"],
                "enum": [*stage_schema(registry, entity)["enum"], None]}
    raise AssertionError(f"unknown system column {name}")


def stage_schema(registry: Registry, entity: Entity) -> Schema:
    """The pipeline stage: given on create or not, changed by an update naming a next stage."""
    pipelines = registry.pipelines_of(entity.name)
    stages = [s.key for p in pipelines for s in p.stages]
    selector = next((p.selector.field for p in pipelines if p.selector is not None), None)
    mine = (f"; the record's pipeline (chosen by {selector}) decides which of these it may "
            f"take, and changing {selector} moves it to the new pipeline's initial stage"
            if selector else "")
    return {"type": "string", "enum": stages,
            "description": "the pipeline stage; an update naming it moves the record (only to "
                           "a next stage, with the fields that stage requires)" + mine}


def system_columns(entity: Entity) -> list[str]:
    return [name for name, feature in SYSTEM_COLUMNS.items()
            if feature is None or entity.has(feature)]


#: The member of a created record's body carrying dedup warnings (field names cannot
#: start with "_", so it never clashes with a field).
WARNINGS = "_warnings"


def warning_schema() -> Schema:
    """A possible duplicate (engine/records/dedup.py ``DedupWarning.as_json``)."""
    return {"type": "object", "required": ["rule", "entity", "message", "count"],
            "additionalProperties": False, "properties": {
                "index": {"type": "integer", "description": "the row of a bulk request"},
                "rule": {"type": "string", "description": "the dedup rule that matched"},
                "entity": {"type": "string", "description": "the matched record's entity"},
                "message": {"type": "string"},
                "count": {"type": "integer", "description": "stored records matched"},
                "existing_id": {"type": "integer",
                                "description": "the first matched record, when you may read it"},
                "title": {"type": ["string", "null"]},
                "ask": {"type": "string", "description": "whom to ask about a matched record "
                                                         "you cannot see"}}}


def record_schema(registry: Registry, entity: Entity) -> Schema:
    """A record as the API returns it (fields the reader may not see are absent)."""
    properties: Schema = {name: _system(name, registry, entity)
                          for name in system_columns(entity)}
    for f in entity.fields:
        schema = field_schema(f, write=False)
        if f.type is FieldType.AUTO_NUMBER:
            schema["readOnly"] = True
        properties[f.name] = schema
    if entity.dedup_rules:
        properties[WARNINGS] = {
            "type": "array", "readOnly": True, "items": warning_schema(),
            "description": "Only in the answer of a create, or of an update that sent a "
                           "value the entity's fuzzy dedup rules read, and only when those "
                           "rules matched other stored records: the record was saved; these "
                           "are possible duplicates to review (docs/dedup.md)."}
    return {"type": "object", "title": entity.label.get("en"),
            "description": f"A {entity.name} record. Fields the caller's roles hide are left "
                           "out; system columns are read-only.",
            "properties": properties, "required": list(ALWAYS_PRESENT),
            "additionalProperties": False}


def create_schema(registry: Registry, entity: Entity) -> Schema:
    """The body of a create: writable fields; required ones without a default must be given."""
    properties: Schema = {f.name: field_schema(f, write=True) for f in entity.fields
                          if f.type is not FieldType.AUTO_NUMBER}
    if entity.has(Feature.OWNED):
        properties["owner_id"] = {"type": ["integer", "null"], "minimum": 1,
                                  "description": "the owning user (default: you)"}
    if entity.has(Feature.PIPELINED):
        properties["stage"] = {**stage_schema(registry, entity),
                               "description": "the stage to start in (default: the initial "
                                              "stage of the record's pipeline), with the "
                                              "fields that stage requires"}
    required = [f.name for f in entity.fields if f.required and f.default is None
                and f.type is not FieldType.AUTO_NUMBER]
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def update_schema(registry: Registry, entity: Entity) -> Schema:
    """The body of an update: any writable fields, and ``version`` unless If-Match carries it."""
    properties: Schema = {f.name: field_schema(f, write=True) for f in entity.fields
                          if f.type is not FieldType.AUTO_NUMBER}
    if entity.has(Feature.PIPELINED):
        properties["stage"] = stage_schema(registry, entity)
    properties["version"] = {"type": "integer", "minimum": 1,
                             "description": "the version you are changing (or send If-Match)"}
    return {"type": "object", "properties": properties, "additionalProperties": False}
