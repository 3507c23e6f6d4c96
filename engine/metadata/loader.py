"""Load app packages (plus customisations) into one validated, immutable Registry.

The public entry points:

- ``load_packages(paths, customisations=...)`` -> ``Registry``, or ``MetadataError``
  carrying *every* issue found (schema, dependency, overlay, cross-check);
- ``check_packages(paths)`` -> the list of issues, for ``tidepool check``.

Order of work: read and schema-check every file; order apps by dependency;
per app (in that order) register its documents, then apply its overlays; then
the customisations as the implicit app ``custom``; then cross-check the merged
result. Broken documents are kept out of the merge but remembered, so one
mistake is reported once rather than as a cascade of "missing" errors.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import MetadataError, MetadataIssue
from engine.metadata.build import build_registry
from engine.metadata.crosscheck import crosscheck
from engine.metadata.customisation import REPLACEABLE_KINDS, Customisation, customisation_file
from engine.metadata.dependencies import order_packages
from engine.metadata.located import LocatedDoc
from engine.metadata.model import Registry
from engine.metadata.names import CUSTOM_APP
from engine.metadata.overlay import apply_overlay
from engine.metadata.package import KIND_FOLDERS, DocumentFile, read_package
from engine.metadata.schema_check import pointer_key
from engine.metadata.world import World

__all__ = ["Customisation", "check_packages", "load_packages"]

_CUSTOM_LABEL = {"en": "Customisations", "zh-CN": "自定义配置"}


def load_packages(paths: Sequence[Path | str], *,
                  customisations: Sequence[Customisation] = ()) -> Registry:
    """The registry of the app packages at ``paths`` with ``customisations`` applied.

    Raises ``MetadataError`` listing every issue when anything is wrong.
    """
    result = _Load()
    registry = result.run(paths, customisations)
    if registry is None:
        raise MetadataError(result.issues)
    return registry


def check_packages(paths: Sequence[Path | str]) -> list[MetadataIssue]:
    """Every issue of the app packages at ``paths`` (empty when they load cleanly)."""
    result = _Load()
    result.run(paths, ())
    return result.issues


@dataclass
class _Load:
    issues: list[MetadataIssue] = field(default_factory=list)
    world: World = field(default_factory=World)

    def report(self, issues: Sequence[MetadataIssue]) -> None:
        for issue in issues:
            if issue not in self.issues:
                self.issues.append(issue)

    def run(self, paths: Sequence[Path | str],
            customisations: Sequence[Customisation]) -> Registry | None:
        packages = [read_package(Path(p)) for p in paths]
        for package in packages:
            self.report(package.issues)
        order, dep_issues = order_packages(packages)
        self.report(dep_issues)
        ancestors = dict(order.ancestors)
        ancestors[CUSTOM_APP] = frozenset(p.name for p in order.packages)
        self.world.ancestors = ancestors

        apps: list[tuple[dict[str, Any], str]] = []
        for package in order.packages:
            if package.manifest is not None:
                apps.append((_strip(package.manifest), str(package.path)))
            self.add_app(package.documents)
        if customisations:
            self.add_customisations(customisations, apps)

        self.report(crosscheck(self.world))
        # One file's issues together, in document order: how a consultant fixes them.
        self.issues.sort(key=lambda i: (i.file, pointer_key(i.pointer)))
        if self.issues:
            return None
        return build_registry(apps=apps, entities=self.world.entities,
                              pipelines=self.world.pipelines, pools=self.world.pools,
                              roles=self.world.roles,
                              reporting={"reports": self.world.reports,
                                         "dashboards": self.world.dashboards,
                                         "leaderboards": self.world.leaderboards,
                                         "conversions": self.world.conversions})

    def add_app(self, documents: Sequence[DocumentFile]) -> None:
        for doc in documents:
            if doc.kind != "overlay":
                self.add_document(doc, replace=self.replaces_ancestor(doc))
        for doc in documents:
            if doc.kind == "overlay" and doc.valid:
                self.report(apply_overlay(doc, entities=self.world.entities,
                                          pipelines=self.world.pipelines,
                                          ancestors=self.world.ancestors,
                                          broken=self.world.broken))

    def replaces_ancestor(self, doc: DocumentFile) -> bool:
        """A pool or role (no overlay form) may replace one of an app it depends on,
        as a customisation may; this is how exported customisations load as a package."""
        existing = self.table(doc.kind).get(doc.name) if doc.kind in REPLACEABLE_KINDS else None
        return existing is not None and \
            existing.app in self.world.ancestors.get(doc.app, frozenset())

    def table(self, kind: str) -> dict[str, LocatedDoc]:
        return {"entity": self.world.entities, "pipeline": self.world.pipelines,
                "pool": self.world.pools, "role": self.world.roles,
                "report": self.world.reports, "dashboard": self.world.dashboards,
                "leaderboard": self.world.leaderboards,
                "conversion": self.world.conversions}[kind]

    def add_document(self, doc: DocumentFile, *, replace: bool = False) -> None:
        if not doc.valid:
            self.world.broken.add((doc.kind, doc.name))
            if isinstance(doc.document, dict) and isinstance(doc.document.get("name"), str):
                self.world.broken.add((doc.kind, doc.document["name"]))
            return
        table = self.table(doc.kind)
        existing = table.get(doc.name)
        if existing is not None and not replace:
            hint = ("; store an overlay customisation to change it"
                    if doc.app == CUSTOM_APP else "")
            self.report([MetadataIssue(doc.file, "/name",
                                       f"{doc.kind} {doc.name!r} is already declared by app "
                                       f"{existing.app!r} ({existing.file}){hint}")])
            return
        table[doc.name] = LocatedDoc(kind=doc.kind, name=doc.name, app=doc.app, file=doc.file,
                                     body=_strip(doc.document))

    def add_customisations(self, customisations: Sequence[Customisation],
                           apps: list[tuple[dict[str, Any], str]]) -> None:
        contributes: dict[str, list[str]] = {}
        files: list[DocumentFile] = []
        for custom in customisations:
            doc, issues = customisation_file(custom)
            self.report(issues)
            files.append(doc)
            if doc.kind in KIND_FOLDERS:
                contributes.setdefault(KIND_FOLDERS[doc.kind], []).append(doc.name)
        for doc in files:
            if doc.kind in REPLACEABLE_KINDS:
                self.add_document(doc, replace=True)
            elif doc.kind in ("entity", "pipeline"):
                self.add_document(doc)
        for doc in files:
            if doc.kind == "overlay" and doc.valid:
                self.report(apply_overlay(doc, entities=self.world.entities,
                                          pipelines=self.world.pipelines,
                                          ancestors=self.world.ancestors,
                                          broken=self.world.broken))
        apps.append(({"name": CUSTOM_APP, "version": "1.0.0", "label": dict(_CUSTOM_LABEL),
                      "depends_on": [m["name"] for m, _ in apps],
                      "contributes": {k: sorted(set(v)) for k, v in contributes.items()}},
                     ""))


def _strip(document: dict[str, Any]) -> dict[str, Any]:
    """A deep copy without the editor-only "$schema" key."""
    body = copy.deepcopy(document)
    body.pop("$schema", None)
    return body
