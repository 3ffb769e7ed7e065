"""Small hand-made districts for the grid tests, and a config with no devices.

Boxes are in cells of 0.01 degree from (117.0, 39.0), so a test can name a point on
an edge or a corner exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import bare_config

X0, Y0, CELL = 117.0, 39.0, 0.01
DISTRICT, STREET, COMMUNITY = "120110", "120110001", "120110001001"


def at(x: float, y: float) -> tuple[float, float]:
    """Cell units -> (lon, lat)."""
    return round(X0 + x * CELL, 9), round(Y0 + y * CELL, 9)


def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [at(x0, y0), at(x1, y0), at(x1, y1), at(x0, y1), at(x0, y0)]
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


def feature(code: str, geometry: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": props.pop("name", f"grid {code}"), **props},
        "geometry": geometry,
    }


def two_by_two() -> list[dict[str, Any]]:
    """A community of four grids meeting at (1, 1): 01 | 02 below, 03 | 04 above."""
    whole = box(0, 0, 2, 2)
    return [
        feature(DISTRICT, whole),
        feature(STREET, whole),
        feature(COMMUNITY, whole),
        feature(COMMUNITY + "01", box(0, 0, 1, 1), type="residential"),
        feature(COMMUNITY + "02", box(1, 0, 2, 1), type="rural"),
        feature(COMMUNITY + "03", box(0, 1, 1, 2), type="park"),
        feature(COMMUNITY + "04", box(1, 1, 2, 2), type="exclusive", unit="school"),
    ]


def write_geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    """One feature per line, as the exporter writes them: line = index + 2."""
    body = ",\n".join(json.dumps(f) for f in features)
    path.write_text('{"type": "FeatureCollection", "features": [\n' + body + "\n]}\n")
    return path


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def grid_config(tmp_path: Path, extra: str = "") -> Path:
    return bare_config(tmp_path, extra)
