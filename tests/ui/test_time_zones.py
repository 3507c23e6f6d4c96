"""Time zones: the company's zone and a user's own, instants shown and typed in the
viewer's zone (stored UTC), across a DST change, and the settings screens."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import inspect, select, text
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.permissions.identity import get_user, set_time_zone
from engine.storage.applied import applied_registry
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import apply_migration
from engine.storage.settings import company_time_zone, set_company_time_zone
from tests.ui.conftest import DemoDB, csrf, make_demo

Client = Callable[..., TestClient]


def _zone_of(db: DemoDB, login: str, zone: str | None) -> None:
    with write_transaction(db.live.engine) as conn:
        set_time_zone(conn, db.user_id(login), zone)


def _visit(client: TestClient, db: DemoDB, when: str) -> int:
    kind = db.live.current().registry.entity("follow_up").field("kind").options[0].value
    made = client.post("/e/follow_up/new", data={
        "csrf_token": csrf(client), "kind": kind, "content": "Visit", "happened_at": when},
        follow_redirects=False)
    assert made.status_code == 303, made.text[:1500]
    return int(made.headers["location"].rsplit("/", 1)[1])


def _stored(db: DemoDB, record_id: int) -> dt.datetime:
    value = db.live.current().records.get(Actor.system(), "follow_up", record_id)["happened_at"]
    assert isinstance(value, dt.datetime)
    return value.astimezone(dt.UTC)


def test_demo_company_is_in_shanghai(demo_db: DemoDB) -> None:
    with demo_db.live.engine.connect() as conn:
        assert company_time_zone(conn) == "Asia/Shanghai"


def test_typed_time_is_the_viewers_wall_clock_and_shown_back(client_for: Client,
                                                            demo_db: DemoDB) -> None:
    _zone_of(demo_db, "rep_east1", None)  # follows the company: Shanghai, UTC+8
    rep = client_for("rep_east1", lang="zh-CN")
    form = rep.get("/e/follow_up/new").text
    assert "Asia/Shanghai" in form and ">UTC<" not in form
    record_id = _visit(rep, demo_db, "2026-11-30T09:00")
    assert _stored(demo_db, record_id) == dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
    detail = rep.get(f"/e/follow_up/{record_id}").text
    assert "2026/11/30 09:00" in detail and "GMT+08:00" in detail
    edit = rep.get(f"/e/follow_up/{record_id}/edit").text
    assert 'value="2026-11-30T09:00"' in edit


def test_new_york_across_the_dst_change(client_for: Client, demo_db: DemoDB) -> None:
    _zone_of(demo_db, "rep_east2", "America/New_York")
    rep = client_for("rep_east2")
    # EDT (UTC-4) the day before the change, EST (UTC-5) the day after (2026-11-01).
    before = _visit(rep, demo_db, "2026-10-31T09:00")
    after = _visit(rep, demo_db, "2026-11-02T09:00")
    assert _stored(demo_db, before) == dt.datetime(2026, 10, 31, 13, 0, tzinfo=dt.UTC)
    assert _stored(demo_db, after) == dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)
    shown = rep.get(f"/e/follow_up/{after}").text
    assert "11/2/26, 9:00" in shown and "America/New_York" in shown
    assert 'value="2026-10-31T09:00"' in rep.get(f"/e/follow_up/{before}/edit").text
    # Someone in Shanghai sees the same instants on their own clock.
    _zone_of(demo_db, "manager", None)
    assert "2026/11/2 22:00" in client_for("manager", lang="zh-CN").get(
        f"/e/follow_up/{after}").text


def test_editing_something_else_keeps_the_time(client_for: Client, demo_db: DemoDB) -> None:
    _zone_of(demo_db, "rep_east1", "Asia/Shanghai")
    rep = client_for("rep_east1")
    record_id = _visit(rep, demo_db, "2026-11-30T23:30")
    edit = rep.get(f"/e/follow_up/{record_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', edit)
    data = {"csrf_token": csrf(rep), "content": "Changed", "happened_at": "2026-11-30T23:30"}
    if version:
        data["version"] = version.group(1)
    kind = re.search(r'name="kind"[^>]*>.*?<option value="([^"]+)" selected',
                     edit, re.DOTALL)
    if kind:
        data["kind"] = kind.group(1)
    saved = rep.post(f"/e/follow_up/{record_id}/edit", data=data, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:1500]
    assert _stored(demo_db, record_id) == dt.datetime(2026, 11, 30, 15, 30, tzinfo=dt.UTC)


def test_today_default_is_the_writers_day(demo_db: DemoDB) -> None:
    from engine.records.service import actor_zone

    assert str(actor_zone(Actor(user_id=None, time_zone="Asia/Shanghai"))) == "Asia/Shanghai"
    assert actor_zone(Actor(user_id=None, time_zone="Mars/Olympus")) is dt.UTC


def test_profile_sets_and_clears_the_users_zone(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_west1")
    page = rep.get("/profile")
    assert page.status_code == 200 and "America/New_York" in page.text
    bad = rep.post("/profile", data={"csrf_token": csrf(rep), "time_zone": "Mars/Olympus"})
    assert bad.status_code == 422 and "Choose a time zone" in bad.text
    no_csrf = rep.post("/profile", data={"time_zone": "Europe/Berlin"})
    assert no_csrf.status_code == 403
    ok = rep.post("/profile", data={"csrf_token": csrf(rep), "time_zone": "Europe/Berlin"},
                  follow_redirects=False)
    assert ok.status_code == 303
    with demo_db.live.engine.connect() as conn:
        assert get_user(conn, demo_db.user_id("rep_west1")).time_zone == "Europe/Berlin"
    rep.post("/profile", data={"csrf_token": csrf(rep), "time_zone": ""})
    with demo_db.live.engine.connect() as conn:
        assert get_user(conn, demo_db.user_id("rep_west1")).time_zone is None
    assert client_for(None).get("/profile", follow_redirects=False).status_code in (302, 303)


def test_company_zone_is_admin_only(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1")
    assert rep.get("/admin/settings").status_code == 403
    assert rep.post("/admin/settings", data={"csrf_token": csrf(rep),
                                             "time_zone": "UTC"}).status_code == 403
    admin = client_for("admin")
    assert admin.post("/admin/settings", data={"csrf_token": csrf(admin),
                                               "time_zone": "Nowhere"}).status_code == 422
    ok = admin.post("/admin/settings", data={"csrf_token": csrf(admin),
                                             "time_zone": "Asia/Tokyo"}, follow_redirects=False)
    assert ok.status_code == 303
    with demo_db.live.engine.connect() as conn:
        assert company_time_zone(conn) == "Asia/Tokyo"
    with write_transaction(demo_db.live.engine) as conn:
        set_company_time_zone(conn, "Asia/Shanghai")


def test_system_columns_are_added_to_an_older_database(tmp_path: Path) -> None:
    """A database made before ``tp_user.time_zone`` existed gets it from ``migrate``."""
    db = make_demo(tmp_path, rows=1)
    engine = make_engine(db.url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE tp_user DROP COLUMN time_zone"))
        conn.execute(text("DROP TABLE tp_setting"))
    with engine.connect() as conn:
        registry = applied_registry(conn)
        assert company_time_zone(conn)  # no table yet: the server's zone, no error
    assert registry is not None
    plan = apply_migration(engine, target=registry, actor="test")
    text_plan = plan.describe()
    assert "add columns time_zone to system table tp_user" in text_plan
    assert "tp_setting" in text_plan
    with engine.connect() as conn:
        assert "time_zone" in {c["name"] for c in inspect(conn).get_columns("tp_user")}
        assert conn.execute(select(1)).scalar() == 1
    assert apply_migration(engine, target=registry, actor="test").is_empty
    db.live.dispose()
    engine.dispose()


def test_datetime_filters_and_periods_are_in_the_viewers_zone(client_for: Client,
                                                             demo_db: DemoDB) -> None:
    _zone_of(demo_db, "rep_east1", "Asia/Shanghai")
    rep = client_for("rep_east1", lang="zh-CN")
    early = _visit(rep, demo_db, "2026-11-30T07:00")   # 2026-11-29 23:00 UTC
    late = _visit(rep, demo_db, "2026-11-30T23:30")    # 2026-11-30 15:30 UTC
    day = ("/e/follow_up?n=200&f.happened_at.gte=2026-11-30T00:00"
           "&f.happened_at.lte=2026-11-30T23:59:59")
    page = rep.get(day).text
    assert f'href="/e/follow_up/{early}"' in page and f'href="/e/follow_up/{late}"' in page
    # the same day in UTC would have dropped the early visit and kept only the late one
    _zone_of(demo_db, "rep_east1", "UTC")
    utc_page = client_for("rep_east1").get(day).text
    assert f'href="/e/follow_up/{early}"' not in utc_page
    assert f'href="/e/follow_up/{late}"' in utc_page
    _zone_of(demo_db, "rep_east1", None)


def test_period_links_use_the_viewers_calendar(client_for: Client) -> None:
    from ui.zones import period_bounds, viewing_in, zone_named

    rep = client_for("rep_east1", lang="zh-CN")
    page = rep.get("/e/follow_up/filters").text  # the filter panel, loaded when opened
    with viewing_in(zone_named("Asia/Shanghai")):
        first, last = period_bounds("week")
    week = (f"f.happened_at.gte={first.isoformat()}T00%3A00&amp;"
            f"f.happened_at.lte={last.isoformat()}T23%3A59%3A59")
    assert week in page and "本周" in page and "今天" in page
