"""Form widgets: one per field type, and reading a posted form back into a payload.

A widget carries the strings its inputs show; posting returns the same strings,
which ``payload`` joins into the text forms the records service reads with
``InputSource.STRING`` ("CNY 12.50", "31.2,121.5", "a,b"...). On an edit only
fields whose text changed are sent, so a value the form cannot show exactly
(an address with parts, a datetime's seconds) is never rewritten by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from starlette.datastructures import FormData

from engine.metadata.model import Field, FieldType
from engine.records.coerce import to_string
from engine.records.validate import DEFAULT_RATING_MAX
from ui.i18n import N_, t
from ui.screens.records.listing import Choice
from ui.zones import from_input, input_text

#: Field types whose value the form cannot set (numbered by the engine).
NOT_EDITABLE = frozenset({FieldType.AUTO_NUMBER})
_INPUT_TYPES = {FieldType.EMAIL: "email", FieldType.PHONE: "tel", FieldType.URL: "url",
                FieldType.TEXT: "text"}


#: The parts of an address as a Chinese form asks for them, biggest first, with the
#: browser's autofill names (address-level1 is the province, level2 the city...).
ADDRESS_PARTS = (("province", N_("Province"), "address-level1"),
                 ("city", N_("City"), "address-level2"),
                 ("district", N_("District"), "address-level3"),
                 ("street", N_("Street address"), "street-address"),
                 ("postcode", N_("Postcode"), "postal-code"))
_PART_NAMES = tuple(p[0] for p in ADDRESS_PARTS)


@dataclass(frozen=True)
class AddressPart:
    name: str
    label: str
    value: str
    autocomplete: str


@dataclass(frozen=True)
class Widget:
    """What the form template draws for one field (``kind`` picks the partial)."""

    name: str
    label: str
    kind: str
    value: str = ""
    values: tuple[str, ...] = ()
    currency: str = ""
    lat: str = ""
    lng: str = ""
    input_type: str = "text"
    options: list[Choice] = field(default_factory=list)
    required: bool = False
    readonly: bool = False
    help: str = ""
    error: str = ""
    target: str = ""
    step: str = "any"
    min: str = ""
    max: str = ""
    maxlength: str = ""
    accept: str = ""
    file_name: str = ""
    file_url: str = ""
    parts: tuple[AddressPart, ...] = ()
    #: Where the input asks for possible duplicates as the user leaves it (a field a
    #: fuzzy dedup rule reads, on a record form); empty: it does not ask.
    similar_url: str = ""


def kind_of(f: Field) -> str:
    t = f.type
    if t in _INPUT_TYPES:
        return "input"
    return {FieldType.LONG_TEXT: "textarea", FieldType.RICH_TEXT: "textarea",
            FieldType.INTEGER: "number", FieldType.DECIMAL: "number", FieldType.PERCENT: "number",
            FieldType.MONEY: "money", FieldType.DATE: "date", FieldType.DATETIME: "datetime",
            FieldType.SELECT: "select", FieldType.MULTI_SELECT: "multiselect",
            FieldType.REFERENCE: "reference", FieldType.USER: "user",
            FieldType.BOOLEAN: "boolean", FieldType.GEO_POINT: "geo",
            FieldType.ADDRESS: "address", FieldType.RATING: "rating",
            FieldType.FILE: "file"}.get(t, "input")


def initial_texts(f: Field, value: Any) -> dict[str, str | list[str]]:
    """The strings a field's inputs show for ``value`` (keys are input names)."""
    n = f.name
    if value is None:
        return {n: ""}
    t = f.type
    if t is FieldType.MONEY:
        return {n: format(value["amount"], "f"), f"{n}.currency": value["currency"]}
    if t is FieldType.GEO_POINT:
        return {f"{n}.lat": str(value["lat"]), f"{n}.lng": str(value["lng"])}
    if t is FieldType.MULTI_SELECT:
        return {n: list(value)}
    if t is FieldType.BOOLEAN:
        return {n: "true" if value else "false"}
    if t is FieldType.DATETIME and isinstance(value, datetime):
        return {n: input_text(value)}
    if t is FieldType.ADDRESS:
        return address_texts(n, value)
    if t is FieldType.FILE:
        return {n: ""}
    return {n: to_string(f, value)}


