"""Who is acting: every service call takes an ``Actor``.

Engine code never sees a request; the UI, CLI and API build an Actor and pass
it down. The permissions layer fills ``roles`` and decides what the actor may
see; until then (and for the CLI and jobs) ``Actor.system()`` acts unrestricted.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.metadata.model import DEFAULT_LOCALE


@dataclass(frozen=True)
class Actor:
    """``impersonator_id``/``impersonator_login``: set when an admin views as this user
    (engine/permissions/view_as.py); such an actor may only read, and records say who
    really looked."""

    user_id: int | None
    login: str = ""
    locale: str = DEFAULT_LOCALE
    roles: tuple[str, ...] = ()
    is_system: bool = False
    impersonator_id: int | None = None
    impersonator_login: str = ""
    #: The rule or job behind a system write (``"rule:<pool>.<rule>"``), stored on
    #: its activity entries; None for a person's own writes.
    via: str | None = None
    #: IANA zone the actor lives in: what "today" means for their date defaults.
    time_zone: str = "UTC"

    @property
    def is_impersonated(self) -> bool:
        return self.impersonator_id is not None

    @classmethod
    def system(cls, login: str = "system", *, via: str | None = None) -> Actor:
        """The engine itself (CLI, migrations, scheduled rules): no user row behind it.

        ``via`` names the rule or job acting, so the feed says why a record moved.
        """
        return cls(user_id=None, login=login, is_system=True, via=via)
