"""Build app packages in tmp_path from dicts, so each test states its metadata inline."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FOLDERS = {"entities", "pipelines", "pools", "roles", "overlays"}


def L(en: str, zh: str | None = None) -> dict[str, str]:
    return {"en": en, "zh-CN": zh or en}


def write_package(root: Path, name: str, files: Mapping[str, Any], *,
                  manifest: Mapping[str, Any] | None = None) -> Path:
    """Write app ``name`` under ``root``: ``files`` maps "entities/x.json" -> document.

    The manifest's ``contributes`` lists every file unless ``manifest`` says otherwise.
    """
    folder = root / name
    folder.mkdir(parents=True)
    contributes: dict[str, list[str]] = {}
    for rel, doc in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False),
                        encoding="utf-8")
        kind_folder, stem = rel.split("/")[0], Path(rel).stem
        if kind_folder in FOLDERS:
            contributes.setdefault(kind_folder, []).append(stem)
    app: dict[str, Any] = {"name": name, "version": "1.0.0", "label": L(name.title()),
                           "contributes": contributes}
    app.update(manifest or {})
    (folder / "app.json").write_text(json.dumps(app), encoding="utf-8")
    return folder


def base_files() -> dict[str, Any]:
    """A small valid app touching every document kind."""
    return copy.deepcopy({
        "entities/account.json": {
            "name": "account", "label": L("Account", "客户"), "title_field": "name",
            "features": ["owned", "pooled", "pipelined", "activity", "soft_delete"],
            "fields": [
                {"name": "name", "type": "text", "label": L("Name"), "required": True},
                {"name": "phone", "type": "phone", "label": L("Phone")},
                {"name": "status", "type": "select", "label": L("Status"), "default": "new",
                 "options": [{"value": "new", "label": L("New")},
                             {"value": "active", "label": L("Active")}]},
                {"name": "amount", "type": "money", "label": L("Amount"), "currency": "CNY"},
                {"name": "location", "type": "geo_point", "label": L("Location")},
                {"name": "code", "type": "auto_number", "label": L("Code"),
                 "format": "A-{YYYY}-{seq:4}"},
            ],
            "unique_keys": [{"name": "phone", "fields": ["phone"]}],
            "indexes": [{"fields": ["status"]}],
            "search_fields": ["name", "phone"],
        },
        "entities/note.json": {
            "name": "note", "label": L("Note"), "title_field": "title", "features": ["owned"],
            "fields": [
                {"name": "title", "type": "text", "label": L("Title")},
                {"name": "account", "type": "reference", "label": L("Account"),
                 "target": "account", "on_delete": "cascade"},
            ],
        },
        "pipelines/account_flow.json": {
            "name": "account_flow", "entity": "account", "label": L("Flow"),
            "initial_stage": "new",
            "stages": [
                {"key": "new", "label": L("New"), "order": 1, "next_stages": ["talk", "lost"]},
                {"key": "talk", "label": L("Talk"), "order": 2, "probability": 50,
                 "required_fields": ["amount"]},
                {"key": "won", "label": L("Won"), "order": 3, "kind": "won"},
                {"key": "lost", "label": L("Lost"), "order": 4, "kind": "lost"},
            ],
        },
        "pools/account_pool.json": {
            "name": "account_pool", "entity": "account", "label": L("Pool"),
            "members": {"roles": ["rep"]},
            "rules": [{"name": "idle", "kind": "drop", "clock": "touched", "after": {"hours": 72},
                       "warn_before_hours": 24,
                       "exempt": {"field": "status", "op": "eq", "value": "active"}}],
            "distribution": {"mode": "by_field", "field": "status",
                             "targets": {"new": {"department": "t1"}}},
        },
        "roles/rep.json": {
            "name": "rep", "label": L("Rep"),
            "grants": [{"entity": "account", "actions": ["read", "update"], "scope": "own"},
                       {"entity": "account", "actions": ["read", "claim"], "scope": "pool"},
                       {"entity": "note", "actions": ["read"], "scope": "all",
                        "hidden_fields": ["title"]}],
        },
    })
