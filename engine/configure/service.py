"""The admin's configuration service: preview a change as a migration plan, apply it live.

Metadata is ``packages + customisations``. A change edits the merged documents
(``changes``), becomes one or more customisations (``workspace``), and the
registry they give is loaded by the same loader as any package — same schemas,
same cross-checks, issues with a file and a JSON pointer. ``preview`` plans the
migration from the applied metadata to that registry without writing;
``apply`` does, in one migration transaction: the customisation rows, the DDL,
the new metadata version (with who changed what, for the history) and the
role policies. A refusal or a crash at any point leaves none of them. Every
process running a ``LiveRuntime`` picks the new version up by itself.

Two applies at once queue on the migration lock, and each builds on the
customisations read inside its own transaction, so neither loses the other's
change. ``expected_version`` lets the caller refuse an apply when the metadata
moved on since the preview it showed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect

from engine.actor import Actor
from engine.configure.changes import Change
from engine.configure.workspace import ChangeRefused, Workspace, merged
from engine.errors import ConflictError, MetadataError, MetadataIssue
from engine.messages import M
from engine.metadata.customisation import Customisation
from engine.metadata.loader import load_packages
from engine.metadata.model import Registry
from engine.permissions.policy_store import sync_roles
from engine.storage.applied import applied_registry, applied_version
from engine.storage.customisations import (
    CUSTOMISATION_TABLE,
    load_customisations,
    save_customisation,
)
from engine.storage.migrate import migrate_in, migration_transaction
from engine.storage.plan import MigrationPlan
from engine.storage.planner import plan_migration


@dataclass(frozen=True)
class Preview:
    """What applying ``change`` would do: the new registry and the migration plan to it.

    ``version`` is the applied metadata version the plan starts from (pass it back
    to ``apply`` as ``expected_version``); ``writes`` the customisations it stores.
    """

    change: Change
    registry: Registry
    plan: MigrationPlan
    version: int | None
    writes: tuple[Customisation, ...]


@dataclass(frozen=True)
class Prepared:
    writes: tuple[Customisation, ...]
    customisations: tuple[Customisation, ...]
    target: Registry


class ConfigService:
    """Preview and apply admin changes to the metadata of the database behind ``engine``.

    ``apps`` are the app package folders the database runs (the same ones
    ``tidepool init``/``migrate`` were given).
    """

    def __init__(self, engine: Engine, *, apps: Sequence[Path | str]) -> None:
        self.engine = engine
        self.apps = tuple(Path(p) for p in apps)

    def stored(self, conn: Connection) -> list[Customisation]:
        return [Customisation(r["kind"], r["name"], r["document"])
                for r in load_customisations(conn)]

    def packages(self) -> Registry:
        """The app packages alone: what decides which parts a customisation may redefine."""
        return load_packages(self.apps)

    def configured(self) -> Registry:
        """Packages plus the stored customisations: what the next change starts from."""
        with self.engine.connect() as conn:
            stored = self.stored(conn)
        return load_packages(self.apps, customisations=stored)

    def prepare(self, conn: Connection, change: Change) -> Prepared:
        """The customisations ``change`` stores and the registry they give (no writes)."""
        stored = self.stored(conn)
        base = load_packages(self.apps)
        current = load_packages(self.apps, customisations=stored)
        workspace = Workspace(base=base, current=current, stored=stored)
        change.apply(workspace)
        writes = tuple(workspace.writes(subject=change.subject))
        customisations = tuple(merged(stored, writes))
        try:
            target = load_packages(self.apps, customisations=customisations)
        except MetadataError as exc:
            raise refusal(change, exc.issues, writes) from None
        return Prepared(writes=writes, customisations=customisations, target=target)

    def preview(self, change: Change) -> Preview:
        """The plan of ``change`` (with its blocking problems, if any); nothing is written."""
        with self.engine.connect() as conn, conn.begin():
            version = applied_version(conn)
            prepared = self.prepare(conn, change)
            plan = plan_migration(conn, applied=applied_registry(conn), target=prepared.target)
        return Preview(change=change, registry=prepared.target, plan=plan, version=version,
                       writes=prepared.writes)

    def apply(self, change: Change, actor: Actor, *,
              expected_version: int | None = None) -> MigrationPlan:
        """Store, migrate, record and resync in one transaction; returns the plan applied.

        Raises ``ChangeRefused`` (bad change), ``MigrationError`` (blocking
        problems, e.g. values that would not convert) or ``ConflictError`` (the
        metadata changed since ``expected_version``); nothing is written then.
        """
        with migration_transaction(self.engine) as conn:
            version = applied_version(conn)
            if expected_version is not None and version != expected_version:
                raise ConflictError("metadata", "configuration", expected=expected_version,
                                    actual=version)
            prepared = self.prepare(conn, change)
            for custom in prepared.writes:
                save_customisation(conn, kind=custom.kind, name=custom.name,
                                   document=custom.document, user_id=actor.user_id)
            note = {"change": type(change).__name__, "summary": change.summary(),
                    "user_id": actor.user_id, "login": actor.login,
                    "customisations": [f"{c.kind}/{c.name}" for c in prepared.writes]}
            plan = migrate_in(conn, target=prepared.target, actor=actor.login or "system",
                              note=note)
            sync_roles(conn, prepared.target)
        return plan


def migrate_configured(engine: Engine, apps: Sequence[Path | str], *, actor: str = "system",
                       purge_archived: bool = False) -> tuple[MigrationPlan, bool]:
    """``tidepool migrate``: packages + stored customisations, applied with the roles.

    The customisations are read, the DDL run, the version recorded and the
    roles resynced in ONE migration transaction under the migration lock: read
    outside it, an admin change applied meanwhile would be undone by this
    migration; synced in a second transaction, a crash between the two left
    new metadata guarded by the old grants. Returns the plan and whether the
    role policies changed. Blocking problems raise ``MigrationError``.
    """
    with migration_transaction(engine) as conn:
        has_table = inspect(conn).has_table(CUSTOMISATION_TABLE)
        stored = ConfigService(engine, apps=apps).stored(conn) if has_table else []
        target = load_packages(apps, customisations=stored)
        plan = migrate_in(conn, target=target, actor=actor, purge_archived=purge_archived)
        synced = sync_roles(conn, target)
    return plan, synced


def configured_registry(engine: Engine, apps: Sequence[Path | str]) -> Registry:
    """The app packages plus the customisations stored in the database (none on a new one).

    What ``migrate`` and the demo must target: the packages alone would undo
    every change an admin made (their fields archived, their roles reverted).
    """
    with engine.connect() as conn:
        has_table = inspect(conn).has_table(CUSTOMISATION_TABLE)
        stored = ConfigService(engine, apps=apps).stored(conn) if has_table else []
    return load_packages(apps, customisations=stored)


def refusal(change: Change, issues: Sequence[MetadataIssue],
            writes: Sequence[Customisation]) -> ChangeRefused:
    """The loader's issues as messages per form key (the change's field or stage first)."""
    files = {c.file: c for c in writes}
    errors: dict[str, str] = {}
    for issue in issues:
        custom = files.get(issue.file)
        if custom is None:
            key, message = "", str(issue)
        else:
            key, message = form_key(custom, issue.pointer, change.focus), issue.message
        errors[key] = M("%(first)s; %(then)s", first=errors[key], then=message) \
            if key in errors else message
    return ChangeRefused(change.subject, errors, issues=issues)


def form_key(custom: Customisation, pointer: str, focus: str | None) -> str:
    """The form input an issue belongs to: the property of the focused field or stage
    (``/add_fields/2/label/en`` -> ``label``), else the document's top-level key."""
    for prefix in _prefixes(custom.document, focus):
        if pointer == prefix:
            return ""
        if pointer.startswith(prefix + "/"):
            return pointer[len(prefix) + 1:].split("/", 1)[0]
    return pointer.lstrip("/").split("/", 1)[0]


def _prefixes(document: Any, focus: str | None) -> list[str]:
    if focus is None or not isinstance(document, dict):
        return []
    found = []
    for list_key, key in (("fields", "name"), ("add_fields", "name"), ("stages", "key"),
                          ("add_stages", "key"), ("sharing_rules", "name")):
        items = document.get(list_key)
        if isinstance(items, list):
            found += [f"/{list_key}/{i}" for i, item in enumerate(items)
                      if isinstance(item, dict) and item.get(key) == focus]
        elif isinstance(items, dict) and focus in items:
            found.append(f"/{list_key}/{focus}")
    return found
