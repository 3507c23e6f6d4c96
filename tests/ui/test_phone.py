"""Phone-first screens: tap-to-call and mail links, list rows as labelled cards with
"load more", a collapsible menu, the geo point's "use my location", addresses as
province/city/district/street, and the optional map (Leaflet pinned, CSP widened
only for a configured tile server)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from engine.actor import Actor
from tests.conftest import REPO_ROOT
from tests.ui.conftest import SECRET, DemoDB, csrf, make_record, sign_in
from ui.app import create_app, map_tile_url
from ui.screens.records.display import address_text, phone_link

Client = Callable[..., TestClient]
LEAFLET = REPO_ROOT / "ui" / "static" / "vendor" / "leaflet"


@pytest.mark.parametrize("typed,link", [
    ("138 0013 8000", "tel:13800138000"), ("+86 (21) 5555-0101", "tel:+862155550101"),
    ("021-5555 0101 ext. 12", "tel:0215555 0101,12".replace(" ", "")),
    ("021-55550101转12", "tel:02155550101,12"), ("   ", ""),
])
def test_phone_links(typed: str, link: str) -> None:
    assert phone_link(typed) == link


def test_address_reads_as_its_readers_write_it() -> None:
    parts = {"province": "广东省", "city": "深圳市", "district": "南山区", "street": "科技园路1号",
             "postcode": "518000"}
    assert address_text(parts, "zh-CN") == "广东省深圳市南山区科技园路1号 518000"
    assert address_text(parts, "en") == "科技园路1号, 南山区, 深圳市, 广东省, 518000"
    assert address_text({"text": "1 Bund"}, "zh-CN") == "1 Bund"
    assert address_text({"province": "上海市", "city": "上海市", "district": "黄浦区"},
                        "zh-CN") == "上海市黄浦区"


def test_detail_and_list_link_phones_and_lists_are_cards(client_for: Client,
                                                         demo_db: DemoDB) -> None:
    record_id = make_record(demo_db, "customer", {"name": "Call Me Co", "phone": "138 0013 8000"},
                            owner="rep_east1")
    rep = client_for("rep_east1", lang="zh-CN")
    detail = rep.get(f"/e/customer/{record_id}").text
    assert 'href="tel:13800138000"' in detail
    listing = rep.get("/e/customer?q=Call+Me+Co&cols=name&cols=phone").text
    assert 'href="tel:13800138000"' in listing
    assert re.search(r'<td class="title"><a href="/e/customer/\d+">Call Me Co</a>', listing)
    assert 'data-label="' in listing
    page = rep.get("/e/customer?n=25").text
    assert 'class="menu-toggle" aria-expanded="false" aria-controls="main-menu"' in page
    assert '<script src="/static/tidepool.js" defer></script>' in page
    assert "leaflet" not in page  # no tile server configured: no map, works offline


def test_address_parts_round_trip(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1", lang="zh-CN")
    form = rep.get("/e/customer/new").text
    for part, label in (("province", "省/自治区/直辖市"), ("city", "市"), ("district", "区/县"),
                        ("street", "详细地址")):
        assert f'name="address.{part}"' in form and label in form
    assert 'autocomplete="address-level1"' in form
    made = rep.post("/e/customer/new", data={
        "csrf_token": csrf(rep), "name": "Address Co", "address.province": "浙江省",
        "address.city": "杭州市", "address.district": "西湖区", "address.street": "文三路 90 号",
        "address.postcode": ""}, follow_redirects=False)
    assert made.status_code == 303, made.text[:1500]
    record_id = int(made.headers["location"].rsplit("/", 1)[1])
    stored = demo_db.live.current().records.get(Actor.system(), "customer", record_id)
    assert stored["address"] == {"province": "浙江省", "city": "杭州市", "district": "西湖区",
                                 "street": "文三路 90 号"}
    assert "浙江省杭州市西湖区文三路 90 号" in rep.get(f"/e/customer/{record_id}").text
    edit = rep.get(f"/e/customer/{record_id}/edit").text
    assert 'name="address.city" value="杭州市"' in edit


def test_a_one_line_address_shows_in_the_street_input(client_for: Client,
                                                      demo_db: DemoDB) -> None:
    record_id = make_record(demo_db, "customer", {"name": "Old Address Co",
                                                  "address": "上海市黄浦区中山东一路1号"},
                            owner="rep_east1")
    edit = client_for("rep_east1").get(f"/e/customer/{record_id}/edit").text
    assert 'name="address.street" value="上海市黄浦区中山东一路1号"' in edit


def test_geo_point_offers_use_my_location(client_for: Client) -> None:
    form = client_for("rep_east1", lang="zh-CN").get("/e/customer/new").text
    assert "data-geo" in form and "使用我的位置" in form
    assert 'data-part="lat"' in form and 'data-part="lng"' in form
    assert 'role="status"' in form


def test_map_only_with_a_configured_https_tile_server(demo_db: DemoDB) -> None:
    tiles = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    app = create_app(demo_db.live, secret_key=SECRET, map_tiles=tiles, api_module=None)
    with TestClient(app) as client:
        sign_in(client, "rep_east1")
        page = client.get("/e/customer/new")
        assert '<script src="/static/vendor/leaflet/leaflet.js" defer></script>' in page.text
        assert f'data-tiles="{tiles}"' in page.text
        assert "img-src 'self' data: https://tile.openstreetmap.org;" in \
            page.headers["content-security-policy"]
    for bad in ("http://tile.example.org/{z}/{x}/{y}.png", "https://tile.example.org/x.png",
                "https://evil.example.org/{z}/{x}/{y}.png'; script-src *"):
        with pytest.raises(ValueError):
            map_tile_url(bad)
    assert map_tile_url("  ") == ""


def test_leaflet_is_the_pinned_release() -> None:
    pins = dict(line.split("=", 1) for line in (LEAFLET / "VERSION").read_text().splitlines()
                if "=" in line)
    assert pins["package"] == "leaflet" and pins["version"] == "1.9.4"
    assert hashlib.sha256((LEAFLET / pins["file"]).read_bytes()).hexdigest() == pins["sha256"]
    assert hashlib.sha256((LEAFLET / pins["css"]).read_bytes()).hexdigest() == \
        pins["css_sha256"]
    assert (LEAFLET / "LICENSE").exists()
