"""Company-wide settings (key -> text), and the company time zone that is one of them.

Settings are the few choices an administrator makes for the whole installation
that are not metadata (metadata is versioned with the app packages; these are
not). ``add_system_tables`` calls ``add_setting_tables`` so every ``MetaData``
has the table; ``migrate`` creates it on databases made before it existed.

The company time zone is what "today" and "this week" mean for everyone who has
not chosen a zone of their own, and the zone of every instant a user reads or
types. Instants are stored in UTC regardless. Without a stored choice it is the
server's zone (``TZ``, else ``/etc/localtime``), else UTC.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import Column, Connection, DateTime, MetaData, String, Table, Text, select

from engine.errors import ValidationError
from engine.messages import M

SETTING_TABLE = "tp_setting"
TIME_ZONE = "time_zone"
UTC_NAME = "UTC"


def add_setting_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the settings table on ``metadata`` and return it by name."""
    setting = Table(
        SETTING_TABLE, metadata,
        Column("key", String(63), primary_key=True),
        Column("value", Text, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    return {setting.name: setting}


def _table() -> Table:
    from engine.storage.applied import SYSTEM_TABLES  # applied builds the tables from this module

    return SYSTEM_TABLES[SETTING_TABLE]


def get_setting(conn: Connection, key: str) -> str | None:
    """The stored value of ``key``, or None when it was never set (or the table is not
    there yet: a database made before settings existed and not migrated since)."""
    if not conn.dialect.has_table(conn, SETTING_TABLE):
        return None
    return conn.execute(select(_table().c.value).where(_table().c.key == key)).scalar()


def set_setting(conn: Connection, key: str, value: str) -> None:
    """Store ``value`` under ``key`` (insert or replace) in the caller's transaction."""
    table = _table()
    now = dt.datetime.now(dt.UTC)
    done = conn.execute(table.update().where(table.c.key == key)
                        .values(value=value, updated_at=now)).rowcount
    if not done:
        conn.execute(table.insert().values(key=key, value=value, updated_at=now))


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this Python knows (``Asia/Shanghai``, ``UTC``)."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith(("/", ".")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_time_zone(name: str, *, subject: str = "settings", field: str = TIME_ZONE) -> str:
    """``name`` if it is a known zone; ``ValidationError`` otherwise."""
    if not is_time_zone(name):
        raise ValidationError(subject, {field: M("unknown time zone %(name)s", name=repr(name))})
    return name


def time_zone_names() -> list[str]:
    """Every IANA zone name, sorted (for pickers)."""
    return sorted(available_timezones() | {UTC_NAME})


def server_time_zone() -> str:
    """The zone of the machine we run on: ``TZ``, else the ``/etc/localtime`` link, else UTC."""
    env = os.environ.get("TZ", "").lstrip(":")
    if is_time_zone(env):
        return env
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return UTC_NAME
    marker = "zoneinfo/"
    if marker in target:
        name = target.split(marker, 1)[1]
        if is_time_zone(name):
            return name
    return UTC_NAME


def company_time_zone(conn: Connection) -> str:
    """The company's zone: the stored setting, else the server's."""
    stored = get_setting(conn, TIME_ZONE)
    return stored if stored and is_time_zone(stored) else server_time_zone()


def set_company_time_zone(conn: Connection, name: str) -> None:
    """Choose the company's zone (checked against the IANA database first)."""
    set_setting(conn, TIME_ZONE, check_time_zone(name))
