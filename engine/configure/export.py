"""Export the stored customisations as an app package folder.

The folder is an ordinary package (docs/packages.md): ``app.json`` depending on
the apps the database runs, plus ``entities/``, ``pipelines/``, ``pools/``,
``roles/`` and ``overlays/`` files holding the customisation documents as they
are stored. ``tidepool check BASE... DIR`` accepts it, and loading the base
apps with it gives the same entities, pipelines, pools and roles as the live
metadata — so a configuration made by clicking can be versioned, reviewed and
installed elsewhere like code. (The package needs a name of its own: ``custom``
is reserved for the stored customisations themselves.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.errors import TidepoolError
from engine.metadata.customisation import Customisation
from engine.metadata.loader import load_packages
from engine.metadata.package import KIND_FOLDERS, MANIFEST_FILE
from engine.storage.customisations import load_customisations

DEFAULT_EXPORT_NAME = "site"
_DEFAULT_LABEL = {"en": "Site customisations", "zh-CN": "站点自定义配置"}


def export_package(engine: Engine, *, apps: Sequence[Path | str], out: Path,
                   name: str = DEFAULT_EXPORT_NAME, version: str = "1.0.0",
                   label: Mapping[str, str] | None = None) -> list[Path]:
    """Write the customisations of the database behind ``engine`` to the folder ``out``
    (new or empty); returns the files written, app.json first."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TidepoolError(f"{out} exists and is not an empty folder; choose a new one")
    with engine.connect() as conn:
        stored = [Customisation(r["kind"], r["name"], r["document"])
                  for r in load_customisations(conn)]
    base = load_packages(apps)
    contributes: dict[str, list[str]] = {}
    for custom in stored:
        contributes.setdefault(KIND_FOLDERS[custom.kind], []).append(custom.name)
    manifest = {"name": name, "version": version, "label": dict(label or _DEFAULT_LABEL),
                "depends_on": [app.name for app in base.apps],
                "contributes": {k: sorted(v) for k, v in sorted(contributes.items())}}
    out.mkdir(parents=True, exist_ok=True)
    written = [_write(out / MANIFEST_FILE, manifest)]
    for custom in stored:
        folder = out / KIND_FOLDERS[custom.kind]
        folder.mkdir(exist_ok=True)
        written.append(_write(folder / f"{custom.name}.json", custom.document))
    return written


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
