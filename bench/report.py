"""Run every benchmark and write bench/RESULTS.md: each figure beside its baseline
measured in the same run, the ratio, the aim and whether it is met, the machine, the
date and the commit.

Each `bench/bench_*.py` runs as a process of its own with $GRIDHALL_BENCH_RECORD set:
its `common.record(...)` calls append its headline figures to that file as JSON lines,
while it prints as it always did (its output streams here). A bench that fails (an
exit code other than 0, or the timeout) does not stop the run: the report says which
failed, with the end of its output, and shows its aims as missing. The records and
each bench's run (exit code, seconds, the machine's load average) are kept in
bench/RESULTS.jsonl, so the page can be written again without running anything
(`--render`).

`make bench` runs it; the soak runs 2 minutes there (`make soak` is its 30 minutes).

Run: .venv/bin/python bench/report.py [--only bench_grid.py ...] [--note TEXT]
     .venv/bin/python bench/report.py --render bench/RESULTS.jsonl
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import math
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORD_ENV = "GRIDHALL_BENCH_RECORD"  # the same name as common.RECORD_ENV
TIMEOUT_S = 30 * 60  # one bench; the longest takes a few minutes
TAIL_LINES = 25
# Arguments `make bench` gives a bench; the others run with their defaults.
ARGS = {"bench_soak.py": ["--minutes", "2", "--every", "5"]}

ISSUES = {
    2: "the core: startup and memory",
    3: "the drivers: an action through the API, a command on a busy bus",
    4: "scenes and sequences: steps against their plan",
    5: "MQTT: state to a subscriber",
    6: "the grid registry: point lookups",
    7: "tickets: creation under load, the overdue board, measures, Open311",
    8: "the time bank: awards",
    9: "hardening: the SD card, the soak",
    10: "operator seats: a layout recalled",
    11: "the touch panel: what the page shows, how soon",
}


@dataclass(frozen=True)
class Expected:
    """An aim an issue set, and the bench figure that answers it: `match` is a part of
    the figure's name as the bench records it (tests/test_bench_report.py checks that
    it is in the bench's source)."""

    issue: int
    bench: str
    match: str
    aim: str


# Every aim the issues set (their "Done when"), in the order of the issues. The issues
# 5, 6, 10 and 11 asked for figures beside a baseline and set no aim.
EXPECTED = [
    Expected(2, "bench_startup.py", "start to first 200", "start at most 2x a bare app"),
    Expected(2, "bench_startup.py", "idle RSS", "idle RSS at most 1.25x a bare app"),
    Expected(3, "bench_action.py", "API action p50, verify=false", "at most 1.5x HTTP + Modbus"),
    Expected(3, "bench_action.py", "API action p50, verify=true", "at most 1.5x HTTP + Modbus"),
    Expected(3, "bench_action.py", "command wait before the wire", "under one frame time"),
    Expected(4, "bench_sequence.py", "late vs plan, max", "every step within 50 ms"),
    Expected(7, "bench_tickets.py", "ticket creation, ", "at least 0.5x health"),
    Expected(7, "bench_tickets.py", "missing from the store", "every 201 durable"),
    Expected(7, "bench_tickets.py", "overdue board (100 rows)", "the board under 50 ms"),
    Expected(7, "bench_tickets.py", "department=police", "the board under 50 ms"),
    Expected(7, "bench_tickets.py", "department=urban", "the board under 50 ms"),
    Expected(7, "bench_measures.py", "from the rollup", "a month's measures under 50 ms"),
    Expected(8, "bench_timebank.py", "wrong balance", "1,000 concurrent awards exact"),
    Expected(9, "bench_sd_writes.py", "bytes written an hour", "idle under 1 MB an hour"),
    Expected(9, "bench_soak.py", "RSS growth", "no growth after warm-up"),
    Expected(9, "bench_soak.py", "open fds growth", "no growth after warm-up"),
]


# -- running the benches ---------------------------------------------------------------


def benches(only: Sequence[str] = ()) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        names = {Path(n).name for n in only}
        unknown = names - {p.name for p in found}
        if unknown:
            raise SystemExit(f"no such bench: {', '.join(sorted(unknown))}")
        found = [p for p in found if p.name in names]
    return found


def loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_one(bench: Path, args: list[str], records: Path, timeout_s: float) -> dict[str, Any]:
    """Run one bench with the record file set, its output streamed through; what its run
    was (exit code, seconds, load average before and after, the end of its output)."""
    env = {**os.environ, RECORD_ENV: str(records)}
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    load_before, start = loadavg(), time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(bench), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: a timeout ends its children too
    )
    assert proc.stdout is not None
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, expire)
    timer.start()
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            tail.append(line.rstrip("\n"))
        code = proc.wait()
    except BaseException:  # ^C: the bench is in a session of its own and did not see it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise
    finally:
        timer.cancel()
        proc.stdout.close()
    return {
        "run": bench.name,
        "args": args,
        "rc": code,
        "timed_out": timed_out.is_set(),
        "seconds": round(time.monotonic() - start, 1),
        "load": [load_before, loadavg()],
        "tail": list(tail) if code != 0 else [],
    }


def run_all(
    paths: Iterable[Path], records: Path, timeout_s: float, note: str
) -> list[dict[str, Any]]:
    records.write_text(json.dumps({"machine": machine(), "note": note}) + "\n")
    runs = []
    for bench in paths:
        print(f"== bench/{bench.name}", flush=True)
        run = run_one(bench, ARGS.get(bench.name, []), records, timeout_s)
        with records.open("a", encoding="utf-8") as out:
            out.write(json.dumps(run, ensure_ascii=False) + "\n")
        if run["rc"] != 0:
            print(f"== {bench.name} FAILED (exit {run['rc']}); going on", flush=True)
        runs.append(run)
    return runs


# -- the machine -----------------------------------------------------------------------


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    """What the figures were measured on, from /proc, platform and git."""
    mem = _proc_field("/proc/meminfo", "MemTotal")
    ram_gib = int(mem.split()[0]) / 1024**2 if mem else None
    os_name = _proc_field("/etc/os-release", "PRETTY_NAME")  # `KEY="value"` lines
    if os_name is None:
        try:
            for line in Path("/etc/os-release").read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip('"')
        except OSError:
            pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "?",
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "ram_gib": round(ram_gib, 1) if ram_gib else None,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "os": f"{os_name or platform.system()}, {platform.system()} {platform.release()} "
        f"{platform.machine()}",
        "commit": commit + (" with uncommitted changes" if dirty and commit else ""),
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
    }


# -- the page --------------------------------------------------------------------------


