"""Customisations: metadata the admin changed in the UI, stored in the database.

They load after every package as one implicit app, ``custom``, that depends on
all loaded apps, so an admin may overlay anything. The same schemas apply;
issues name the customisation as ``customisation:<kind>/<name>``.

- ``entity`` / ``pipeline``: a new document; an existing name is refused (change
  existing ones with an ``overlay`` customisation, which keeps the package's
  part upgradable).
- ``pool`` / ``role``: a new document, or the complete replacement of the
  package's document of that name (these have no overlay form).
- ``report`` / ``dashboard`` / ``leaderboard`` / ``conversion``: a new document or
  the complete replacement of the package's (the admin adding a report to a
  dashboard, or a field to what a conversion copies).
- ``overlay``: an overlay document, as in a package's overlays/ folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.names import CUSTOM_APP
from engine.metadata.package import KIND_FOLDERS, DocumentFile, check_document

#: Kinds whose customisation may replace the package's document of the same name.
REPLACEABLE_KINDS = frozenset({"pool", "role", "dashboard", "report", "leaderboard",
                               "conversion"})


@dataclass(frozen=True)
class Customisation:
    """One stored customisation: its kind, its name and its JSON document."""

    kind: str      # entity | overlay | pipeline | pool | role
    name: str
    document: Any

    @property
    def file(self) -> str:
        """How issues name this customisation."""
        return f"customisation:{self.kind}/{self.name}"


def customisation_file(custom: Customisation) -> tuple[DocumentFile, list[MetadataIssue]]:
    """Validate a customisation like a package file and wrap it as one."""
    if custom.kind not in KIND_FOLDERS:
        issue = MetadataIssue(custom.file, "", f"unknown customisation kind {custom.kind!r} "
                                               f"(expected one of: {', '.join(KIND_FOLDERS)})")
        return DocumentFile(kind=custom.kind, name=custom.name, app=CUSTOM_APP,
                            file=custom.file, document=custom.document, valid=False), [issue]
    issues = check_document(custom.kind, custom.document, name=custom.name, file=custom.file)
    return DocumentFile(kind=custom.kind, name=custom.name, app=CUSTOM_APP, file=custom.file,
                        document=custom.document, valid=not issues), issues
