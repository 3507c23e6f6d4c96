"""Bulk actions over selected records: update a field, assign, delete; on pooled entities
claim, recycle and move to another pool.

Each record goes through the records service on its own, so every permission
and validation check applies per record; one refused record does not stop the
others, and the result says which ones failed and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.actor import Actor
from engine.errors import (
    ConflictError,
    DuplicateError,
    ForbiddenError,
    NotFoundError,
    PoolLimitError,
    TidepoolError,
    ValidationError,
)
from engine.metadata.model import Entity, Feature
from engine.records.coerce import InputSource
from engine.records.service import RecordService
from engine.runtime import Runtime
from engine.workflow.pools import PoolService, pools_of
from ui.context import UIContext
from ui.i18n import t, tn
from ui.screens.records.display import titles as titles_of
from ui.screens.records.listing import Choice

MAX_BULK = 500
#: Records named on the bulk delete confirmation (the rest are counted).
SHOWN = 20
#: claim, recycle, move: pooled entities
ACTIONS = ("update", "assign", "delete", "claim", "recycle", "move")


@dataclass
class BulkResult:
    done: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


def _reason(exc: TidepoolError, locale: str = "en") -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{k}: {t(locale, v)}" for k, v in exc.field_errors.items())
    if isinstance(exc, NotFoundError):
        return t(locale, "not found")
    if isinstance(exc, ForbiddenError):
        return t(locale, exc.reason) if exc.reason else t(locale, "forbidden")
    if isinstance(exc, PoolLimitError):
        return t(locale, exc.message)
    if isinstance(exc, DuplicateError):
        if exc.existing_id is None:  # held by a record the user may not see
            return t(locale, "A record you cannot see already holds these values.")
        return t(locale, "A record with these values already exists (#%(id)s).",
                 id=exc.existing_id)
    return str(exc)


@dataclass(frozen=True)
class DeleteConfirmation:
    """The step before a bulk delete: what will go, and the form that confirms it."""

    title: str
    action: str
    back_url: str
    state: str
    ids: list[int]
    shown: list[str]        # titles of the records the actor can see (first ones)
    more: int               # how many selected records are not listed


def delete_confirmation(runtime: Runtime, actor: Actor, entity: Entity, ids: Sequence[int], *,
                        locale: str, state: str, back_url: str) -> DeleteConfirmation:
    """Name the records a bulk delete would remove (only those the actor may read)."""
    wanted = list(dict.fromkeys(ids))[:MAX_BULK]
    titles = [text for _key, text in sorted(
        titles_of(runtime, actor, entity.name, wanted[:SHOWN]).items())]
    return DeleteConfirmation(
        title=tn(locale, "Delete %(n)s record?", "Delete %(n)s records?", len(wanted)),
        action=f"/e/{entity.name}/bulk", back_url=back_url, state=state, ids=wanted,
        shown=titles, more=max(0, len(wanted) - len(titles)))


def run_bulk(runtime: Runtime, actor: Actor, entity: Entity, ids: Sequence[int], *,
             action: str, field_name: str = "", value: str = "",
             owner: int | None = None, to_pool: str = "") -> BulkResult:
    """Apply ``action`` to each record; ``ValidationError`` if the action itself is malformed."""
    if action not in ACTIONS:
        raise ValidationError(entity.name, {"action": f"one of {', '.join(ACTIONS)}"})
    if action == "update" and not entity.has_field(field_name):
        raise ValidationError(entity.name, {"field": "choose a field to update"})
    if action == "recycle" and not value.strip():
        raise ValidationError(entity.name, {"value": "give the reason for recycling"})
    if action == "move" and not to_pool:
        raise ValidationError(entity.name, {"to_pool": "choose the pool to move them to"})
    result = BulkResult()
    records = runtime.records
    for record_id in ids[:MAX_BULK]:
        try:
            if action == "delete":
                records.delete(actor, entity.name, record_id)
            elif action == "claim":  # each claim counts the limits, one record at a time
                PoolService(records).claim(actor, entity.name, record_id)
            elif action == "recycle":
                PoolService(records).recycle(actor, entity.name, record_id, reason=value)
            elif action == "move":  # the reason (optional) in the value box
                PoolService(records).move(actor, entity.name, record_id, to_pool=to_pool,
                                          reason=value.strip() or None)
            else:
                current = records.get(actor, entity.name, record_id)
                if action == "assign":
                    records.assign(actor, entity.name, record_id, owner,
                                   version=current.version)
                else:
                    records.update(actor, entity.name, record_id, {field_name: value},
                                   version=current.version, source=InputSource.STRING)
        except (ValidationError, NotFoundError, ForbiddenError, ConflictError,
                DuplicateError, PoolLimitError) as exc:
            result.failed.append((record_id, _reason(exc, actor.locale)))
        else:
            result.done += 1
    return result


def move_choices(ui: UIContext, actor: Actor, entity: Entity, records: RecordService,
                 locale: str) -> list[Choice]:
    """The pools a leader may bulk-move records to: only when the entity has two or more."""
    if not entity.has(Feature.POOLED) or not ui.may(actor, entity, "assign"):
        return []
    pools = pools_of(records, entity.name)
    if len(pools) < 2:
        return []
    return [Choice(p.name, p.label.get(locale) or p.name) for p in pools]
