"""Categories as data: the file's checks with their lines, `gridhall tickets import`
all or nothing, retiring what a new file drops, check-config, and the demo's file."""

from __future__ import annotations

import asyncio
import sqlite3
import textwrap
from pathlib import Path

import pytest

from daemon import cli
from daemon.clock import ManualClock
from tests.grid_support import grid_config
from tests.support import ROOT
from tests.ticket_support import CATALOG, local, report, tickets_at, tickets_config

BAD = textwrap.dedent(
    """\
    [[department]]
    id = "police"
    name = "区公安分局"
    [[department]]
    id = "Urban Mgmt"
    name = "城管"
    [[group]]
    code = "city"
    name = "市容环境"
    competent = "urban"
    [[category]]
    code = "city.litter"
    name = "暴露垃圾"
    group = "city"
    tier = "simple"
    deadline = "2 hours"
    [[category]]
    code = "city.parking"
    name = "乱停乱放"
    group = "town"
    tier = "coordination"
    department = "police"
    [[category]]
    code = "city.vending"
    name = "占道经营"
    tier = "coordination"
    [[category]]
    code = "city.litter"
    name = "again"
    tier = "simple"
    colour = "red"
    """
)


async def gridhall(*args: str) -> int:
    return await asyncio.to_thread(cli.main, list(args))


def categories(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT code, active FROM ticket_categories").fetchall())
    finally:
        conn.close()


async def test_a_bad_file_names_every_bad_row_and_imports_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = grid_config(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD, encoding="utf-8")
    assert await gridhall("tickets", "import", str(bad), "-c", str(config)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}:5: department id: String should match pattern '^[a-z0-9_-]+$'",
        f"{bad}:10: department 'urban' is not a [[department]] of this file",
        f"{bad}:16: category deadline: bad deadline '2 hours': expected \"2h\" (hours), "
        '"90m", "8wh" (working hours), "5wd" (working days), "10-15wd"',
        f"{bad}:20: group 'town' is not a [[group]] of this file",
        f"{bad}:23: a coordination category names its department (only a simple one may be "
        "left to the grid member alone)",
        f"{bad}:28: category 'city.litter' again (first at line 11)",
        "refused: 6 problem(s); nothing was imported",
    ]
    assert categories(tmp_path / "gridhall.db") == {}


async def test_import_then_retire_what_the_next_file_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = grid_config(tmp_path)
    good = tmp_path / "categories.toml"
    good.write_text(CATALOG, encoding="utf-8")
    assert await gridhall("tickets", "import", str(good), "--dry-run", "-c", str(config)) == 0
    assert "nothing was written" in capsys.readouterr().out
    assert await gridhall("tickets", "import", str(good), "-c", str(config)) == 0
    assert capsys.readouterr().out.strip() == ("4 departments, 2 groups, 5 categories, 0 retired")
    assert categories(tmp_path / "gridhall.db") == {
        "city.litter": 1,
        "city.parking": 1,
        "city.manhole": 1,
        "city.building": 1,
        "security.fight": 1,
    }
    # A file without the fight (and without the law department nobody else names).
    smaller = CATALOG.split('[[category]]\ncode = "security.fight"')[0]
    law = '[[department]]\nid = "law"\nname = "区委政法委"\ncompetent = true\n'
    smaller = smaller.replace(law, "")
    smaller = smaller.replace('competent = "law"\n', "")
    good.write_text(smaller, encoding="utf-8")
    assert await gridhall("tickets", "import", str(good), "-c", str(config)) == 0
    assert capsys.readouterr().out.strip().endswith("1 retired")
    assert categories(tmp_path / "gridhall.db")["security.fight"] == 0
    conn = sqlite3.connect(tmp_path / "gridhall.db")
    depts = {d for (d,) in conn.execute("SELECT id FROM ticket_departments")}
    conn.close()
    # 'law' stays: the retired fight category still names it as competent.
    assert depts == {"police", "urban", "sanitation", "law"}


async def test_a_running_daemon_uses_an_import_at_once(tmp_path: Path) -> None:
    """Categories are read in the write of each report: no restart, no reload."""
    config = grid_config(tmp_path)
    async with tickets_at(config, ManualClock(local("2026-01-05T09:00"))) as hall:
        r = await report(hall, lon=None, lat=None)
        assert r.status_code == 422
        good = tmp_path / "categories.toml"
        good.write_text(CATALOG, encoding="utf-8")
        assert await gridhall("tickets", "import", str(good), "-c", str(config)) == 0
        r = await report(hall, lon=None, lat=None)
        assert r.status_code == 201, r.text


async def test_check_config_reads_the_categories_file_and_the_scenes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tickets_config(
        tmp_path,
        extra="""
        [[tickets.on_alert]]
        kind = "overdue"
        scene = "wall-map"
        """,
        catalog=BAD,
    )
    assert await gridhall("check-config", "-c", str(config)) == 1
    err = capsys.readouterr().err.splitlines()
    line = config.read_text().splitlines().index('scene = "wall-map"') + 1
    assert f"{config}:{line}: scene 'wall-map' does not exist (none defined)" in err
    assert f"{tmp_path / 'categories.toml'}:20: group 'town' is not a [[group]] of this file" in err
    assert len(err) == 7


async def test_the_demo_file_is_good(capsys: pytest.CaptureFixture[str]) -> None:
    demo = ROOT / "etc" / "gridhall.toml"
    path = ROOT / "etc" / "tickets" / "categories.toml"
    assert await gridhall("tickets", "import", str(path), "--dry-run", "-c", str(demo)) == 0
    out = capsys.readouterr().out
    counts = dict(reversed(part.split(" ")) for part in out.splitlines()[-1].split(", "))
    assert counts["groups"] == "11"  # the 11 major duty categories
    assert int(counts["categories"]) >= 30
    assert counts["whistles"] == "12"  # seed 001: five community, five street, two district
