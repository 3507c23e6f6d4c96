"""Field values as people read them: option labels, names, formatted numbers.

``Names`` resolves the ids that references and user fields hold into titles and
display names in one batch per page, through the records service as the
signed-in actor: a referenced record the actor may not read stays ``#id`` and
gets no link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.numbers import format_currency, format_decimal

from engine.actor import Actor
from engine.errors import ForbiddenError, NotFoundError, QueryError
from engine.metadata.model import Entity, Field, FieldType
from engine.permissions.people_cache import cached_people
from engine.records.coerce import to_string
from engine.records.query import Filter, ListQuery
from engine.records.record import Record
from engine.runtime import Runtime
from ui.i18n import N_, t
from ui.zones import format_day, format_instant

_EXTENSION = re.compile(r"\s*(?:ext\.?|extension|x|转|分机)\s*", re.IGNORECASE)
#: Fields the engine adds to owned/pooled/pipelined entities, shown under these labels.
SYSTEM_LABELS = {"owner_id": N_("Owner"), "pool_id": N_("Pool"), "stage": N_("Stage"),
                 "created_at": N_("Created"), "updated_at": N_("Updated"),
                 "created_by": N_("Created by"), "id": N_("ID"), "version": N_("Version"),
                 "deleted_at": N_("Deleted")}
LONG_TYPES = frozenset({FieldType.LONG_TEXT, FieldType.RICH_TEXT, FieldType.ADDRESS,
                        FieldType.FILE})


@dataclass
class Names:
    """Titles of referenced records and names of users, fetched once per page."""

    records: dict[tuple[str, int], str] = field(default_factory=dict)
    people: dict[int, str] = field(default_factory=dict)

    def title(self, entity: str, record_id: int) -> str | None:
        return self.records.get((entity, record_id))

    def person(self, user_id: int) -> str:
        return self.people.get(user_id, f"#{user_id}")


def resolve_names(runtime: Runtime, actor: Actor, entity: Entity, records: Iterable[Record],
                  *, fields: Iterable[Field] | None = None,
                  extra_people: Iterable[int] = (), owners: bool = True) -> Names:
    """Batch-load what ``records`` reference (only what ``actor`` may read).

    ``owners``: also name each record's owner and creator (the detail page, exports
    and merges show them); a list page names only the people its columns show, so a
    page that shows no person reads no one.
    """
    rows = list(records)
    shown = list(fields) if fields is not None else list(entity.fields)
    references = [(f.name, f.target) for f in shown
                  if f.type is FieldType.REFERENCE and f.target]
    users = [f.name for f in shown if f.type is FieldType.USER]
    systems = ("owner_id", "created_by") if owners else ()
    wanted: dict[str, set[int]] = {}
    people: set[int] = set(extra_people)
    for record in rows:
        values = record.mapping()
        for name, target in references:
            value = values.get(name)
            if value is not None:
                wanted.setdefault(target, set()).add(int(value))
        for name in users:
            value = values.get(name)
            if value is not None:
                people.add(int(value))
        for name in systems:
            value = values.get(name)
            if isinstance(value, int):
                people.add(value)
    names = Names()
    for target, ids in wanted.items():
        names.records.update(titles(runtime, actor, target, ids))
    # names from the process's people cache (stamped): a list page needs no statement
    if people:
        names.people = {pid: p.display_name
                        for pid, p in cached_people(runtime.engine, people).items()}
    return names


def titles(runtime: Runtime, actor: Actor, entity: str, ids: Iterable[int]) -> dict[tuple[str, int], str]:
    target = runtime.registry.entities.get(entity)
    wanted = sorted(set(ids))
    if target is None or not wanted:
        return {}
    found: dict[tuple[str, int], str] = {}
    title_field = target.field(target.title_field)
    for start in range(0, len(wanted), 200):
        chunk = wanted[start:start + 200]
        query = ListQuery(filters=(Filter("id", "in", chunk),), limit=len(chunk))
        try:
            page = runtime.records.list(actor, entity, query)
        except (ForbiddenError, NotFoundError, QueryError):
            return {}
        for record in page.rows:
            text = to_string(title_field, record.get(title_field.name)) if \
                title_field.name in record else ""
            found[(entity, record.id)] = text or f"#{record.id}"
    return found


def option_label(f: Field, value: Any, locale: str) -> str:
    option = f.option(value) if isinstance(value, str) else None
    return (option.label.get(locale) or option.value) if option else str(value)


def _number(value: Decimal | float, places: int | None = None, locale: str = "en") -> str:
    """A number with the locale's grouping and decimal signs (Babel), keeping the
    decimal places the value was stored with (12.50 stays 12.50)."""
    if isinstance(value, Decimal) and places is None:
        exponent = value.as_tuple().exponent
        places = max(0, -exponent) if isinstance(exponent, int) else 2
    pattern = "#,##0" + ("." + "0" * places if places else "") if places is not None \
        else None
    return format_decimal(value, format=pattern, locale=locale.replace("-", "_"),
                          decimal_quantization=places is not None)


def _money(amount: Decimal, currency: str, locale: str) -> str:
    """An amount with its currency as the locale writes it (¥1,234.50 in zh-CN)."""
    return format_currency(amount, currency, locale=locale.replace("-", "_"))


def display(f: Field, value: Any, locale: str, names: Names | None = None) -> str:
    """One value as text for lists, details and exports (no markup)."""
    if value is None or value == "" or value == []:
        return ""
    typ = f.type
    if typ is FieldType.SELECT:
        return option_label(f, value, locale)
    if typ is FieldType.MULTI_SELECT:
        return ", ".join(option_label(f, v, locale) for v in value)
    if typ is FieldType.BOOLEAN:
        return t(locale, "Yes") if value else t(locale, "No")
    if typ is FieldType.MONEY:
        return _money(value["amount"], value["currency"], locale)
    if typ is FieldType.PERCENT:
        return f"{_number(value, locale=locale)}%"
    if typ in (FieldType.INTEGER, FieldType.DECIMAL):
        return _number(value, locale=locale)
    if typ is FieldType.RATING:
        return "★" * int(value)
    if typ is FieldType.DATETIME and isinstance(value, datetime):
        return format_instant(value, locale)
    if typ is FieldType.DATE and isinstance(value, date):
        return format_day(value, locale)
    if typ is FieldType.REFERENCE:
        title = names.title(f.target or "", int(value)) if names else None
        return title or f"#{value}"
    if typ is FieldType.USER:
        return names.person(int(value)) if names else f"#{value}"
    if typ is FieldType.GEO_POINT:
        return f"{value['lat']}, {value['lng']}"
    if typ is FieldType.ADDRESS:
        return address_text(value, locale)
    if typ is FieldType.FILE:
        return str(value.get("name", ""))
    return to_string(f, value)


def phone_link(value: str) -> str:
    """A ``tel:`` URL for a phone number as people type it, so a tap dials it: spaces,
    dashes and brackets dropped, a leading + kept, an extension ("ext. 12", "转12")
    dialled after a pause (",")."""
    main, *extension = _EXTENSION.split(value.strip(), maxsplit=1)
    digits = "".join(ch for ch in main if ch.isdigit() or ch in "+*#")
    ext = "".join(ch for ch in extension[0] if ch.isdigit()) if extension else ""
    if not digits:
        return ""
    return f"tel:{digits},{ext}" if ext else f"tel:{digits}"


def address_text(value: Mapping[str, Any], locale: str = "en") -> str:
    """An address on one line as its readers write it: in Chinese from the province
    down, without separators (广东省深圳市南山区科技园路1号); otherwise from the street up."""
    if "text" in value and len(value) == 1:
        return str(value["text"])
    if locale.startswith("zh"):
        order: tuple[str, ...] = ("country", "province", "city", "district", "street", "text")
        parts: list[str] = []
        for k in order:  # a municipality is its own province: 上海市上海市 reads 上海市
            if value.get(k) and (not parts or parts[-1] != str(value[k])):
                parts.append(str(value[k]))
        head = "".join(parts)
        rest = [str(v) for k, v in sorted(value.items()) if k not in order and k != "postcode" and v]
        tail = [str(value["postcode"])] if value.get("postcode") else []
        return " ".join([head, *rest, *tail]).strip()
    order = ("text", "street", "district", "city", "province", "postcode", "country")
    parts = [str(value[k]) for k in order if value.get(k)]
    parts += [str(v) for k, v in sorted(value.items()) if k not in order and v]
    return ", ".join(parts)


def system_label(name: str, locale: str) -> str:
    return t(locale, SYSTEM_LABELS.get(name, name))


def system_display(name: str, value: Any, names: Names,
                   labels: Mapping[str, Mapping[str, str]] | None = None, *,
                   locale: str = "en") -> str:
    """A system value as text; ``labels`` maps pool and stage keys to their labels."""
    if value is None:
        return ""
    if name in ("owner_id", "created_by"):
        return names.person(int(value))
    if name in ("pool_id", "stage"):
        return (labels or {}).get(name, {}).get(value, str(value))
    if isinstance(value, datetime):
        return format_instant(value, locale)
    return str(value)
