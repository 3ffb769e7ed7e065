"""The panel's serving and its seam for plugins, through HTTP in-process: the page needs
no token and carries a strict policy, its files are cached for good under a build id,
`GET /api/v1/panel` lists the views a token may see, and a plugin's view is served
from its own package. The page itself is driven by tests/test_panel_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import plugins.tickets
from daemon.hookspecs import hookimpl
from daemon.panel.site import build_id
from daemon.panel.views import STATIC, PanelView, PanelViewError
from daemon.pluginhost import PluginHost
from drivers.ihse.emulator import DracoEmulator
from drivers.modbus.emulator import ModbusEmulator
from tests.plugins import noticeboard
from tests.seats_support import draco, seats_config
from tests.support import Running, relay_config, running

__all__ = ["draco"]  # a fixture
# The ticket plugin's alert strip: a built-in plugin's view, loaded by default.
TICKETS_PANEL = Path(plugins.tickets.__file__).parent / "panel"


def with_plugins(*extra: tuple[object, str]) -> PluginHost:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    for plugin, name in extra:
        plugins.register(plugin, name=name)
    return plugins


@pytest.fixture
async def board(tmp_path: Path, modbus: ModbusEmulator) -> AsyncIterator[Running]:
    """The relay hall with the notice board plugin (a strip view) loaded."""
    plugins = with_plugins((noticeboard, "noticeboard"))
    async with running(relay_config(tmp_path, modbus.port), plugins) as r:
        yield r


async def test_the_page_needs_no_token_and_names_its_files(hall: Running) -> None:
    r = await hall.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"
    # Revalidated by its ETag: unchanged, it is not sent again.
    again = await hall.client.get("/", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assets = re.findall(r'(?:src|href)="(/panel/[0-9a-f]{12}/[^"]+)"', r.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} == {"app.js", "app.css", "icon.svg"}
    for url in assets:
        asset = await hall.client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["content-security-policy"] == csp
    js = await hall.client.get(next(a for a in assets if a.endswith(".js")))
    assert "javascript" in js.headers["content-type"]  # ES modules need a JS type


SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'  # a name, never fetched


def test_the_page_names_no_other_host() -> None:
    """Nothing in the page's files points outside its origin: no CDN, no font service.
    (The browser test records what the running page asks for.)"""
    for path in [*STATIC.rglob("*"), *TICKETS_PANEL.rglob("*")]:
        if path.is_file():
            text = path.read_text(encoding="utf-8").replace(SVG_NAMESPACE, "")
            assert not re.search(r"https?://", text), f"{path} names a host"
            assert "@import" not in text and "url(" not in text, path


async def test_files_live_under_the_current_build_only(hall: Running) -> None:
    site = hall.daemon.app.state.panel
    assert site.build == build_id([STATIC, TICKETS_PANEL])
    assert (await hall.client.get(f"{site.base}/views/matrix.js")).status_code == 200
    old = await hall.client.get("/panel/000000000000/app.js")
    assert old.status_code == 404 and old.json()["error"]["code"] == "not_found"
    escape = await hall.client.get(f"{site.base}/../../daemon/config.py")
    assert escape.status_code == 404


async def test_manifest_lists_views_for_the_halls_kinds_and_the_tokens_role(
    hall: Running,
) -> None:
    assert (await hall.client.get("/api/v1/panel")).status_code == 401
    r = await hall.client.get("/api/v1/panel", headers=hall.as_role("viewer"))
    body = r.json()
    assert body["who"] == {"name": "test-viewer", "role": "viewer"}
    assert body["may"] == {"operate": False, "edit": False}
    # The relay hall has power only: no matrix, screen, curtain or fan views, and no
    # seats; the ticket plugin (loaded by default) adds its strip.
    assert [v["id"] for v in body["views"]] == ["power", "scenes", "schedules", "tickets"]
    site = hall.daemon.app.state.panel
    assert body["views"][0] == {
        "id": "power",
        "slot": "view",
        "title": {"en": "Power", "zh": "电源时序"},
        "module": f"{site.base}/views/power.js",
        "plugin": None,
    }
    for view in body["views"]:
        assert (await hall.client.get(view["module"])).status_code == 200
    r = await hall.client.get("/api/v1/panel", headers=hall.as_role("facility"))
    assert r.json()["may"] == {"operate": True, "edit": True}


async def test_devices_carry_what_a_panel_draws_them_with(hall: Running) -> None:
    r = await hall.client.get("/api/v1/devices/relay", headers=hall.as_role("viewer"))
    assert r.json()["controls"] == {
        "actions": ["off", "on", "sequence_off", "sequence_on"],
        "channels": 8,
        "sequence": [1, 2, 3],
    }


async def test_a_plugins_strip_is_listed_and_served_from_its_package(board: Running) -> None:
    r = await board.client.get("/api/v1/panel", headers=board.as_role("viewer"))
    views = {v["id"]: v for v in r.json()["views"]}
    strip = views["noticeboard"]
    assert strip["slot"] == "strip" and strip["plugin"] == "noticeboard"
    site = board.daemon.app.state.panel
    assert strip["module"] == f"{site.base}/plugins/noticeboard/strip.js"
    module = await board.client.get(strip["module"])
    assert module.status_code == 200 and "noticeboard.notice" in module.text
    assert module.headers["cache-control"].endswith("immutable")
    # The plugin's files are part of the build: changing them changes every URL.
    board_panel = Path(noticeboard.__file__).parent / "panel"
    # (pluggy asks the plugin registered last first: the notice board, then tickets)
    assert site.build == build_id([STATIC, board_panel, TICKETS_PANEL])
    assert site.build != build_id([STATIC, TICKETS_PANEL])


async def test_the_seats_view_is_listed_where_the_hall_has_seats(
    tmp_path: Path, draco: DracoEmulator
) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as r:
        answer = await r.client.get("/api/v1/panel", headers=r.as_role("viewer"))
        views = {v["id"]: v for v in answer.json()["views"]}
        assert list(views) == ["matrix", "seats", "scenes", "schedules", "tickets"]
        seats = views["seats"]
        assert seats["slot"] == "view" and seats["plugin"] is None
        assert seats["title"] == {"en": "Seats", "zh": "坐席"}
        assert (await r.client.get(seats["module"])).status_code == 200


async def test_the_ticket_strip_comes_with_the_plugin_only(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    async def views(plugins: PluginHost | None) -> dict[str, Any]:
        async with running(relay_config(tmp_path, modbus.port), plugins) as r:
            answer = await r.client.get("/api/v1/panel", headers=r.as_role("viewer"))
            found = {v["id"]: v for v in answer.json()["views"]}
            if "tickets" in found:
                module = await r.client.get(found["tickets"]["module"])
                assert module.status_code == 200
                assert "/tickets/overdue" in module.text  # seeded from the board
                css = await r.client.get(found["tickets"]["module"].replace(".js", ".css"))
                assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
            return found

    loaded = await views(None)
    assert loaded["tickets"]["slot"] == "strip" and loaded["tickets"]["plugin"] == "plugins.tickets"
    assert loaded["tickets"]["module"].endswith("/plugins/tickets/strip.js")
    blocked = PluginHost(blocked=["plugins.tickets"])
    blocked.load(entry_points=False)
    assert "tickets" not in await views(blocked)


class OperatorsOnly:
    @hookimpl
    def gridhall_panel_views(self) -> list[PanelView]:
        return [PanelView("desk", STATIC / "views", "scenes.js", {"en": "Desk"}, role="operator")]


async def test_a_view_is_shown_only_to_its_role(tmp_path: Path, modbus: ModbusEmulator) -> None:
    plugins = with_plugins((OperatorsOnly(), "desk"))
    async with running(relay_config(tmp_path, modbus.port), plugins) as r:

        async def ids(role: str) -> list[str]:
            answer = await r.client.get("/api/v1/panel", headers=r.as_role(role))
            return [v["id"] for v in answer.json()["views"]]

        assert "desk" not in await ids("viewer")
        assert "desk" in await ids("operator")


class BadViews:
    def __init__(self, *views: PanelView) -> None:
        self.views = views

    @hookimpl
    def gridhall_panel_views(self) -> list[PanelView]:
        return list(self.views)


@pytest.mark.parametrize(
    "view,message",
    [
        (PanelView("Bad Id", STATIC, "app.js", {"en": "x"}), "use [a-z0-9-]"),
        (PanelView("gone", STATIC, "missing.js", {"en": "x"}), "no module"),
        (PanelView("power", STATIC, "app.js", {"en": "x"}), "is taken"),
        (PanelView("untitled", STATIC, "app.js", {"zh": "无"}), "title needs"),
    ],
)
async def test_a_bad_plugin_view_stops_the_start(
    tmp_path: Path, modbus: ModbusEmulator, view: PanelView, message: str
) -> None:
    plugins = with_plugins((BadViews(view), "bad"))
    with pytest.raises(PanelViewError, match=re.escape(message)):
        async with running(relay_config(tmp_path, modbus.port), plugins):
            pass


def test_the_wheel_carries_the_page() -> None:
    """package-data names every file the page is made of, so a wheel serves it too."""
    import tomllib

    from tests.support import ROOT

    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package, folder in (("daemon.panel", STATIC), ("plugins.tickets", TICKETS_PANEL)):
        patterns = data["tool"]["setuptools"]["package-data"][package]
        root = folder.parent
        covered = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
        assert {p for p in folder.rglob("*") if p.is_file()} <= covered, package


async def test_the_api_docs_fetch_nothing_from_other_hosts(hall: Running) -> None:
    """/docs (Swagger UI) is served from package files: a closed network shows it."""
    page = await hall.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert not [u for u in urls if "://" in u], urls
    for url in urls:
        r = await hall.client.get(url)
        assert r.status_code == 200, url
    bundle = next(u for u in urls if u.endswith("swagger-ui-bundle.js"))
    assert len((await hall.client.get(bundle)).content) > 100_000
