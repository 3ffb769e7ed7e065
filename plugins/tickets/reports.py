"""Reports (日报, 周报, 专报): a period's measures, its ranking and its hot spots, as
JSON, CSV or a printable HTML page.

The CSV starts with a UTF-8 byte order mark: Excel, the tool these reports are opened
in, reads a CSV without one in the machine's ANSI code page (GBK on a Chinese
Windows) and shows the Chinese as mojibake; with the mark it reads UTF-8. The HTML
page is one self-contained file (styles inline, nothing fetched) laid out for A4.
Labels are Chinese with the English codes beside them, so the page reads in the hall
and the columns stay machine-readable.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from typing import Any
from zoneinfo import ZoneInfo

from plugins.tickets.measures import rates
from plugins.tickets.ranking import CLASSES

KINDS = {"day": "日报", "week": "周报", "month": "月报", "range": "专报"}
DIMENSIONS = {"district": "全区", "department": "部门", "street": "街道", "member": "网格员"}
COUNTS = {
    "registered": "登记",
    "due": "应结",
    "responded": "响应",
    "disposed": "处置",
    "closed": "结案",
    "on_time": "按时结案",
    "evaluated": "参评",
    "satisfied": "满意",
    "basic": "基本满意",
    "unsatisfied": "不满意",
    "reworks": "返工",
    "reopens": "重开",
}
RATES = {
    "response": "响应率",
    "disposal": "处置率",
    "closure": "结案率",
    "on_time": "按时结案率",
    "satisfaction": "满意率",
}
WHISTLE_COUNTS = {"called": "吹哨", "reported": "报到", "on_time": "按时报到"}
WHISTLE_RATES = {"reported": "报到率", "on_time": "按时报到率"}
BOM = "\ufeff"


@functools.cache
def _template() -> Any:
    # Loaded on the first HTML report, not at the daemon's start.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("plugins.tickets", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("report.html")


def compose(
    measures: dict[str, Any],
    ranking: dict[str, list[dict[str, Any]]],
    hotspots: dict[str, Any],
    tz: ZoneInfo,
) -> dict[str, Any]:
    """The report as JSON: measures per unit with each unit's class beside them."""
    period = measures["period"]
    classes = {(dim, e["key"]): e for dim, entries in ranking.items() for e in entries}
    units: dict[str, list[dict[str, Any]]] = {}
    for dim in ("department", "street", "member"):
        units[dim] = [{**u, **_place(classes.get((dim, u["key"])))} for u in measures.get(dim, [])]
    whistles = measures.get("whistles") or {"district": None, "department": []}
    _whistles_beside(units["department"], whistles["department"])
    for spot in hotspots["spots"]:
        spot["first_local"] = _local(spot["first"], tz)
        spot["last_local"] = _local(spot["last"], tz)
    return {
        "title": f"接诉即办{KINDS[period['kind']]} {period['label']}",
        "kind": period["kind"],
        "period": period,
        "generated_at": dt.datetime.now(tz).isoformat(timespec="seconds"),
        "source": measures["source"],
        "district": {**measures["district"], "whistles": whistles["district"]},
        **units,
        "whistles": whistles,
        "hotspots": hotspots,
    }


def _whistles_beside(departments: list[dict[str, Any]], called: list[dict[str, Any]]) -> None:
    """Each department's whistle record (一哨一考核) beside its tickets' measures; a
    department whistles called but no ticket was due for gets a row of its own."""
    by_key = {w["key"]: w for w in called}
    for unit in departments:
        unit["whistles"] = by_key.pop(unit["key"], None)
    for key, w in by_key.items():
        zero = dict.fromkeys(COUNTS, 0)
        departments.append(
            {
                "key": key,
                "name": w["name"],
                "counts": zero,
                "rates": rates(zero, []),
                **_place(None),
                "whistles": w,
            }  # fmt: skip
        )


def _place(entry: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("rank", "class", "label", "score", "previous_score")
    return {k: (entry or {}).get(k) for k in keys}


def _local(epoch: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M")


def _rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [("district", report["district"])]
    for dim in ("department", "street", "member"):
        rows += [(dim, u) for u in report[dim]]
    return rows


def to_csv(report: dict[str, Any]) -> bytes:
    """One row per unit (the district first), counts beside their rates."""
    header = [
        "维度 dimension",
        "编码 key",
        "名称 name",
        "排名 rank",
        "类别 class",
        "类别名 class_label",
        "得分 score",
    ]
    header += [f"{label} {code}" for code, label in COUNTS.items()]
    header += [f"{label}% {code}_rate" for code, label in RATES.items()]
    header += [f"{label} whistles_{code}" for code, label in WHISTLE_COUNTS.items()]
    header += [f"{label}% whistles_{code}_rate" for code, label in WHISTLE_RATES.items()]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # what Excel writes and expects
    writer.writerow(header)
    for dim, unit in _rows(report):
        writer.writerow(
            [
                dim,
                unit["key"] or "",
                unit["name"] or "",
                _blank(unit.get("rank")),
                _blank(unit.get("class")),
                _blank(unit.get("label")),
                _blank(unit.get("score")),
                *(unit["counts"][code] for code in COUNTS),
                *(_blank(unit["rates"][code]["percent"]) for code in RATES),
                *_whistle_cells(unit.get("whistles")),
            ]
        )
    return (BOM + out.getvalue()).encode("utf-8")


def _whistle_cells(whistles: dict[str, Any] | None) -> list[Any]:
    if whistles is None:
        return [""] * (len(WHISTLE_COUNTS) + len(WHISTLE_RATES))
    return [whistles["counts"][c] for c in WHISTLE_COUNTS] + [
        _blank(whistles["rates"][c]["percent"]) for c in WHISTLE_RATES
    ]


def _blank(value: Any) -> Any:
    return "" if value is None else value


def to_html(report: dict[str, Any]) -> str:
    rendered: str = _template().render(
        r=report,
        rows=_rows(report),
        dimensions=DIMENSIONS,
        counts=COUNTS,
        rates=RATES,
        classes=CLASSES,
        whistle_counts=WHISTLE_COUNTS,
        whistle_rates=WHISTLE_RATES,
    )
    return rendered
