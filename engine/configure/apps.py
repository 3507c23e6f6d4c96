"""Find the app package folders behind a running database.

The applied metadata names its apps but not where their packages live (the
folder may move between machines). The admin area needs the packages — a
customisation is stored relative to them — so it looks each app up by name in
the folders of ``$TIDEPOOL_APPS_PATH`` (``os.pathsep``-separated), then in the
``apps/`` folder of this repository.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from engine.errors import TidepoolError
from engine.metadata.model import Registry
from engine.metadata.names import CUSTOM_APP
from engine.metadata.package import MANIFEST_FILE

APPS_PATH_ENV = "TIDEPOOL_APPS_PATH"
BUNDLED_APPS = Path(__file__).resolve().parents[2] / "apps"


def search_path() -> list[Path]:
    configured = [Path(p) for p in os.environ.get(APPS_PATH_ENV, "").split(os.pathsep) if p]
    return [*configured, BUNDLED_APPS]


def _manifest_name(folder: Path) -> str | None:
    try:
        name = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def find_apps(names: Sequence[str], *, search: Sequence[Path] | None = None) -> list[Path]:
    """The package folder of each app in ``names`` (the first found on the search path)."""
    found: dict[str, Path] = {}
    for root in search if search is not None else search_path():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / MANIFEST_FILE).is_file()):
            name = _manifest_name(folder)
            if name is not None and name in names and name not in found:
                found[name] = folder
    missing = [n for n in names if n not in found]
    if missing:
        raise TidepoolError(f"app package(s) {', '.join(missing)} not found; add their parent "
                            f"folder to ${APPS_PATH_ENV}")
    return [found[n] for n in names]


def installed_apps(registry: Registry) -> list[Path]:
    """The package folders of the apps ``registry`` was built from (customisations aside)."""
    return find_apps([a.name for a in registry.apps if a.name != CUSTOM_APP])
