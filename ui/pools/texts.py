"""What people read when a pool operation is refused, per limit (translated in templates)."""

from __future__ import annotations

from ui.i18n import N_

LIMIT_TEXT: dict[str, str] = {
    "taken": N_("Someone else took this record first."),
    "not_held": N_("Nobody holds this record; it is in a pool already."),
    "not_in_pool": N_("Only a record in a pool can move between pools."),
    "max_held": N_("The holder already has as many records as the pool allows."),
    "daily_claims": N_("You have claimed as many records today as the pool allows."),
    "reclaim_cooldown_days": N_("You held this record recently; previous owners must wait "
                                "before claiming it again."),
    "new_record_hours": N_("This record entered the pool only recently; new records are "
                           "protected for a while."),
    "max_locked": N_("The holder has as many locked records as the pool allows."),
    "locked": N_("This record is locked already."),
    "not_locked": N_("This record is not locked."),
}
