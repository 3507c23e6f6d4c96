"""Translations of the UI's own texts, and which locale a request gets.

Messages are English in the code (``t(locale, "Save")``) and translated by
gettext catalogs under ``ui/locale/<locale>/LC_MESSAGES/messages.po``. The
``.po`` files are read at start-up with Babel and compiled in memory, so a fresh
checkout needs no build step. Metadata labels are not here: they carry their own
translations (``LocalText.get(locale)``).

Locale order for a request: ``?lang=`` (also remembered in a cookie), the
``tp_lang`` cookie, the signed-in user's stored locale, ``Accept-Language``,
then English.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from engine.messages import Message
from engine.metadata.model import DEFAULT_LOCALE, SUPPORTED_LOCALES, LocalText

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
LANG_COOKIE = "tp_lang"
LANG_PARAM = "lang"
#: The name each locale goes by in the language switch (in its own language).
LANGUAGE_NAMES: Mapping[str, str] = {"zh-CN": "中文", "en": "English"}


def catalog_path(locale: str) -> Path:
    """Where the ``.po`` file of a locale lives (``zh-CN`` -> ``zh_CN``)."""
    return LOCALE_DIR / locale.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The compiled catalog of a locale; English (the source language) has none."""
    path = catalog_path(locale)
    if locale == DEFAULT_LOCALE or not path.exists():
        return _gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; translate it where it is used."""
    return message


def t(locale: str, message: str, **values: object) -> str:
    """``message`` in ``locale``; ``%(name)s`` placeholders are filled from ``values``.
    An engine ``Message`` brings its own values (see ``translate``)."""
    if isinstance(message, Message) and not values:
        return translate(locale, message)
    text = translations(locale).gettext(message)
    return text % values if values else text


def translate(locale: str, message: object) -> str:
    """An engine message in ``locale``: a ``Message``'s template is looked up and its
    parameters filled in (metadata labels in their own translation); any other text is
    looked up as it is (and shown as it is when the catalog lacks it)."""
    if isinstance(message, Message):
        # metadata labels in their own translation, nested messages translated too
        values = {k: v.get(locale) if isinstance(v, LocalText) else
                  translate(locale, v) if isinstance(v, Message) else v
                  for k, v in message.params.items()}
        text = translations(locale).gettext(message.template)
        return text % values if values else text
    return translations(locale).gettext(str(message)) if message else ""


def tn(locale: str, singular: str, plural: str, n: int, **values: object) -> str:
    """A message with a count: ``%(n)s`` is filled in as well as ``values``."""
    text = translations(locale).ngettext(singular, plural, n)
    return text % {"n": n, **values}


def supported(locale: str | None) -> str | None:
    """``locale`` if the UI speaks it (case-insensitive, ``zh_CN`` accepted), else None."""
    if not locale:
        return None
    wanted = locale.strip().replace("_", "-").lower()
    return next((s for s in SUPPORTED_LOCALES if s.lower() == wanted), None)


def from_accept_language(header: str) -> str | None:
    """The first supported locale a browser asks for (``zh``, ``zh-CN``, ``zh-Hans``...)."""
    ranked = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return None


def negotiate(*, param: str | None, cookie: str | None, user_locale: str | None,
              accept_language: str) -> str:
    """The locale of one request (see the module docstring for the order)."""
    return (supported(param) or supported(cookie) or supported(user_locale)
            or from_accept_language(accept_language) or DEFAULT_LOCALE)
