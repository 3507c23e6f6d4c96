"""The one error hierarchy of the engine.

Every error says what went wrong and where. The UI maps each class to an HTTP
status in one place; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Who holds a duplicate key when the writer may not see it (DuplicateError, bulk errors).
HIDDEN_HOLDER = "held by a record you cannot see"


class TidepoolError(Exception):
    """Base class of every error the engine raises on purpose."""


@dataclass(frozen=True)
class MetadataIssue:
    """One mistake in an app package: the file, the JSON pointer inside it, and why."""

    file: str
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.pointer or '/'}: {self.message}"


class MetadataError(TidepoolError):
    """App packages (or customisations) that do not form a valid registry.

    Carries *every* issue found, so a consultant fixes them all in one pass.
    """

    def __init__(self, issues: Sequence[MetadataIssue]) -> None:
        self.issues: tuple[MetadataIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class ValidationError(TidepoolError):
    """A record payload that breaks its field definitions; one message per field."""

    def __init__(self, entity: str, field_errors: Mapping[str, str]) -> None:
        self.entity = entity
        self.field_errors: dict[str, str] = dict(field_errors)
        details = "; ".join(f"{name}: {msg}" for name, msg in self.field_errors.items())
        super().__init__(f"invalid {entity}: {details}")


class NotFoundError(TidepoolError):
    """The record does not exist, or the actor may not know that it exists."""

    def __init__(self, entity: str, record_id: Any) -> None:
        self.entity = entity
        self.record_id = record_id
        super().__init__(f"{entity} {record_id} not found")


class ForbiddenError(TidepoolError):
    """The actor can see the record (or entity) but may not perform the action."""

    def __init__(self, entity: str, action: str, reason: str = "") -> None:
        self.entity = entity
        self.action = action
        self.reason = reason
        super().__init__(f"{action} on {entity} is forbidden" + (f": {reason}" if reason else ""))


class ConflictError(TidepoolError):
    """An update carried a stale version: someone else changed the record first."""

    def __init__(self, entity: str, record_id: Any, *, expected: int, actual: int | None) -> None:
        self.entity = entity
        self.record_id = record_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{entity} {record_id} was changed by someone else "
            f"(you edited version {expected}, it is now version {actual})"
        )


class DuplicateError(TidepoolError):
    """A unique key already belongs to another record, named when the writer may read it.

    ``existing_id`` is None when the holder is a record the writer cannot see: the
    error then says only that such a record holds the key (its id would tell them
    which ids exist, and that a hidden record has this value is all they need).
    """

    def __init__(
        self, entity: str, *, key: str, fields: Sequence[str], values: Mapping[str, Any],
        existing_id: Any,
    ) -> None:
        self.entity = entity
        self.key = key
        self.fields = tuple(fields)
        self.values = dict(values)
        self.existing_id = existing_id
        shown = ", ".join(f"{f}={self.values.get(f)!r}" for f in self.fields)
        held = f"id {existing_id}" if existing_id is not None else HIDDEN_HOLDER
        super().__init__(f"{entity} with {shown} already exists ({held})")


class MigrationError(TidepoolError):
    """A metadata change the database cannot take without losing data.

    ``problems`` holds one human sentence per refused step, e.g.
    "customer.revenue: 12 rows cannot convert from text to integer".
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("migration refused:\n" + "\n".join(f"  - {p}" for p in self.problems))


class QueryError(TidepoolError):
    """A list query that names an unknown or forbidden field, operator or sort.

    Raised before any SQL is built; ``field`` names the offending part ("" when
    the problem is the query as a whole, such as a bad page token).
    """

    def __init__(self, entity: str, field: str, message: str) -> None:
        self.entity = entity
        self.field = field
        self.message = message
        super().__init__(f"bad query on {entity}: " + (f"{field}: " if field else "") + message)


class AuthenticationError(TidepoolError):
    """A login, session or API token that does not identify an active user.

    ``reason`` is one of ``invalid`` (unknown login or wrong password: the two are
    not told apart), ``locked`` (too many failures; ``locked_until`` says until
    when), ``inactive`` (a deactivated account), ``expired`` or ``revoked`` (tokens).
    """

    def __init__(self, reason: str, message: str, *, locked_until: Any = None) -> None:
        self.reason = reason
        self.locked_until = locked_until
        super().__init__(message)


class StageTransitionError(TidepoolError):
    """A pipeline move the stage machine refuses: not a next stage of the current one.

    ``allowed`` lists the stages the record may move to from ``from_stage``
    (empty: a closed stage that cannot be left).
    """

    def __init__(self, entity: str, record_id: Any, *, from_stage: str | None, to_stage: str,
                 allowed: Sequence[str], message: str) -> None:
        self.entity = entity
        self.record_id = record_id
        self.from_stage = from_stage
        self.to_stage = to_stage
        self.allowed = tuple(allowed)
        self.message = message
        super().__init__(f"{entity} {record_id}: {message}")


class StatementTimeoutError(TidepoolError):
    """A database statement ran past the configured statement timeout and was cancelled.

    Nothing it would have written is kept (the transaction rolls back). A narrower
    filter or search usually helps; the bound is ``TIDEPOOL_STATEMENT_TIMEOUT``.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"the database took longer than {seconds:g} seconds and the "
                         "request was stopped; narrow the filter or search and try again")


class WorkDeferred(TidepoolError):
    """Work refused inside a block that allows only memory and a short statement.

    Raised within ``versions.stamps_from_memory()`` when a cache's stamp is due for a
    read, and by the caller's own checks: the caller runs the work again where it
    may block (the API's inline reads, ``ui/inline.py``). Never reaches a client.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"deferred: {reason}")


class PoolLimitError(TidepoolError):
    """A pool operation refused by the record's state or a pool limit.

    ``limit`` names what stopped it: ``taken`` (someone else holds the record now),
    ``not_held``, ``max_held``, ``daily_claims``, ``reclaim_cooldown_days``,
    ``new_record_hours``, ``max_locked``, ``locked``.
    """

    def __init__(self, entity: str, record_id: Any, *, limit: str, message: str) -> None:
        self.entity = entity
        self.record_id = record_id
        self.limit = limit
        self.message = message
        super().__init__(f"{entity} {record_id}: {message}")


class ConversionError(TidepoolError):
    """A conversion refused by the source record's state, not by the payload.

    ``reason``: ``converted`` (the record was converted before) or ``changed`` (a
    concurrent conversion or edit got there first; nothing was written).
    """

    def __init__(self, entity: str, record_id: Any, *, reason: str, message: str) -> None:
        self.entity = entity
        self.record_id = record_id
        self.reason = reason
        self.message = message
        super().__init__(message)


class MergedRecordError(NotFoundError):
    """The record was merged into another one: its id now resolves to ``survivor_id``.

    A subclass of ``NotFoundError`` so every path that does not know merges
    answers as for a deleted record; the API and the screens point at the survivor.
    """

    def __init__(self, entity: str, record_id: Any, *, survivor_id: int) -> None:
        super().__init__(entity, record_id)
        self.survivor_id = survivor_id


class MergeConflictError(TidepoolError):
    """A merge or its undo cannot go on as asked; ``message`` (translatable) says why."""

    def __init__(self, entity: str, merge_id: Any, message: str) -> None:
        self.entity = entity
        self.merge_id = merge_id
        self.message = message
        super().__init__(f"{entity} merge {merge_id}: {message}")
