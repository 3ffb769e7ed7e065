"""Where a request's time goes in the daemon: bench_tickets' load, profiled.

A `gridhall run` process takes each of bench_tickets' loads in turn (`GET /api/v1/health`,
the POST refused at validation, `POST /api/v1/tickets`) from 32 connections. For each:
the CPU of each of the daemon's threads per request (Linux's /proc), and, with py-spy
installed (`.venv/bin/pip install py-spy`; not a dependency), the event loop thread's
CPU split by what it was doing, from samples taken while it held the GIL (`py-spy
record --gil`): the HTTP layer, routing, auth, the body, the ticket's own code, the
change's delivery to listeners, the store's queue, the answer's serialisation, FastAPI.
The store's own thread (SQLite, the rollup triggers, the commit's fsync) is one line:
its C code runs without the GIL.

Not a bench_*.py: `make bench` does not run it. About half a minute.
Run: .venv/bin/python bench/profile_tickets.py [--seconds 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_tickets import Daemon, generate

KINDS = {"health": "GET /api/v1/health", "refused": "POST, refused (422)", "create": "POST (201)"}
# Each sample of the event loop's thread goes to the first part whose pattern matches
# one of its frames, from the innermost frame outwards.
PARTS = [
    ("the answer's serialisation", r"render \(|serialize_response|JSONResponse|dump_json"),
    ("routing (which route)", r"\.matches \(|_match \(|_get_routes_version|effective_cand"),
    ("auth (the token, the role; health: the host)", r"\(daemon/api/deps|\(daemon/auth\.py"),
    ("the body: read, JSON, validation", r"request_body_to_args|Request\.(body|json)|\(pydantic"),
    ("the error's answer", r"\(daemon/api/errors\.py"),
    ("the ticket: intake, routing, view", r"\(plugins/tickets/(intake|routing|live|api|queries)"),
    (
        "its delivery: teller, listeners, events",
        r"\(plugins/tickets/changes|\(plugins/timebank|\(daemon/events|_notify|await_me_maybe",
    ),
    ("the store's queue (loop side)", r"\(daemon/store\.py|\(aiosqlite/"),
    ("FastAPI: solving dependencies", r"solve_dependencies"),
    ("FastAPI/Starlette: middleware, dispatch", r"\((fastapi|starlette)/"),
    ("HTTP: uvicorn's h11, the socket", r"\((h11|uvicorn)/|selector_events"),
]


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of `pid`, by thread id."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        found[tid] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return found


def split(samples: Path) -> dict[str, float]:
    """Shares of the event loop thread's GIL-held samples, by part."""
    counts: collections.Counter[str] = collections.Counter()
    for line in samples.read_text(errors="replace").splitlines():
        stack, n = line.rsplit(" ", 1)
        frames = stack.split(";")
        if "MainThread" not in frames[0]:
            continue
        part = next(
            (
                name
                for frame in reversed(frames)
                for name, pattern in PARTS
                if re.search(pattern, frame)
            ),
            "the event loop, other",
        )
        counts[part] += int(n)
    total = sum(counts.values()) or 1
    return {part: n / total for part, n in counts.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--keep", type=Path, help="keep py-spy's raw samples here")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spy = spy if Path(spy).exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        daemon = Daemon(folder, folder / "load.db")
        token = daemon.gridhall("token", "create", "--role", "reporter", "--name", "bench")
        daemon.start()
        assert daemon.proc is not None
        pid = daemon.proc.pid
        table: dict[str, dict[str, float]] = {}
        try:
            url = f"{daemon.url}/api/v1/tickets/measures?day={datetime.date.today()}"
            httpx.get(url, headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            for kind in KINDS:
                generate(daemon.port, kind, token, 1.0)  # warm-up
            for kind in KINDS:
                out = (args.keep or folder) / f"{kind}.txt"
                out.parent.mkdir(parents=True, exist_ok=True)
                rec = None
                if spy:
                    cmd = [spy, "record", "--gil", "--nonblocking", "--threads", "-r", "250"]
                    rec = subprocess.Popen(
                        [*cmd, "-f", "raw", "-o", str(out), "-p", str(pid)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    time.sleep(0.5)
                before = thread_cpu(pid)
                run = generate(daemon.port, kind, token, args.seconds)
                after = thread_cpu(pid)
                if rec is not None:
                    rec.send_signal(signal.SIGINT)
                    rec.wait(30)
                n = sum(run["codes"].values())
                used = sorted(
                    ((after[t] - before.get(t, 0)) / n * 1e6 for t in after), reverse=True
                )
                loop_us, store_us = used[0], sum(used[1:])
                row = {"requests per second": run["rps"], "(event loop thread)": loop_us}
                if rec is not None and out.exists():
                    row |= {part: share * loop_us for part, share in split(out).items()}
                row["the store's thread: SQLite, triggers, commit"] = store_us
                row["daemon CPU per request, all threads"] = loop_us + store_us
                table[kind] = row
        finally:
            daemon.stop()
    labels = list(dict.fromkeys(label for row in table.values() for label in row))
    print(f"{'us per request (CPU)':44}" + "".join(f"{KINDS[k]:>22}" for k in table))
    for label in labels:
        print(f"{label:44}" + "".join(f"{row.get(label, 0):22.0f}" for row in table.values()))
    if spy is None:
        print("(install py-spy into the virtualenv to split the event loop's time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
