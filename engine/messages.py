"""Messages the engine shows people, translatable by whoever shows them.

The engine speaks English and knows nothing of requests or locales. A message
meant for a person is built with ``M("template with %(name)s", name=value)``: it
*is* the English text (a ``str``, so logs, the CLI and the JSON API use it as
before) and also carries its template and parameters, so the UI can look the
template up in its catalog and fill the parameters in (``ui.i18n.translate``).
``python -m ui.i18n_catalog`` extracts every ``M("...")`` template of the engine
with the UI's own messages, and a test fails when one lacks a translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from engine.metadata.model import LocalText


class Message(str):
    """English text that remembers its template and parameters (see the module docstring)."""

    template: str
    params: Mapping[str, Any]

    def __new__(cls, template: str, params: Mapping[str, Any] | None = None) -> Self:
        values = dict(params or {})
        english = {k: v.get() if isinstance(v, LocalText) else v for k, v in values.items()}
        text = template % english if values else template
        made = super().__new__(cls, text)
        made.template = template
        made.params = values
        return made

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (and copies) keep the template
        return (Message, (self.template, dict(self.params)))


def M(template: str, **params: Any) -> Message:
    """A translatable engine message: ``M("must be at least %(low)s", low=3)``."""
    return Message(template, params)


def message_of(exc: BaseException) -> str:
    """An exception's message, keeping a ``Message`` (``str(exc)`` would flatten it)."""
    first = exc.args[0] if exc.args else ""
    return first if isinstance(first, Message) else str(exc)
