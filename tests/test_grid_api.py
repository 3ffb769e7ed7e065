"""The grid API and hooks on a running daemon: tree, grid, lookup, members, masked
personal fields with audited reveals, assignment history, and auth on every route."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon import auth, cli
from plugins.grid.config import PRIVACY_ROLE
from tests.grid_support import COMMUNITY, DISTRICT, at, grid_config, write_csv
from tests.support import Running, running
from tests.test_auth import LADDER, REQUIRED
from tests.test_grid_import import GOOD_ID, good_district

G1, G2, G3, G4 = (COMMUNITY + s for s in ("01", "02", "03", "04"))
MEMBERS = "person,name,id_number,phone,grid,role,helper_kind,since"


async def gridhall(*args: str) -> int:
    """The CLI runs its own event loop (asyncio.run): give it a thread."""
    return await asyncio.to_thread(cli.main, list(args))


@pytest.fixture
async def grid(tmp_path: Path) -> AsyncIterator[Running]:
    """A daemon (no devices) on the two-by-two district, members imported by the CLI."""
    config = grid_config(tmp_path)
    d = good_district(tmp_path / "in")
    rows = [
        f"M{i},网格员{i},,1380000000{i},{COMMUNITY}0{i},member,,2024-01-01" for i in range(1, 5)
    ]
    write_csv(d / "members.csv", MEMBERS, *rows)
    assert await gridhall("grid", "import", "-c", str(config), str(d)) == 0
    async with running(config) as r:
        r.tokens[PRIVACY_ROLE] = await auth.create_token(r.host.store, "registrar-1", PRIVACY_ROLE)
        yield r


async def test_the_tree(grid: Running) -> None:
    r = await grid.client.get("/api/v1/grid/tree", headers=grid.as_role("viewer"))
    assert r.status_code == 200
    [district] = r.json()
    assert district["code"] == DISTRICT and district["level"] == "district"
    community = district["children"][0]["children"][0]
    assert [g["code"] for g in community["children"]] == [G1, G2, G3, G4]
    assert community["children"][3]["type"] == "exclusive"
    assert community["children"][3]["unit"] == "school"


async def test_a_grid(grid: Running) -> None:
    r = await grid.client.get(f"/api/v1/grid/grids/{G1}", headers=grid.as_role("viewer"))
    body = r.json()
    assert body["path"] == [DISTRICT, DISTRICT + "001", COMMUNITY, G1]
    assert body["on_duty"]["person"] == "M1"
    assert body["counts"] == {"buildings": 1, "dwellings": 1, "residents": 1, "organisations": 0}
    assert body["geometry"]["type"] == "Polygon"
    r = await grid.client.get(f"/api/v1/grid/grids/{COMMUNITY}", headers=grid.as_role("viewer"))
    assert r.json()["counts"]["buildings"] == 2  # a community counts its grids' places
    r = await grid.client.get("/api/v1/grid/grids/12011000100199", headers=grid.as_role("viewer"))
    assert r.status_code == 404


@pytest.mark.parametrize(
    "point,code", [((1, 1), G1), ((1.5, 1), G2), ((1, 1.5), G3), ((2, 2), G4), ((0.5, 0.5), G1)]
)
async def test_lookup_by_point(grid: Running, point: tuple[float, float], code: str) -> None:
    lon, lat = at(*point)
    r = await grid.client.get(
        "/api/v1/grid/lookup", params={"lon": lon, "lat": lat}, headers=grid.as_role("viewer")
    )
    assert r.status_code == 200
    assert r.json()["code"] == code
    assert r.json()["on_duty"]["grid"] == code


async def test_lookup_outside(grid: Running) -> None:
    lon, lat = at(3, 3)
    r = await grid.client.get(
        "/api/v1/grid/lookup", params={"lon": lon, "lat": lat}, headers=grid.as_role("viewer")
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_hooks_other_plugins_call(grid: Running) -> None:
    host = grid.host
    found = host.plugins.grid_for_point(*at(1, 1), host)
    assert found["code"] == G1 and found["path"][0] == DISTRICT
    assert host.plugins.grid_for_point(*at(5, 5), host) is None
    assert host.plugins.member_on_duty(G3, host) == {
        "person": "M3",
        "name": "网格员3",
        "grid": G3,
        "since": "2024-01-01",
    }
    assert host.plugins.member_on_duty(COMMUNITY, host) is None


# -- personal fields -------------------------------------------------------------------


async def reveals(grid: Running) -> list[dict[str, object]]:
    r = await grid.client.get("/api/v1/audit", headers=grid.as_role("admin"))
    return [row for row in r.json() if row["what"] == "grid.reveal"]


async def test_a_viewer_sees_masked_id_numbers(grid: Running) -> None:
    r = await grid.client.get("/api/v1/grid/residents", headers=grid.as_role("viewer"))
    [resident] = r.json()
    assert resident["id_number"] == "1101**********002X"
    assert resident["phone"] == "139****5678"
    assert GOOD_ID not in r.text
    r = await grid.client.get(
        "/api/v1/grid/residents", params={"reveal": "true"}, headers=grid.as_role("viewer")
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # An operator reads no more than a viewer: the right is the registrar's.
    r = await grid.client.get(
        "/api/v1/grid/residents", params={"reveal": "true"}, headers=grid.as_role("operator")
    )
    assert r.status_code == 403
    assert await reveals(grid) == []


async def test_the_registrar_sees_them_and_the_read_is_audited(grid: Running) -> None:
    registrar = grid.as_role(PRIVACY_ROLE)
    r = await grid.client.get("/api/v1/grid/residents", headers=registrar)
    assert r.json()[0]["id_number"] == "1101**********002X"  # masked unless asked
    assert await reveals(grid) == []

    r = await grid.client.get(
        "/api/v1/grid/residents", params={"reveal": "true"}, headers=registrar
    )
    assert r.status_code == 200
    assert r.json()[0]["id_number"] == GOOD_ID and r.json()[0]["phone"] == "13912345678"
    [row] = await reveals(grid)
    assert row["who"] == "registrar-1" and row["target"] == "grid:residents"
    assert json.loads(str(row["args"]))["ids"] == ["R1"]

    r = await grid.client.get(
        "/api/v1/grid/members", params={"reveal": "true", "grid": G2}, headers=registrar
    )
    assert r.json()[0]["phone"] == "13800000002"
    latest = (await reveals(grid))[0]
    assert latest["target"] == "grid:members"
    assert json.loads(str(latest["args"]))["ids"] == ["M2"]


async def test_members_and_search_are_masked(grid: Running) -> None:
    viewer = grid.as_role("viewer")
    r = await grid.client.get("/api/v1/grid/members", params={"grid": G2}, headers=viewer)
    [member] = r.json()
    assert member["person"] == "M2" and member["phone"] == "138****0002"
    r = await grid.client.get("/api/v1/grid/search", params={"q": "张"}, headers=viewer)
    body = r.json()
    assert [p["id"] for p in body["residents"]] == ["R1"]
    assert body["residents"][0]["id_number"] == "1101**********002X"
    r = await grid.client.get("/api/v1/grid/search", params={"q": COMMUNITY}, headers=viewer)
    assert {g["code"] for g in r.json()["grids"]} == {COMMUNITY, G1, G2, G3, G4}


# -- assignments ------------------------------------------------------------------------


async def test_a_new_member_takes_over_and_the_history_keeps_the_old(grid: Running) -> None:
    op = grid.as_role("operator")
    async with grid.host.events.subscribe() as sub:
        r = await grid.client.post(
            f"/api/v1/grid/grids/{G1}/member",
            json={"person": "M7", "name": "新网格员", "since": "2025-06-01"},
            headers=op,
        )
        assert r.status_code == 200, r.text
        async for event in sub:
            if event.type == "grid.member_assigned":
                assert event.data == {"grid": G1, "person": "M7", "by": "test-operator"}
                break
    assert grid.host.plugins.member_on_duty(G1, grid.host)["person"] == "M7"
    r = await grid.client.get(f"/api/v1/grid/grids/{G1}/history", headers=grid.as_role("viewer"))
    assert [(h["person"], h["since"], h["until"]) for h in r.json()] == [
        ("M1", "2024-01-01", "2025-06-01"),
        ("M7", "2025-06-01", None),
    ]
    r = await grid.client.post(f"/api/v1/grid/grids/{G1}/member", json={"person": "M7"}, headers=op)
    assert r.status_code == 409
    r = await grid.client.post(
        f"/api/v1/grid/grids/{COMMUNITY}/member", json={"person": "M7"}, headers=op
    )
    assert r.status_code == 422  # members serve basic grids
    r = await grid.client.post(
        f"/api/v1/grid/grids/{G2}/member", json={"person": "nobody"}, headers=op
    )
    assert r.status_code == 404


async def test_reload_picks_up_a_cli_import(grid: Running, tmp_path: Path) -> None:
    roster = write_csv(
        tmp_path / "members.csv",
        MEMBERS,
        *[f"N{i},接任{i},,,{COMMUNITY}0{i},member,,2025-01-01" for i in range(1, 5)],
    )
    config = tmp_path / "gridhall.toml"
    assert await gridhall("grid", "import", "-c", str(config), str(roster)) == 0
    assert grid.host.plugins.member_on_duty(G1, grid.host)["person"] == "M1"  # from memory
    r = await grid.client.post("/api/v1/grid/reload", headers=grid.as_role("operator"))
    assert r.json() == {"grids": 7, "basic": 4}
    assert grid.host.plugins.member_on_duty(G1, grid.host)["person"] == "N1"


# -- auth ---------------------------------------------------------------------------------


async def test_every_grid_route_needs_its_role(grid: Running) -> None:
    """The grid rows of tests/test_auth.py's REQUIRED, checked here on their own, and
    every grid route is in that table."""
    mine = {k: v for k, v in REQUIRED.items() if " /api/v1/grid/" in k}
    paths = grid.daemon.app.openapi()["paths"]
    routes = {
        f"{m.upper()} {p}"
        for p, methods in paths.items()
        if p.startswith("/api/v1/grid/")
        for m in methods
    }
    assert routes == set(mine)
    for key, role in mine.items():
        method, path = key.split(" ")
        url = re.sub(r"\{[^}]+\}", G1, path)
        assert (await grid.client.request(method, url)).status_code == 401, key
        below = LADDER[LADDER.index(role) - 1]
        if below in grid.tokens:
            r = await grid.client.request(method, url, headers=grid.as_role(below))
            assert r.status_code == 403, key
        r = await grid.client.request(method, url, headers=grid.as_role(role))
        assert r.status_code not in (401, 403), key


async def test_blocking_the_grid_plugin_takes_it_all_away(tmp_path: Path) -> None:
    """The built-in grid plugin is registered like a third party's: blockable by name."""
    from daemon.pluginhost import PluginHost

    plugins = PluginHost(blocked=["plugins.grid"])
    plugins.load(entry_points=False)
    assert "grid" not in plugins.config_sections()
    assert PRIVACY_ROLE not in plugins.roles()
    async with running(grid_config(tmp_path), plugins) as r:
        resp = await r.client.get("/api/v1/grid/tree", headers=r.as_role("viewer"))
        assert resp.status_code == 404
        assert r.host.plugins.grid_for_point(117.0, 39.0, r.host) is None


