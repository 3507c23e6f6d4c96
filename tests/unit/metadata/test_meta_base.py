"""The fixture app and the shipped CRM app load cleanly; the registry is faithful."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from meta_packages import base_files

from engine.metadata.loader import check_packages, load_packages
from engine.metadata.model import Entity, Registry, Source
from engine.metadata.parse import registry_from_document

REPO = Path(__file__).resolve().parents[3]


def _unsourced(entity: Entity) -> Entity:
    return dataclasses.replace(
        entity, app="", source=Source(),
        fields=tuple(dataclasses.replace(f, source=Source()) for f in entity.fields),
        unique_keys=tuple(dataclasses.replace(k, source=Source()) for k in entity.unique_keys),
        indexes=tuple(dataclasses.replace(i, source=Source()) for i in entity.indexes),
        dedup_rules=tuple(dataclasses.replace(r, source=Source()) for r in entity.dedup_rules),
    )


def assert_round_trip(registry: Registry) -> None:
    again = registry_from_document(registry.document)
    assert set(again.entities) == set(registry.entities)
    for name, entity in registry.entities.items():
        assert _unsourced(again.entities[name]) == _unsourced(entity)
    assert {n: dataclasses.replace(p, app="", source=Source(), stages=tuple(
        dataclasses.replace(s, source=Source()) for s in p.stages))
        for n, p in again.pipelines.items()} == {
        n: dataclasses.replace(p, app="", source=Source(), stages=tuple(
            dataclasses.replace(s, source=Source()) for s in p.stages))
        for n, p in registry.pipelines.items()}
    assert set(again.pools) == set(registry.pools)
    assert set(again.roles) == set(registry.roles)
    assert again.fingerprint == registry.fingerprint


def test_base_app_loads(make_package) -> None:
    path = make_package("base", base_files())
    registry = load_packages([path])
    account = registry.entity("account")
    assert account.app == "base"
    assert account.field("phone").source == Source(str(path / "entities/account.json"),
                                                   "/fields/1")
    assert registry.pipelines["account_flow"].stage("talk").source.pointer == "/stages/1"
    assert registry.roles["rep"].grants[1].source.pointer == "/grants/1"
    assert [a.name for a in registry.apps] == ["base"]
    assert_round_trip(registry)


def test_crm_app_loads_clean() -> None:
    crm = REPO / "apps" / "crm"
    assert check_packages([crm]) == []
    registry = load_packages([crm])
    assert set(registry.entities) == {"lead", "customer", "contact", "opportunity", "follow_up"}
    assert registry.pipeline_for("opportunity") is not None
    assert set(registry.pools) == {"lead_pool", "customer_pool"}
    assert set(registry.roles) == {"rep", "supervisor", "manager", "admin"}
    for entity in registry:
        assert entity.label.get("zh-CN") and entity.label.get("en")
        for field in entity.fields:
            assert field.label.get("zh-CN") and field.label.get("en"), field.name
    lead = registry.entity("lead")
    assert {k.fields for k in lead.unique_keys} == {("phone",), ("licence_no", "phone")}
    assert registry.entity("opportunity").field("code").format == "OPP-{YYYY}{MM}-{seq:5}"
    assert_round_trip(registry)


def test_document_has_no_editor_keys_and_is_schema_shaped() -> None:
    registry = load_packages([REPO / "apps" / "crm"])
    assert "$schema" not in registry.document["entities"]["lead"]
    assert "$schema" not in registry.document["apps"][0]
    assert registry.document["apps"][0]["name"] == "crm"
