"""`tidepool migrate` and the demo target packages plus customisations: they keep what admins
configured instead of archiving it."""

from __future__ import annotations

import io

import pytest

from engine.cli import main
from engine.configure.changes import AddField
from engine.configure.specs import FieldSpec
from engine.demo import prepare_demo
from tests.integration.configure.conftest import CRM, Setup
from tests.integration.storage._db import columns

SHELVES = FieldSpec(name="shelf_count", type="integer", label={"en": "Shelves", "zh-CN": "货架数"})


def test_migrate_keeps_the_admins_changes(crm: Setup) -> None:
    crm.service.apply(AddField("customer", SHELVES), crm.admin)
    fingerprint = crm.applied().fingerprint
    out = io.StringIO()
    assert main(["migrate", "--db", crm.url, "--app", str(CRM)], out) == 0, out.getvalue()
    assert "Nothing to migrate" in out.getvalue()
    assert crm.applied().fingerprint == fingerprint
    assert "shelf_count" in columns(crm.engine, "customer")


def test_the_demo_restarts_without_undoing_the_admins_changes(crm: Setup) -> None:
    if not crm.url.startswith("sqlite"):
        pytest.skip("the demo runs on SQLite")
    crm.service.apply(AddField("customer", SHELVES), crm.admin)
    registry = prepare_demo(crm.url, apps=[CRM], out=io.StringIO(), rows=2)
    assert registry.entity("customer").has_field("shelf_count")
    assert crm.applied().entity("customer").has_field("shelf_count")
