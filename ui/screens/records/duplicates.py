"""Messages a form shows in the user's language that metadata declares.

When a unique key is taken: the key's own localised message (e.g. "该电话号码的客户
已存在。"), then which record holds it - its number when the user may read it,
otherwise only that one exists and whom to ask. When a value misses a field's
pattern: the field's own pattern message.
"""

from __future__ import annotations

from starlette.requests import Request

from engine.errors import DuplicateError
from engine.metadata.model import Entity, Field
from ui.context import UIContext
from ui.i18n import N_

HELD_BY = N_("It belongs to %(title)s #%(id)s.")
HIDDEN = N_("A record you cannot see holds it; ask your manager or an administrator.")
TAKEN = N_("This value is already used by another record.")


def duplicate_text(ui: UIContext, request: Request, entity: Entity,
                   exc: DuplicateError) -> str:
    """One sentence or two, in the request's language, naming the holder only if visible."""
    locale = ui.locale(request)
    key = next((k for k in entity.unique_keys if k.name == exc.key), None)
    message = key.message.get(locale) if key is not None and key.message else \
        ui.t(request, TAKEN)
    if exc.existing_id is None:
        return f"{message} {ui.t(request, HIDDEN)}"
    return f"{message} {ui.t(request, HELD_BY, title=entity.label.get(locale), id=exc.existing_id)}"


def field_message(ui: UIContext, request: Request, field: Field, message: str) -> str:
    """A field's error in the request's language: the field's own pattern message when
    the service used it (it reports the default-language text), else the catalog's."""
    if field.pattern_message and message == field.pattern_message.get():
        return field.pattern_message.get(ui.locale(request))
    return ui.t(request, message)
