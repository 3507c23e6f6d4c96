"""Possible duplicates on the create and edit forms: checked as the user leaves a field a
rule reads (htmx, ``{form action}/similar``) and again on submit, shown above the form's
buttons with a "save anyway" step.

The first submit of a form whose values a fuzzy dedup rule matches does not save:
the form comes back with the matches (linked when the user may read them, else
whom to ask - the same rule as the refusals) and a hidden fingerprint of the
checked values. Submitting again with the same values saves; changing a checked
value checks again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request

from engine.actor import Actor
from engine.metadata.model import Entity
from engine.records.coerce import InputSource
from engine.records.dedup import DedupWarning, checked_fields
from engine.runtime import Runtime
from ui.context import UIContext
from ui.i18n import N_

CONFIRM = "dedup_confirm"
GENERIC = N_("A similar record already exists.")
ASK = N_("A record you cannot see matches; ask %(who)s.")
ADMIN = N_("an administrator")
MORE = N_("(%(count)s matches)")


@dataclass(frozen=True)
class WarningView:
    """One possible duplicate, ready to render: a message, and a link or whom to ask."""

    message: str
    url: str = ""
    title: str = ""
    hidden: str = ""
    more: str = ""


def fingerprint(entity: Entity, payload: Mapping[str, object]) -> str:
    """What the warnings were computed for: the values the rules read."""
    names = sorted(checked_fields(entity))
    data = json.dumps([[n, str(payload.get(n, ""))] for n in names], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


def pending(runtime: Runtime, actor: Actor, entity: Entity, payload: Mapping[str, object],
            form: FormData, *, exclude_id: int | None = None) -> tuple[list[DedupWarning], str]:
    """Warnings the user has not confirmed yet (empty: save) and the fingerprint to send
    back with the confirm step."""
    if not entity.dedup_rules:
        return [], ""
    mark = fingerprint(entity, payload)
    if str(form.get(CONFIRM) or "") == mark:
        return [], mark
    return unconfirmed(runtime, actor, entity, payload, exclude_id=exclude_id), mark


def unconfirmed(runtime: Runtime, actor: Actor, entity: Entity, payload: Mapping[str, object],
                *, exclude_id: int | None = None) -> list[DedupWarning]:
    """The warnings for ``payload`` (form texts), ignoring any confirmation."""
    if checked_fields(entity).isdisjoint(payload):
        return []  # an edit that leaves every checked field alone
    return runtime.records.dedup_warnings(actor, entity.name, [payload],
                                          source=InputSource.STRING, exclude_id=exclude_id)


def views(ui: UIContext, request: Request, runtime: Runtime,
          found: Sequence[DedupWarning]) -> list[WarningView]:
    """The warnings in the request's language."""
    locale = ui.locale(request)
    out = []
    for w in found:
        message = w.message.get(locale) if w.message else ui.t(request, GENERIC)
        more = ui.t(request, MORE, count=w.count) if w.count > 1 else ""
        if w.existing_id is None:
            who = w.ask or ui.t(request, ADMIN)
            out.append(WarningView(message, hidden=ui.t(request, ASK, who=who), more=more))
            continue
        label = runtime.registry.entity(w.entity).label.get(locale)
        out.append(WarningView(message, url=f"/e/{w.entity}/{w.existing_id}",
                               title=f"{label} #{w.existing_id} {w.title or ''}".strip(),
                               more=more))
    return out
