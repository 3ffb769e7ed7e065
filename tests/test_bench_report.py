"""bench/report.py: the benches' records into bench/RESULTS.md, and `make bench` going on
past a bench that fails. Real processes (tiny stand-in benches in a temp dir), about
two seconds."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


report = _module("report")
common = _module("common")


def _figure(**kw: Any) -> dict[str, Any]:
    entry = {
        "bench": "bench_x.py",
        "issue": 7,
        "figure": "a figure",
        "value": 1.0,
        "unit": "ms",
        "baseline": None,
        "base": "",
        "ratio": None,
        "aim": None,
        "met": None,
        "why": "",
        "note": "",
    }
    return entry | kw


def test_aims_judge_ratios_and_values() -> None:
    at_least_half = common.Aim("ratio", ">=", 0.5)
    assert at_least_half.met(10.0, 0.5) is True
    assert at_least_half.met(10.0, 0.49) is False
    assert at_least_half.met(10.0, None) is None
    assert at_least_half.text() == "ratio >= 0.5x"
    under_50 = common.Aim("value", "<", 50, "ms")
    assert under_50.met(49.9, 99.0) is True
    assert under_50.met(50.0, 0.1) is False
    assert under_50.text() == "under 50 ms"


def test_record_appends_a_line_only_when_asked(tmp_path: Path, monkeypatch: Any) -> None:
    records = tmp_path / "r.jsonl"
    monkeypatch.delenv(common.RECORD_ENV, raising=False)
    assert common.record(3, "f", 3.0, "ms", 2.0, aim=common.Aim("ratio", "<=", 1.5)) is True
    assert not records.exists()
    monkeypatch.setenv(common.RECORD_ENV, str(records))
    missed = common.record(
        3, "f", 4.0, "ms", 2.0, base="b", aim=common.Aim("ratio", "<=", 1.5), why="slow"
    )
    met = common.record(3, "g", 1.0, "ms", 2.0, aim=common.Aim("ratio", "<=", 1.5), why="slow")
    assert (missed, met) == (False, True)
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(x["figure"], x["ratio"], x["met"], x["why"]) for x in lines] == [
        ("f", 2.0, False, "slow"),
        ("g", 0.5, True, ""),  # a reason only for an aim missed
    ]
    assert lines[0]["aim"] == "ratio <= 1.5x" and lines[0]["base"] == "b"


def test_render_shows_each_figure_its_aim_and_why_not() -> None:
    figures = [
        _figure(
            figure="ticket creation, 32 connections",
            bench="bench_tickets.py",
            value=1200.0,
            unit="req/s",
            baseline=2800.0,
            ratio=1200 / 2800,
            aim="ratio >= 0.5x",
            met=False,
            why="two cores shared",
            base="health",
        ),
        _figure(issue=5, bench="bench_mqtt.py", figure="state change to an MQTT subscriber"),
    ]
    runs = [
        {"run": "bench_tickets.py", "rc": 0, "seconds": 100.0, "load": [1.0, 2.0], "tail": []},
        {
            "run": "bench_startup.py",
            "rc": 1,
            "seconds": 5.0,
            "load": [1.0, 1.0],
            "tail": ["Traceback ...", "BenchError: daemon: exited with 1"],
        },
    ]
    page = report.render({"machine": report.machine(), "note": "shared"}, figures, runs)
    assert "| ticket creation, 32 connections (bench_tickets.py) | 1,200 req/s |" in page
    assert "| 2,800 req/s | 0.429x | ratio >= 0.5x | **NO** |" in page
    assert "two cores shared" in page
    assert "- **This run**: shared" in page
    # The failed bench: its aims are there, missing, with its error.
    assert "start at most 2x a bare app (bench_startup.py failed) | missing" in page
    assert "bench_startup.py failed (exit 1): BenchError: daemon: exited with 1" in page
    assert "### bench_startup.py failed" in page
    # A bench that did not run at all is named too.
    assert "bench_sd_writes.py did not run" in page
    assert "## Issue 5: MQTT" in page and "The issue set no aim" in page


# A bench records through `record`, or through panel_common's `compare`, which does.
RECORDS = re.compile(r"\b(record|compare)\(")


def test_every_expected_figure_is_one_its_bench_records() -> None:
    for e in report.EXPECTED:
        source = (BENCH / e.bench).read_text()
        assert RECORDS.search(source), e.bench
        assert e.match in source, f"{e.bench} records no figure named like {e.match!r}"
    for path in BENCH.glob("bench_*.py"):  # each bench has its figures in the report
        assert RECORDS.search(path.read_text()), path.name


STAND_IN = """
import sys
sys.path.insert(0, {bench!r})
from common import Aim, record
print("measuring", flush=True)
record(9, "idle writes", 0.5, "MB/h", 0.4, base="no devices", aim=Aim("value", "<", 1, "MB/h"))
"""
FAILING = """
print("half way", flush=True)
raise SystemExit("the emulator did not start")
"""
HANGING = """
import time
print("waiting", flush=True)
time.sleep(60)
"""


def test_a_failing_or_hanging_bench_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    benches = []
    for name, text in (
        ("bench_a_fails.py", FAILING),
        ("bench_b_hangs.py", HANGING),
        ("bench_c_records.py", STAND_IN.format(bench=str(BENCH))),
    ):
        (tmp_path / name).write_text(textwrap.dedent(text))
        benches.append(tmp_path / name)
    records = tmp_path / "records.jsonl"
    runs = report.run_all(benches, records, timeout_s=3, note="test")
    assert [(r["run"], r["rc"] != 0, r["timed_out"]) for r in runs] == [
        ("bench_a_fails.py", True, False),
        ("bench_b_hangs.py", True, True),
        ("bench_c_records.py", False, False),
    ]
    assert runs[0]["tail"][-1] == "the emulator did not start"
    head, figures, stored = report.load(records)
    assert head["note"] == "test" and len(stored) == 3
    assert [(f["bench"], f["figure"], f["ratio"], f["met"]) for f in figures] == [
        ("bench_c_records.py", "idle writes", 1.25, True)
    ]
    page = report.render(head, figures, stored)
    assert "### bench_a_fails.py failed" in page and "the emulator did not start" in page
    assert "| bench_b_hangs.py | defaults |" in page and "| timeout |" in page
