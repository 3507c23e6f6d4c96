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
    user_id: int | None
    login: str = ""
    locale: str = DEFAULT_LOCALE
    roles: tuple[str, ...] = ()
    is_system: bool = False

    @classmethod
    def system(cls, login: str = "system") -> Actor:
        """The engine itself (CLI, migrations, scheduled rules): no user row behind it."""
        return cls(user_id=None, login=login, is_system=True)