def num(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return f"0 {unit}".strip() if unit != "x" else "0x"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 10:
        text = f"{x:,.0f}"
    elif abs(x) >= 100:
        text = f"{x:,.0f}"
    elif abs(x) >= 10:
        text = f"{x:.1f}"
    elif abs(x) >= 0.1 or x == 0:
        text = f"{x:.2f}"
    else:
        text = f"{x:.3g}"
    return f"{text} {unit}".strip() if unit and unit != "x" else text + ("x" if unit == "x" else "")


def ratio_text(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:,.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    # Three places below 1, so a ratio just under a bound of 0.5 does not read as 0.50.
    return f"{r:.2f}x" if r >= 1 else f"{r:.3f}x" if r >= 0.1 else f"{r:.2g}x"


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "-"}[met]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(the head: machine and note, the figures, the runs) from a records file."""
    head: dict[str, Any] = {}
    figures, runs = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if "machine" in entry:
            head = entry
        elif "run" in entry:
            runs.append(entry)
        elif "cache" in entry:
            head.setdefault("caches", []).append(entry)
        elif "figure" in entry:
            figures.append(entry)
    return head, figures, runs


def minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def render(head: dict[str, Any], figures: list[dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    m = head.get("machine") or machine()
    ran = {r["run"]: r for r in runs}
    out: list[str] = ["# Benchmark results", ""]
    out.append(
        "Written by `make bench` (`bench/report.py`): every `bench/bench_*.py` run once, "
        "each figure beside a baseline measured in the same run on the same machine. "
        "The ratio is value / baseline. The aims are the issues' own; each bench says "
        "what it measures in its docstring and in [README.md](README.md)."
    )
    out.append("")
    cores = f"{m.get('cores')} cores"
    if m.get("usable_cores") and m.get("usable_cores") != m.get("cores"):
        cores += f" ({m['usable_cores']} usable)"
    ram = f"{m['ram_gib']} GiB RAM" if m.get("ram_gib") else "RAM unknown"
    out += [
        f"- **Date**: {m.get('date')}",
        f"- **Commit**: {m.get('commit') or '?'} (branch {m.get('branch') or '?'})",
        f"- **Machine**: {m.get('cpu')}, {cores}, {ram}",
        f"- **Software**: {m.get('python')}, SQLite {m.get('sqlite')}, {m.get('os')}",
    ]
    if head.get("note"):
        out.append(f"- **This run**: {head['note']}")
    if runs:
        total = sum(r["seconds"] for r in runs)
        failed = [r["run"] for r in runs if r["rc"] != 0]
        loads = [x for r in runs for x in r.get("load", []) if x is not None]
        out.append(
            f"- **Took**: {minutes(total)} for {len(runs)} benches"
            + (f"; **failed**: {', '.join(failed)}" if failed else "; none failed")
            + (
                f"; the machine's load average {min(loads):.1f} to {max(loads):.1f} "
                f"between benches (on {m.get('cores')} cores)"
                if loads
                else ""
            )
        )
    for c in head.get("caches", []):
        built = f", whose fill took {minutes(c['built_s'])}" if c.get("built_s") else ""
        out.append(
            f"- **Fixture**: {c['bench']} "
            + (
                f"reused its `{c['cache']}` from `.bench-cache/`{built} "
                "(`GRIDHALL_BENCH_NO_CACHE=1` builds it afresh)"
                if c["hit"]
                else f"built its `{c['cache']}` and kept it in `.bench-cache/` for the next run"
            )
        )
    aimed = [f for f in figures if f.get("aim")]
    missed = [f for f in aimed if f.get("met") is False]
    missing = [e for e in EXPECTED if e.aim and not _answers(e, figures)]
    out.append(
        f"- **Aims**: {len(aimed)} figures with an aim: "
        f"{sum(f.get('met') is True for f in aimed)} met, {len(missed)} not met"
        + (f"; {len(missing)} with no figure (its bench failed or did not run)" if missing else "")
    )
    out.append("")
    out += summary(figures, ran)

    by_issue: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for f in figures:
        by_issue[int(f["issue"])].append(f)
    for issue in sorted(set(ISSUES) | set(by_issue)):
        out += issue_section(issue, by_issue.get(issue, []), ran, figures)

    if runs:
        out += [
            "## The runs",
            "",
            "| bench | arguments | took | load average before, after | exit |",
        ]
        out.append("|---|---|---|---|---|")
        for r in runs:
            loads = ", ".join(num(x) for x in r.get("load", []))
            code = "timeout" if r.get("timed_out") else str(r["rc"])
            args = " ".join(r.get("args") or []) or "defaults"
            out.append(f"| {r['run']} | {args} | {minutes(r['seconds'])} | {loads} | {code} |")
        out.append("")
        for r in runs:
            if r["rc"] != 0:
                out += [f"### {r['run']} failed", "", "```", *r.get("tail", []), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def summary(figures: list[dict[str, Any]], ran: dict[str, dict[str, Any]]) -> list[str]:
    """One line per aim: every aim an issue set, measured or missing."""
    out = [
        "## Every aim",
        "",
        "| issue | figure | value | ratio | aim | met? |",
        "|---|---|---|---|---|---|",
    ]
    shown: set[int] = set()

    def line(f: dict[str, Any]) -> str:
        shown.add(id(f))
        return (
            f"| {f['issue']} | {cell(f['figure'])} | {num(f['value'], f['unit'])} | "
            f"{ratio_text(f['ratio'])} | {f['aim']} | {met_text(f['met'])} |"
        )

    for e in sorted((e for e in EXPECTED if e.aim), key=lambda e: e.issue):
        answers = _answers(e, figures)
        out += [line(f) for f in answers if f.get("aim") and id(f) not in shown]
        if not answers:
            why = "did not run" if e.bench not in ran else "failed"
            out.append(f"| {e.issue} | {cell(e.aim)} ({e.bench} {why}) | missing | - | - | - |")
    # An aim a bench records that the list above does not name shows all the same.
    out += [line(f) for f in figures if f.get("aim") and id(f) not in shown]
    return [*out, ""]


def _answers(e: Expected, figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        f
        for f in figures
        if f["bench"] == e.bench and f["issue"] == e.issue and e.match in f["figure"]
    ]


def issue_section(
    issue: int,
    figures: list[dict[str, Any]],
    ran: dict[str, dict[str, Any]],
    everything: list[dict[str, Any]],
) -> list[str]:
    out = [f"## Issue {issue}: {ISSUES.get(issue, '')}".rstrip(": "), ""]
    expected = [e for e in EXPECTED if e.issue == issue]
    if not expected:
        out += ["The issue set no aim: its figures beside their baselines.", ""]
    rows = ["| figure | value | baseline | ratio | aim | met? |", "|---|---|---|---|---|---|"]
    whys: list[str] = []
    gone: list[str] = []
    notes: list[str] = []
    for f in figures:
        rows.append(
            f"| {cell(f['figure'])} ({f['bench']}) | {num(f['value'], f['unit'])} | "
            f"{num(f['baseline'], f['unit'])} | {ratio_text(f['ratio'])} | "
            f"{f['aim'] or '-'} | {met_text(f['met'])} |"
        )
        said = []
        if f["baseline"] is not None and f.get("base"):
            said.append(f"baseline: {f['base']}")
        if f.get("note"):
            said.append(f["note"])
        if said:
            notes.append(f"{f['figure']}: " + "; ".join(said))
        if f["met"] is False:
            why = (f["why"] or "no reason given").rstrip(". ")
            whys.append(f"- **{f['figure']}** ({f['aim']}): {why}.")
    for e in expected:
        if _answers(e, everything):
            continue
        run = ran.get(e.bench)
        if run is None:
            reason = f"{e.bench} did not run"
        elif run["rc"] != 0:
            last = next((t for t in reversed(run.get("tail", [])) if t.strip()), "")
            how = "timeout" if run.get("timed_out") else f"exit {run['rc']}"
            reason = f"{e.bench} failed ({how}): {last}"
        else:
            reason = f"{e.bench} ran but recorded no such figure"
        rows.append(
            f"| {cell(e.match.strip(', '))} ({e.bench}) | missing | - | - | "
            f"{cell(e.aim) or '-'} | - |"
        )
        gone.append(f"- **{e.aim or e.match}**: no figure: {cell(reason)}.")
    if len(rows) > 2:
        out += rows + [""]
    if whys:
        out += ["Why not:", "", *whys, ""]
    if gone:
        out += ["Missing:", "", *dict.fromkeys(gone), ""]
    if notes:
        out += ["Notes:", "", *(f"- {cell(n).rstrip('. ')}." for n in notes), ""]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", default=(), help="run only these bench_*.py")
    ap.add_argument("--render", type=Path, help="write the page from this records file only")
    ap.add_argument("--records", type=Path, help="default bench/RESULTS.jsonl")
    ap.add_argument("--out", type=Path, help="default bench/RESULTS.md")
    ap.add_argument("--note", default=os.environ.get("BENCH_NOTE", ""), help="about this run")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds, each bench")
    args = ap.parse_args(argv)
    # A partial run (--only) writes beside the full run's files, not over them.
    folder = HERE / "out" if args.only else HERE
    args.records = args.records or folder / "RESULTS.jsonl"
    args.out = args.out or folder / "RESULTS.md"
    folder.mkdir(exist_ok=True)
    if args.render:
        head, figures, runs = load(args.render)
        if args.note:
            head["note"] = args.note
    else:
        run_all(benches(args.only), args.records, args.timeout, args.note)
        head, figures, runs = load(args.records)
    args.out.write_text(render(head, figures, runs), encoding="utf-8")
    failed = [r["run"] for r in runs if r["rc"] != 0]
    print(f"\nwrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
