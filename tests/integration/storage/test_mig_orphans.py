"""What removing a field or an entity orphans, and the orphan-finder extension point."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from sqlalchemy import Engine

from engine.storage import orphans as orphans_module
from engine.storage.migrate import apply_migration
from engine.storage.orphans import Orphan, OrphanContext, register_orphan_finder
from tests.integration.storage._docs import entity, field, options, registry


def _applied() -> dict:
    account = entity(
        "account", field("name"), field("phone"), field("channel", "select",
                                                         options=options("web", "shop")),
        field("licence"),
        features=("owned", "pooled", "pipelined"),
        unique_keys=[{"name": "licence_phone", "fields": ["licence", "phone"]}],
        indexes=[{"name": "ix_account_phone", "fields": ["phone"]}],
    )
    visit = entity("visit", field("note"), field("account_id", "reference", target="account"))
    return {
        "entities": [account, visit],
        "roles": {"clerk": {"name": "clerk", "grants": [
            {"entity": "account", "actions": ["read"], "scope": "own",
             "hidden_fields": ["phone"], "readonly_fields": ["name"]},
            {"entity": "visit", "actions": ["read"], "scope": "all"}]}},
        "pools": {"public": {"name": "public", "entity": "account",
                             "rules": [{"name": "idle", "kind": "drop", "clock": "created",
                                        "after": {"hours": 72}, "exempt": {
                                            "field": "channel", "op": "eq", "value": "shop"}}],
                             "distribution": {"mode": "by_field", "field": "channel"}}},
        "pipelines": {"sales": {"name": "sales", "entity": "account", "stages": [
            {"key": "new"}, {"key": "qualified", "required_fields": ["phone", "name"]}]}},
    }


def test_plan_lists_what_a_removed_field_and_entity_orphan(db_engine: Engine) -> None:
    applied = _applied()
    apply_migration(db_engine, target=registry(*applied["entities"], roles=applied["roles"],
                                               pools=applied["pools"],
                                               pipelines=applied["pipelines"]))
    # The target no longer names phone, channel or visit anywhere (the loader's job).
    account = entity("account", field("name"), field("licence"),
                     features=("owned", "pooled", "pipelined"))
    target = registry(account, roles={"clerk": {"name": "clerk", "grants": [
        {"entity": "account", "actions": ["read"], "scope": "own"}]}})
    plan = apply_migration(db_engine, target=target, dry_run=True)
    assert {o.describe() for o in plan.orphans} == {
        "role clerk: hidden field account.phone is removed",
        "role clerk: grant on removed entity visit",
        "pool public: rule idle names removed field account.channel",
        "pool public: distribution by removed field account.channel",
        "pipeline sales: stage qualified requires removed field account.phone",
        "unique_key account.licence_phone: named removed field(s) phone; constraint dropped",
        "index account.ix_account_phone: named removed field(s) phone; index dropped",
    }
    assert not plan.blocking
    text = plan.describe()
    assert "Orphaned by this change (7):" in text
    assert "archive field account.phone" in text and "archive entity visit" in text
    assert plan.to_json()["orphans"][0].keys() == {"what", "name", "detail"}


def test_nothing_is_orphaned_when_nothing_is_removed(db_engine: Engine) -> None:
    applied = _applied()
    reg = registry(*applied["entities"], roles=applied["roles"], pools=applied["pools"])
    apply_migration(db_engine, target=reg)
    grown = registry(*applied["entities"], entity("extra", field("x")), roles=applied["roles"],
                     pools=applied["pools"])
    assert apply_migration(db_engine, target=grown, dry_run=True).orphans == ()


def test_a_registered_finder_reports_stored_data(db_engine: Engine,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """How the UI will plug saved views in: a finder reading its own table."""
    monkeypatch.setattr(orphans_module, "_FINDERS", list(orphans_module._FINDERS))
    seen: list[OrphanContext] = []

    @register_orphan_finder
    def saved_views(context: OrphanContext) -> Iterable[Orphan]:
        seen.append(context)
        if context.is_removed("account", "phone"):
            yield Orphan("saved_view", "my calls", "filters on removed field account.phone")

    assert saved_views in orphans_module.orphan_finders()
    apply_migration(db_engine, target=registry(entity("account", field("name"), field("phone"))))
    plan = apply_migration(db_engine, target=registry(entity("account", field("name"))),
                           dry_run=True)
    assert [o.describe() for o in plan.orphans] == [
        "saved_view my calls: filters on removed field account.phone"]
    assert seen[0].removed_fields == {"account": frozenset({"phone"})}
    assert seen[0].removed_entities == frozenset()