@pytest.mark.timeout(120)
async def test_junliangcheng_served_from_memory(tmp_path: Path) -> None:
    """At Junliangcheng's scale: every building's point finds, through the hook, the
    grid the import tied it to; every basic grid has its member on duty; the street's
    counts are the street's."""
    import sqlite3

    from plugins.grid.generate import generate

    await asyncio.to_thread(generate, tmp_path / "jlc")
    config = grid_config(tmp_path)
    assert await gridhall("grid", "import", "-c", str(config), str(tmp_path / "jlc")) == 0
    with sqlite3.connect(tmp_path / "gridhall.db") as conn:
        buildings = conn.execute("SELECT grid, lon, lat FROM grid_buildings").fetchall()
        basic = [c for (c,) in conn.execute("SELECT code FROM grid_nodes WHERE level = 'grid'")]
    async with running(config) as r:
        host = r.host
        assert len(buildings) == 1568
        for grid_code, lon, lat in buildings:
            assert host.plugins.grid_for_point(lon, lat, host)["code"] == grid_code
        assert len(basic) == 108
        assert all(host.plugins.member_on_duty(code, host) is not None for code in basic)
        resp = await r.client.get("/api/v1/grid/grids/120110001", headers=r.as_role("viewer"))
        assert resp.json()["counts"] == {
            "buildings": 1568,
            "dwellings": 32239,
            "residents": 60083,
            "organisations": 741,
        }
