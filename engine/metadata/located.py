"""A document assembled from several files that remembers where each part came from.

An entity may be declared in one app and extended by overlays of others (and by
the admin's customisations). Cross-checks run on the merged document, but an
issue must name the file and pointer a consultant has to edit: a field added by
an overlay is reported at ``overlays/x.json:/add_fields/0/target``, not at a
position in a merged document that no file contains. ``origins`` maps a path in
the merged body to the (file, pointer) that supplied it; lookups take the
longest matching prefix, so nested paths resolve without recording every leaf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import MetadataIssue
from engine.metadata.schema_check import pointer

Path = tuple[Any, ...]


@dataclass
class LocatedDoc:
    """One merged document (entity, pipeline, pool or role) and the origin of its parts."""

    kind: str
    name: str
    app: str
    file: str
    body: dict[str, Any]
    origins: dict[Path, tuple[str, str]] = field(default_factory=dict)
    #: path -> app that last changed it (to detect two unrelated apps changing one thing)
    changed_by: dict[Path, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.origins.setdefault((), (self.file, ""))

    def locate(self, *path: Any) -> tuple[str, str]:
        """(file, JSON pointer) of the declaration behind ``path`` in the merged body."""
        for cut in range(len(path), -1, -1):
            origin = self.origins.get(tuple(path[:cut]))
            if origin is not None:
                file, base = origin
                return file, base + pointer(path[cut:])
        raise AssertionError("the root origin is always recorded")

    def issue(self, path: Path, message: str) -> MetadataIssue:
        """An issue about the part of the document at ``path``."""
        file, ptr = self.locate(*path)
        return MetadataIssue(file, ptr, message)

    def app_of(self, *path: Any) -> str:
        """The app that supplied the part at ``path`` (an overlay's app for added parts)."""
        for cut in range(len(path), -1, -1):
            app = self.changed_by.get(tuple(path[:cut]))
            if app is not None:
                return app
        return self.app
