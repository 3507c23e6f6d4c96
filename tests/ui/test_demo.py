"""The read-only preview the demo serves: home, list pages, detail with feed."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.demo import prepare_demo, reference_order
from engine.metadata.loader import load_packages
from engine.runtime import NotInitialisedError, open_runtime
from tests.conftest import REPO_ROOT
from ui.app import create_app

CRM = REPO_ROOT / "apps" / "crm"


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=30)
    return url


@pytest.fixture(scope="module")
def client(demo_url: str) -> Iterator[TestClient]:
    runtime = open_runtime(demo_url)
    app = create_app(runtime, resolve_actor=lambda request: Actor.system("test"))
    with TestClient(app) as c:
        yield c
    runtime.engine.dispose()


def test_reference_order_puts_targets_first() -> None:
    registry = load_packages([CRM])
    order = reference_order(registry)
    assert sorted(order) == sorted(registry.entities)
    for name, entity in registry.entities.items():
        for f in entity.fields:
            if f.target and f.target != name:
                assert order.index(f.target) < order.index(name), (name, f.name)


def test_demo_is_idempotent_and_reset_starts_over(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    out = io.StringIO()
    prepare_demo(url, apps=[CRM], out=out, rows=5)
    assert "initialised" in out.getvalue()
    again = io.StringIO()
    prepare_demo(url, apps=[CRM], out=again, rows=5)
    assert "sample" not in again.getvalue()  # rows are kept, not doubled
    runtime = open_runtime(url)
    assert runtime.records.count(Actor.system(), "customer") == 5
    runtime.engine.dispose()
    reset = io.StringIO()
    prepare_demo(url, apps=[CRM], out=reset, rows=3, reset=True)
    runtime = open_runtime(url)
    assert runtime.records.count(Actor.system(), "customer") == 3
    runtime.engine.dispose()


def test_reset_refuses_a_server_database() -> None:
    from engine.errors import TidepoolError

    with pytest.raises(TidepoolError, match="only removes a SQLite"):
        prepare_demo("postgresql+psycopg://x@127.0.0.1:1/none", apps=[CRM], reset=True,
                     out=io.StringIO())


def test_open_runtime_on_an_empty_database_says_to_init(tmp_path: Path) -> None:
    with pytest.raises(NotInitialisedError, match="tidepool init"):
        open_runtime(f"sqlite:///{tmp_path / 'empty.db'}")


def test_home_lists_every_entity_in_the_chosen_language(client: TestClient) -> None:
    en = client.get("/?lang=en")
    assert en.status_code == 200
    zh = client.get("/?lang=zh-CN")
    registry = load_packages([CRM])
    for entity in registry.entities.values():
        assert f'href="/e/{entity.name}?lang=en"' in en.text
        assert entity.plural_label.get("zh-CN") in zh.text


def test_list_pages_through_every_row_once(client: TestClient) -> None:
    seen: list[str] = []
    url = "/e/customer?lang=en"
    while url:
        page = client.get(url)
        assert page.status_code == 200
        seen += re.findall(r'href="/e/customer/(\d+)\?', page.text)
        found = re.search(r'rel="next" href="([^"]+)"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert len(seen) == 30 and len(set(seen)) == 30


def test_search_narrows_the_list(client: TestClient) -> None:
    first = client.get("/e/customer/1?lang=en")
    title = re.search(r"<h1>([^<]+)</h1>", first.text).group(1)  # type: ignore[union-attr]
    found = client.get("/e/customer", params={"q": title, "lang": "en"})
    ids = set(re.findall(r'href="/e/customer/(\d+)\?', found.text))
    assert "1" in ids and len(ids) < 30


def test_detail_shows_fields_and_the_creation_in_the_feed(client: TestClient) -> None:
    page = client.get("/e/customer/1?lang=en")
    assert page.status_code == 200
    assert "<dl" in page.text
    assert "create" in page.text  # the activity entry written with the row


@pytest.mark.parametrize("path", ["/e/nothing", "/e/customer/999999", "/e/customer/abc",
                                  "/e/nothing/1"])
def test_unknown_entity_or_record_is_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_values_are_escaped(demo_url: str, client: TestClient) -> None:
    runtime = open_runtime(demo_url)
    registry = runtime.registry
    entity = registry.entity("customer")
    record = runtime.records.create(Actor.system(), "customer", {
        **{f.name: v for f, v in []},
    } | _minimal(entity, "<script>alert(1)</script>"))
    page = client.get(f"/e/customer/{record.id}?lang=en")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    runtime.engine.dispose()


def _minimal(entity, title: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from engine.seeding import generate_rows

    row = next(generate_rows(entity, count=1, seed=99, start=10_000))
    row[entity.title_field] = title
    return row


def test_live_runtime_follows_a_migration_from_another_process(tmp_path: Path) -> None:
    import json
    import shutil

    from engine.runtime import LiveRuntime
    from engine.storage.database import make_engine
    from engine.storage.migrate import apply_migration

    url = f"sqlite:///{tmp_path / 'live.db'}"
    prepare_demo(url, apps=[CRM], out=io.StringIO(), rows=1)
    clock = [0.0]
    live = LiveRuntime(url, check_interval=5.0, monotonic=lambda: clock[0])
    before = live.current()
    assert live.current() is before

    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    entity_file = app / "entities" / "customer.json"
    doc = json.loads(entity_file.read_text(encoding="utf-8"))
    doc["fields"].append({"name": "vip_note", "type": "text",
                          "label": {"en": "VIP note", "zh-CN": "VIP 备注"}})
    entity_file.write_text(json.dumps(doc), encoding="utf-8")
    changed = load_packages([app])
    other = make_engine(url)  # "another worker" applies the change
    apply_migration(other, target=changed, actor="admin")
    other.dispose()

    assert live.current() is before  # within the interval: the cached runtime
    clock[0] = 6.0
    after = live.current()
    assert after is not before and live.reloads == 1
    assert after.registry.entity("customer").has_field("vip_note")
    assert "vip_note" in after.schema.table("customer").c
    live.dispose()
