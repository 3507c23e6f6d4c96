"""Read one app package folder: its manifest and every document file in it.

The layout (docs/packages.md)::

    <app>/app.json
    <app>/entities/<name>.json    <app>/pipelines/<name>.json
    <app>/pools/<name>.json       <app>/roles/<name>.json
    <app>/overlays/<name>.json
    <app>/reports/<name>.json     <app>/dashboards/<name>.json
    <app>/leaderboards/<name>.json   <app>/conversions/<name>.json

Each file is parsed and validated against its schema here; a file that fails
stays in the package with ``valid=False`` so later checks can tell "missing"
from "broken" and do not pile follow-up errors on a single mistake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.schema_check import validate_document

#: Document kind -> folder inside a package (and key of the manifest's "contributes").
KIND_FOLDERS: Mapping[str, str] = {
    "entity": "entities",
    "pipeline": "pipelines",
    "pool": "pools",
    "role": "roles",
    "overlay": "overlays",
    "report": "reports",
    "dashboard": "dashboards",
    "leaderboard": "leaderboards",
    "conversion": "conversions",
}
MANIFEST_FILE = "app.json"


@dataclass(frozen=True)
class DocumentFile:
    """One metadata document as read from its file (or a stored customisation)."""

    kind: str
    name: str          # the file stem, which must equal the document's "name"
    app: str
    file: str          # shown in issues
    document: Any
    valid: bool


@dataclass
class Package:
    """An app package: manifest plus documents, with the issues found reading it."""

    name: str
    path: Path
    manifest: dict[str, Any] | None
    manifest_file: str
    documents: list[DocumentFile] = field(default_factory=list)
    issues: list[MetadataIssue] = field(default_factory=list)

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple((self.manifest or {}).get("depends_on") or ())


def read_json(path: Path, *, file: str) -> tuple[Any, list[MetadataIssue]]:
    """Parse a JSON file; a syntax error or a repeated key is an issue, not an exception."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        document = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return None, [MetadataIssue(file, "", f"invalid JSON: {exc.msg} at line {exc.lineno} "
                                               f"column {exc.colno}")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [MetadataIssue(file, "", f"cannot read file: {exc}")]
    issues = [MetadataIssue(file, "", f"key {key!r} appears twice in one object; the first "
                                      "value would be silently lost")
              for key in duplicates]
    return document, issues


def check_document(kind: str, document: Any, *, name: str, file: str) -> list[MetadataIssue]:
    """Schema issues of one document, plus "the name must equal the file stem"."""
    issues = validate_document(kind, document, file=file)
    if not issues and kind != "overlay" and document.get("name") != name:
        issues.append(MetadataIssue(file, "/name", f"name {document.get('name')!r} does not "
                                                   f"match the file name {name!r}"))
    return issues


def read_package(path: Path) -> Package:
    """Read and schema-check every file of the package folder at ``path``."""
    manifest_path = path / MANIFEST_FILE
    manifest_file = str(manifest_path)
    package = Package(name=path.name, path=path, manifest=None, manifest_file=manifest_file)
    if not path.is_dir():
        package.issues.append(MetadataIssue(str(path), "", "not a folder: an app package is a "
                                                           "folder holding app.json"))
        return package
    if not manifest_path.is_file():
        package.issues.append(MetadataIssue(manifest_file, "", "missing app manifest app.json"))
        return package
    manifest, issues = read_json(manifest_path, file=manifest_file)
    issues = issues or validate_document("manifest", manifest, file=manifest_file)
    package.issues.extend(issues)
    if isinstance(manifest, dict) and isinstance(manifest.get("name"), str):
        package.name = manifest["name"]
    if not issues:
        package.manifest = manifest
    for kind, folder in KIND_FOLDERS.items():
        for file_path in sorted((path / folder).glob("*.json")):
            package.documents.append(_read_document(kind, file_path, app=package.name,
                                                    issues=package.issues))
    if package.manifest is not None:
        package.issues.extend(_check_contributes(package))
    return package


def _read_document(kind: str, path: Path, *, app: str,
                   issues: list[MetadataIssue]) -> DocumentFile:
    file = str(path)
    document, found = read_json(path, file=file)
    if not found:
        found = check_document(kind, document, name=path.stem, file=file)
    issues.extend(found)
    return DocumentFile(kind=kind, name=path.stem, app=app, file=file, document=document,
                        valid=not found)


def _check_contributes(package: Package) -> list[MetadataIssue]:
    """Every declared document has its file and every file is declared."""
    contributes = (package.manifest or {}).get("contributes") or {}
    issues = []
    for kind, folder in KIND_FOLDERS.items():
        declared = list(contributes.get(folder) or ())
        present = {d.name for d in package.documents if d.kind == kind}
        for i, name in enumerate(declared):
            if name not in present:
                issues.append(MetadataIssue(
                    package.manifest_file, f"/contributes/{folder}/{i}",
                    f"declares {kind} {name!r} but {folder}/{name}.json does not exist"))
        for doc in package.documents:
            if doc.kind == kind and doc.name not in declared:
                issues.append(MetadataIssue(
                    doc.file, "", f"{folder}/{doc.name}.json is not declared in app.json "
                                  f"(add {doc.name!r} to contributes.{folder})"))
    return issues
