"""Keep the gettext catalogs in step with the code: ``python -m ui.i18n_catalog``.

Extracts every message of ``ui/`` (``_()`` in templates; ``t(locale, ...)``,
``ui.t(request, ...)`` and ``tn`` in Python) and merges them into each
catalog: new messages arrive with an empty ``msgstr`` to fill in, translations
of messages still used are kept, obsolete ones dropped. The tests call
``missing_translations`` so no message reaches a page untranslated.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from engine.metadata.model import DEFAULT_LOCALE, SUPPORTED_LOCALES
from ui.i18n import catalog_path

UI_DIR = Path(__file__).resolve().parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "t": (2,), "tn": (2, 3),
            "N_": None, "M": (1,)}
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n",
                                    "trim_blocks": "true", "lstrip_blocks": "true"}}


#: Messages the engine builds for people (``engine.messages.M``), shown translated by the UI.
ENGINE_DIR = UI_DIR.parent / "engine"
ENGINE_KEYWORDS = {"M": (1,)}


def extract() -> Catalog:
    catalog = Catalog(project="tidepool", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            UI_DIR, METHODS, keywords=KEYWORDS, options_map=OPTIONS,
            strip_comment_tags=True):
        if filename.startswith(("api/", "api\\")):  # the API speaks English (problem details)
            continue
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    for filename, lineno, message, comments, context in extract_from_dir(
            ENGINE_DIR, [("**.py", "python")], keywords=ENGINE_KEYWORDS,
            strip_comment_tags=True):
        catalog.add(message, None, [(f"engine/{filename}", lineno)], auto_comments=comments,
                    context=context)
    return catalog


def _read(locale: str) -> Catalog:
    path = catalog_path(locale)
    if not path.exists():
        return Catalog(locale=locale.replace("-", "_"), project="tidepool")
    with path.open("rb") as fh:
        return read_po(fh, locale=locale.replace("-", "_"))


def update(locale: str) -> Path:
    template = extract()
    catalog = _read(locale)
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    path = catalog_path(locale)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False, sort_output=True,
                 include_previous=False)
    return path


def missing_translations(locale: str) -> list[str]:
    """Messages used in ``ui/`` that the locale's catalog does not translate."""
    catalog = _read(locale)
    missing = []
    for message in extract():
        if not message.id:
            continue
        found = catalog.get(message.id)
        strings = found.string if found is not None else None
        if isinstance(strings, tuple):
            ok = all(strings)
        else:
            ok = bool(strings)
        if not ok or (found is not None and found.fuzzy):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def main() -> int:
    for locale in SUPPORTED_LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        path = update(locale)
        left = missing_translations(locale)
        print(f"{path}: {len(left)} message(s) to translate")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def fill(locale: str, translations: dict[str, str]) -> int:
    """Set the given translations (only for messages the catalog has); returns how many."""
    catalog = _read(locale)
    catalog.fuzzy = False
    done = 0
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.id in translations:
            message.string = translations[message.id]
            message.flags.discard("fuzzy")
            done += 1
    with catalog_path(locale).open("wb") as fh:
        write_po(fh, catalog, width=100, sort_output=True, include_previous=False)
    return done
