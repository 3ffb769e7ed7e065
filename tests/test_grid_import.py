"""`gridhall grid import|export` through the CLI: all or nothing, every problem named
by FILE:LINE, Junliangcheng's scale in one transaction, and a lossless round trip."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from daemon import cli
from plugins.grid.generate import generate
from plugins.grid.tables import TABLES
from tests.grid_support import (
    COMMUNITY,
    DISTRICT,
    STREET,
    box,
    feature,
    grid_config,
    two_by_two,
    write_csv,
    write_geojson,
)

BUILDINGS = "code,address,lon,lat,grid"
DWELLINGS = "code,building,address"
RESIDENTS = "id,name,id_number,phone,dwelling"
GOOD_ID = "11010519491231002X"


def gridhall(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def good_district(d: Path) -> Path:
    d.mkdir(exist_ok=True)
    write_geojson(d / "grids.geojson", two_by_two())
    write_csv(
        d / "buildings.csv", BUILDINGS, "B1,1号楼,117.005,39.005,", "B2,2号楼,117.015,39.015,"
    )
    write_csv(d / "dwellings.csv", DWELLINGS, "B1-101,B1,1号楼101", "B2-101,B2,2号楼101")
    write_csv(d / "residents.csv", RESIDENTS, f"R1,张伟,{GOOD_ID},13912345678,B1-101")
    return d


def bad_district(d: Path) -> Path:
    """An overlap (01 reaches into 02), a gap (03 stops short), a malformed feature
    and malformed CSV rows."""
    d.mkdir(exist_ok=True)
    whole = box(0, 0, 2, 2)
    write_geojson(
        d / "grids.geojson",
        [
            feature(DISTRICT, whole),  # line 2
            feature(STREET, whole),  # line 3
            feature(COMMUNITY, whole),  # line 4
            feature(COMMUNITY + "01", box(0, 0, 1.2, 1), type="residential"),  # line 5
            feature(COMMUNITY + "02", box(1, 0, 2, 1), type="residential"),  # line 6
            feature(COMMUNITY + "03", box(0, 1, 1.5, 2), type="rural"),  # line 7: gap beside
            feature(COMMUNITY + "0X", box(1.5, 1, 2, 2), type="park"),  # line 8: bad code
        ],
    )
    write_csv(
        d / "buildings.csv",
        BUILDINGS,
        "B1,1号楼,117.005,39.005,",  # line 2: good
        "B2,2号楼,east,39.015,",  # line 3: bad lon
    )
    write_csv(d / "dwellings.csv", DWELLINGS, "B1-101,B1,1号楼101")
    write_csv(
        d / "residents.csv",
        RESIDENTS,
        f"R1,张伟,{GOOD_ID},13912345678,B1-101",  # line 2: good
        "R2,李娜,110105194912310021,13912345678,B1-101",  # line 3: bad check character
        "R3,王芳,11010519491231003X,12345,B9-999",  # line 4: bad phone, unknown dwelling
    )
    return d


def test_a_good_small_district_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = grid_config(tmp_path)
    code, out, err = gridhall(
        capsys, "grid", "import", "-c", str(config), str(good_district(tmp_path / "in"))
    )
    assert code == 0, err
    assert "7 grids" in out and "1 residents" in out
    assert "residents.csv" in err and "[####" in err  # the progress bar
    with sqlite3.connect(tmp_path / "gridhall.db") as conn:
        # B1 has no grid column: its point put it in 01.
        assert conn.execute("SELECT grid FROM grid_buildings WHERE code = 'B1'").fetchone() == (
            COMMUNITY + "01",
        )
        assert conn.execute("SELECT grid FROM grid_residents").fetchone() == (COMMUNITY + "01",)


def test_a_bad_import_is_refused_whole_with_every_problem_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = grid_config(tmp_path)
    assert (
        gridhall(
            capsys, "grid", "import", "-c", str(config), str(good_district(tmp_path / "good"))
        )[0]
        == 0
    )
    before = counts(tmp_path / "gridhall.db")

    code, out, err = gridhall(
        capsys, "grid", "import", "-c", str(config), str(bad_district(tmp_path / "bad"))
    )
    assert code == 1
    lines = err.splitlines()

    def one(pattern: str) -> str:
        found = [line for line in lines if re.search(pattern, line)]
        assert len(found) == 1, (pattern, err)
        return found[0]

    one(r"^grids\.geojson:8: .*1201100010010X.* digits only")
    overlap = one(
        r"^grids\.geojson:5: overlap between 12011000100101 and 12011000100102: [\d,]+ m²"
    )
    gap = one(r"^grids\.geojson:4: gap in 120110001001: [\d,]+ m² not covered")
    one(r"^buildings\.csv:3: lon/lat 'east'")
    one(r"^residents\.csv:3: .*fails its check character")
    row4 = one(r"^residents\.csv:4: ")
    assert "dwelling 'B9-999'" in row4 and "phone" in row4
    assert "12345" not in row4  # even a bad phone is masked in the report
    assert re.search(r"refused: \d+ problem\(s\); nothing was imported", err)
    # 0.2 x 1 cell of overlap; the gap is 0.5 x 1 cell less the 0.5 x 1 of the bad-code row
    # that never made it, so the whole 0.5 x 1 strip is uncovered.
    cell = 0.01 * 0.01 * 111_320 * 0.7771459614569709 * 110_574

    def area(line: str) -> float:
        found = re.search(r"([\d,]+) m²", line)
        assert found is not None
        return float(found.group(1).replace(",", ""))

    assert area(overlap) == pytest.approx(0.2 * cell, rel=0.01)
    assert area(gap) == pytest.approx(0.5 * cell, rel=0.01)
    # Nothing of the bad files landed, and nothing of the good import was lost.
    assert counts(tmp_path / "gridhall.db") == before


def test_unreadable_json_is_reported_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "grids.geojson").write_text('{"type": "FeatureCollection",\n "features": [\n{]}')
    code, _, err = gridhall(
        capsys, "grid", "import", "-c", str(grid_config(tmp_path)), str(tmp_path / "grids.geojson")
    )
    assert code == 1 and "grids.geojson:3: not JSON" in err


def test_dropping_grids_that_people_live_in_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = grid_config(tmp_path)
    gridhall(capsys, "grid", "import", "-c", str(config), str(good_district(tmp_path / "good")))
    # The same district drawn as one grid: 02..04 go, and B2 lives in 04.
    whole = box(0, 0, 2, 2)
    one = [
        feature(DISTRICT, whole),
        feature(STREET, whole),
        feature(COMMUNITY, whole),
        feature(COMMUNITY + "01", whole, type="residential"),
    ]
    path = write_geojson(tmp_path / "grids.geojson", one)
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(config), str(path))
    assert code == 1 and "grid_buildings -> grid_nodes" in err
    assert counts(tmp_path / "gridhall.db")["grid_nodes"] == 7


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = grid_config(tmp_path)
    code, out, _ = gridhall(
        capsys,
        "grid",
        "import",
        "--dry-run",
        "-c",
        str(config),
        str(good_district(tmp_path / "in")),
    )
    assert code == 0 and "dry run" in out
    assert counts(tmp_path / "gridhall.db")["grid_nodes"] == 0


def test_a_new_roster_keeps_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = grid_config(tmp_path)
    d = good_district(tmp_path / "in")
    header = "person,name,id_number,phone,grid,role,helper_kind,since"
    rows = [f"M{i},网格员{i},,,{COMMUNITY}0{i},member,,2024-01-01" for i in range(1, 5)]
    write_csv(
        d / "members.csv", header, *rows, f"H1,志愿者,,,{COMMUNITY}01,helper,volunteer,2024-01-01"
    )
    assert gridhall(capsys, "grid", "import", "-c", str(config), str(d))[0] == 0
    rows[0] = f"M9,新网格员,,,{COMMUNITY}01,member,,2025-03-01"
    roster = write_csv(tmp_path / "members.csv", header, *rows)
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(config), str(roster))
    assert code == 0, err
    with sqlite3.connect(tmp_path / "gridhall.db") as conn:
        history = conn.execute(
            "SELECT person, role, since, until IS NULL FROM grid_assignments WHERE grid = ? "
            "ORDER BY id",
            (COMMUNITY + "01",),
        ).fetchall()
    assert history == [
        ("M1", "member", "2024-01-01", 0),  # closed, not deleted
        ("H1", "helper", "2024-01-01", 0),  # no longer in the roster
        ("M9", "member", "2025-03-01", 1),
    ]


def test_a_roster_needs_one_member_per_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = grid_config(tmp_path)
    d = good_district(tmp_path / "in")
    header = "person,name,id_number,phone,grid,role,helper_kind,since"
    write_csv(
        d / "members.csv",
        header,
        f"M1,甲,,,{COMMUNITY}01,member,,",
        f"M2,乙,,,{COMMUNITY}01,member,,",  # line 3: a second full-time member
        f"M3,丙,,,{COMMUNITY}02,member,,",
        f"M4,丁,,,{COMMUNITY}03,member,,",
    )
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(config), str(d))
    assert code == 1
    assert f"members.csv:3: grid {COMMUNITY}01 already has its member at line 2" in err
    assert f"members.csv: grid {COMMUNITY}04 has no full-time member" in err


# -- Junliangcheng's scale ------------------------------------------------------------


@pytest.fixture(scope="module")
def junliangcheng(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("junliangcheng")
    generate(out)
    yield out


@pytest.mark.timeout(120)
def test_junliangcheng_imports_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], junliangcheng: Path
) -> None:
    config = grid_config(tmp_path)
    code, out, err = gridhall(capsys, "grid", "import", "-c", str(config), str(junliangcheng))
    assert code == 0, err[-2000:]
    assert out.strip() == (
        "122 grids, 324 members, 1568 buildings, 32239 dwellings, 60083 residents, "
        "741 organisations"
    )
    db = tmp_path / "gridhall.db"
    with sqlite3.connect(db) as conn:
        levels = dict(conn.execute("SELECT level, count(*) FROM grid_nodes GROUP BY level"))
        assert levels == {"district": 1, "street": 1, "community": 12, "grid": 108}
        types = dict(
            conn.execute("SELECT type, count(*) FROM grid_nodes WHERE level = 'grid' GROUP BY type")
        )
        assert types == {"residential": 94, "rural": 8, "park": 6}
        on_duty = conn.execute(
            "SELECT count(DISTINCT grid) FROM grid_assignments "
            "WHERE role = 'member' AND until IS NULL"
        ).fetchone()[0]
        assert on_duty == 108
        # Buildings were tied by point: each lies in the grid it was given.
        geoms = {
            c: shape(json.loads(g))
            for c, g in conn.execute("SELECT code, geometry FROM grid_nodes WHERE level = 'grid'")
        }
        for grid, lon, lat in conn.execute("SELECT grid, lon, lat FROM grid_buildings"):
            assert geoms[grid].covers(Point(lon, lat))
        # Organisations tied by address share their building's grid.
        mismatched = conn.execute(
            "SELECT count(*) FROM grid_organisations o JOIN grid_buildings b "
            "ON b.address = o.address WHERE o.grid != b.grid"
        ).fetchone()[0]
        assert mismatched == 0


@pytest.mark.timeout(120)
def test_export_then_import_gives_the_same_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], junliangcheng: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert (
        gridhall(capsys, "grid", "import", "-c", str(grid_config(first)), str(junliangcheng))[0]
        == 0
    )
    assert (
        gridhall(capsys, "grid", "export", "-c", str(grid_config(first)), str(tmp_path / "out"))[0]
        == 0
    )
    assert (
        gridhall(capsys, "grid", "import", "-c", str(grid_config(second)), str(tmp_path / "out"))[0]
        == 0
    )

    def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
        with sqlite3.connect(db) as conn:
            return {
                t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for t in TABLES
                if t != "grid_assignments"
            }

    assert dump(first / "gridhall.db") == dump(second / "gridhall.db")
    with sqlite3.connect(first / "gridhall.db") as conn:  # the export read ID numbers
        [(what, args)] = conn.execute("SELECT what, args FROM audit").fetchall()
    assert what == "grid.export" and json.loads(args)["counts"]["residents"] == 60083


@pytest.mark.timeout(120)
def test_ten_thousand_grids_generate_and_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "big"
    code, printed, _ = gridhall(
        capsys,
        "grid",
        "generate",
        str(out),
        "--streets",
        "10",
        "--communities",
        "25",
        "--grids",
        "40",
        "--grids-only",
    )
    assert code == 0 and printed.strip() == "10261 grids"  # 1 + 10 + 250 + 10,000
    code, printed, err = gridhall(
        capsys, "grid", "import", "-c", str(grid_config(tmp_path)), str(out)
    )
    assert code == 0, err[-2000:]
    with sqlite3.connect(tmp_path / "gridhall.db") as conn:
        basic = conn.execute("SELECT count(*) FROM grid_nodes WHERE level = 'grid'").fetchone()[0]
        exclusive = conn.execute(
            "SELECT count(*) FROM grid_nodes WHERE type = 'exclusive'"
        ).fetchone()[0]
    assert basic == 10_000 and exclusive == 10_000 // 97


def test_the_sequence_width_is_configurable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "beijing"
    args = ["--communities", "2", "--grids", "4", "--sequence-width", "3", "--grids-only"]
    assert gridhall(capsys, "grid", "generate", str(out), *args)[0] == 0
    (tmp_path / "wide").mkdir()
    wide = grid_config(tmp_path / "wide", "[grid]\nsequence_width = 3\n")
    code, printed, err = gridhall(capsys, "grid", "import", "-c", str(wide), str(out))
    assert code == 0, err
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(grid_config(narrow)), str(out))
    assert code == 1
    assert "grids.geojson:6: grid code '120110001001001' has 15 digits" in err


def test_depth_five_takes_compounds_that_need_not_cover_their_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g1 = COMMUNITY + "01"
    compounds = [
        feature(g1 + "001", box(0, 0, 0.5, 0.5)),
        feature(g1 + "002", box(0.4, 0, 0.9, 0.5)),  # overlaps 001 by 0.1 x 0.5
    ]
    path = write_geojson(tmp_path / "grids.geojson", two_by_two() + compounds)
    deep = grid_config(tmp_path, "[grid]\ndepth = 5\n")
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(deep), str(path))
    assert code == 1
    [problem] = [line for line in err.splitlines() if line.startswith("grids.geojson:")]
    assert f"overlap between {g1}001 and {g1}002" in problem  # and no gap in 01
    compounds[1] = feature(g1 + "002", box(0.5, 0, 0.9, 0.5))
    write_geojson(path, two_by_two() + compounds)
    assert gridhall(capsys, "grid", "import", "-c", str(deep), str(path))[0] == 0
    flat = tmp_path / "flat"
    flat.mkdir()
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(grid_config(flat)), str(path))
    assert code == 1 and "has 17 digits" in err  # depth 4 has no compounds


def test_a_bad_grid_section_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = grid_config(tmp_path, "[grid]\ndepth = 7\n")
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(config), str(tmp_path))
    line = config.read_text().splitlines().index("depth = 7") + 1
    assert code == 1 and f":{line}: grid.depth" in err


def test_an_unreadable_grid_file_does_not_drag_good_rows_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With grids.geojson unreadable, the other files are checked against the grids
    the store has: the report names the broken file, not every building."""
    config = grid_config(tmp_path)
    assert (
        gridhall(capsys, "grid", "import", "-c", str(config), str(good_district(tmp_path / "in")))[
            0
        ]
        == 0
    )
    d = tmp_path / "next"
    d.mkdir()
    (d / "grids.geojson").write_text("{not json")
    write_csv(d / "buildings.csv", BUILDINGS, "B3,3号楼,117.015,39.005,")
    code, _, err = gridhall(capsys, "grid", "import", "-c", str(config), str(d))
    assert code == 1
    assert [line for line in err.splitlines() if ".csv:" in line or ".geojson:" in line] == [
        "grids.geojson:1: not JSON: Expecting property name enclosed in double quotes"
    ]