def address_texts(name: str, value: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """An address's part inputs. A one-line address (``{"text": ...}``, as typed before
    addresses had parts or sent by the API) shows in the street input; parts the form
    has no input for are kept in the street line too, so nothing is hidden."""
    texts: dict[str, str | list[str]] = {
        f"{name}.{part}": str(value.get(part) or "") for part in _PART_NAMES}
    extra = [str(v) for k, v in value.items() if k not in _PART_NAMES and v]
    if extra:
        street = str(texts[f"{name}.street"])
        texts[f"{name}.street"] = ", ".join([*extra, street] if street else extra)
    return texts


def posted_texts(f: Field, form: FormData) -> dict[str, str | list[str]]:
    n = f.name
    if f.type is FieldType.ADDRESS:
        return {f"{n}.{part}": _one(form, f"{n}.{part}") for part in _PART_NAMES}
    if f.type is FieldType.MONEY:
        return {n: _one(form, n), f"{n}.currency": _one(form, f"{n}.currency")}
    if f.type is FieldType.GEO_POINT:
        return {f"{n}.lat": _one(form, f"{n}.lat"), f"{n}.lng": _one(form, f"{n}.lng")}
    if f.type is FieldType.MULTI_SELECT:
        return {n: [str(v) for v in form.getlist(n) if isinstance(v, str) and v]}
    return {n: _one(form, n)}


def _one(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def payload_text(f: Field, texts: Mapping[str, str | list[str]]) -> str:
    """The one string the records service reads for the field ("" = no value)."""
    n = f.name
    if f.type is FieldType.MONEY:
        amount = str(texts.get(n, ""))
        currency = str(texts.get(f"{n}.currency", "")) or (f.currency or "")
        return f"{currency} {amount}".strip() if amount else ""
    if f.type is FieldType.GEO_POINT:
        lat, lng = str(texts.get(f"{n}.lat", "")), str(texts.get(f"{n}.lng", ""))
        return f"{lat},{lng}" if lat or lng else ""
    if f.type is FieldType.MULTI_SELECT:
        value = texts.get(n, [])
        return ",".join(value) if isinstance(value, list) else str(value)
    if f.type is FieldType.DATETIME:
        return from_input(str(texts.get(n, "")))
    if f.type is FieldType.ADDRESS:
        parts = {part: str(texts.get(f"{n}.{part}", "")).strip() for part in _PART_NAMES}
        kept = {k: v for k, v in parts.items() if v}
        return orjson.dumps(kept).decode() if kept else ""
    value = texts.get(n, "")
    return value if isinstance(value, str) else ",".join(value)


def changed_payload(fields: Sequence[Field], form: FormData,
                    current: Mapping[str, Any] | None) -> tuple[dict[str, str],
                                                                dict[str, dict[str, Any]]]:
    """The payload of a posted form, and the posted texts (to redraw it on errors).

    Creating (``current`` None): empty fields are left out so defaults apply.
    Editing: only fields whose texts differ from what the form showed.
    """
    payload: dict[str, str] = {}
    posted: dict[str, dict[str, Any]] = {}
    for f in fields:
        if f.type in NOT_EDITABLE or f.type is FieldType.FILE:
            continue
        texts = posted_texts(f, form)
        posted[f.name] = texts
        text = payload_text(f, texts)
        if current is None:
            if text:
                payload[f.name] = text
        elif payload_text(f, initial_texts(f, current.get(f.name))) != text:
            payload[f.name] = text
    return payload, posted


def build_widget(f: Field, *, locale: str, texts: Mapping[str, Any], error: str = "",
                 readonly: bool = False, options: list[Choice] | None = None,
                 file_url: str = "", file_name: str = "") -> Widget:
    n = f.name
    value = texts.get(n, "")
    kind = kind_of(f)
    common: dict[str, Any] = {
        "name": n, "label": f.label.get(locale), "kind": kind, "required": f.required,
        "readonly": readonly,
        "help": f.help.get(locale) if f.help else "", "error": error, "target": f.target or "",
        "value": value if isinstance(value, str) else "",
        "values": tuple(value) if isinstance(value, list) else (),
        "min": "" if f.min is None else _plain_number(f.min),
        "max": "" if f.max is None else _plain_number(f.max),
        "maxlength": "" if f.max_length is None else str(f.max_length),
        "input_type": _INPUT_TYPES.get(f.type, "text"), "file_url": file_url,
        "file_name": file_name}
    if f.type is FieldType.INTEGER:
        common["step"] = "1"
    if f.type is FieldType.MONEY:
        common["currency"] = str(texts.get(f"{n}.currency", "")) or (f.currency or "CNY")
    if f.type is FieldType.GEO_POINT:
        common["lat"] = str(texts.get(f"{n}.lat", ""))
        common["lng"] = str(texts.get(f"{n}.lng", ""))
    if f.type in (FieldType.SELECT, FieldType.MULTI_SELECT):
        chosen = set(common["values"]) | {common["value"]}
        common["options"] = [Choice(o.value, o.label.get(locale) or o.value, o.value in chosen)
                             for o in f.options]
    if f.type is FieldType.RATING:
        top = int(f.max) if f.max is not None else DEFAULT_RATING_MAX
        low = int(f.min) if f.min is not None else 1
        common["options"] = [Choice(str(i), "★" * i, str(i) == common["value"])
                             for i in range(low, top + 1)]
    if f.type is FieldType.FILE:
        common["accept"] = ",".join(f.accept)
    if f.type is FieldType.ADDRESS:
        common["parts"] = tuple(
            AddressPart(part, t(locale, label), str(texts.get(f"{n}.{part}", "")), autofill)
            for part, label, autofill in ADDRESS_PARTS)
    if options is not None:
        common["options"] = options
    return Widget(**common)


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
