"""Startup time and idle memory of the gridhall daemon, against a bare FastAPI app.

What is measured, in one run on this machine:

* the daemon on the demo config (etc/gridhall.toml, copied to a temp dir with free
  ports and its own database; same emulator, bus and devices), started as
  `python -m daemon run -c <copy>`:
    - start -> READY=1: until the systemd notify datagram arrives on $NOTIFY_SOCKET;
    - start -> first 200: until GET /api/v1/health first answers 200 (polled every 5 ms);
    - idle RSS: VmRSS from /proc/<pid>/status a few seconds after READY, when the
      devices are polling (the health route says how many are available);
* the baseline, measured the same way: a bare uvicorn + FastAPI app with one
  GET /health route, started by the same Python. It sends READY=1 from its lifespan
  startup, which uvicorn runs *before* it binds the socket, so its READY is early;
  start -> first 200 is the like-for-like start measure for both.

Each measure is repeated (--runs, alternating daemon and baseline, after one
unrecorded warm-up round that fills the page cache and creates the database) and the
medians are compared as ratios daemon/baseline. Ratios, not absolute figures, are what
the aims are about (RSS at most 1.25x the bare app, start at most 2x): the machines are
shared and noisy, and both sides of a ratio see the same machine at the same moment.

Run: .venv/bin/python bench/bench_startup.py [--runs N] [--settle S]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import Aim, free_port, record

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "etc" / "gridhall.toml"
DEMO_API = "127.0.0.1:8080"
DEMO_BUS_PORT = "15020"
POLL_S = 0.005  # how often start -> first 200 is polled
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
AIM_START = 2.0
AIM_RSS = 1.25
# Why an aim is missed, when it is (the report shows it then): measured by hand on the
# 2-core development VM, 2026-12, and issue 2's closing notes.
WHY = {
    "first_200_ms": "about 1 s of imports against the bare app's 0.7 s (FastAPI, pymodbus, "
    "the daemon's and the plugins' modules), then the start's own work, which the bare "
    "app has none of: the store's migrations, the plugins' seeds, the demo's emulators, "
    "the routes; issue 2 measured 1.75x with the core alone, 2.04x after issues 4-6, and "
    "every issue since added to it",
    "rss_kib": "imports alone come to about 57 MiB (FastAPI 30, uvicorn 3, the daemon's "
    "modules 10, the plugins' 2) against the bare app's 44, before the app, its routes "
    "and the demo's in-process emulators; met at 1.19-1.23x until issues 4-6 (58.8 MiB, "
    "1.33x), the tickets, time bank, Open311, panel and metrics of issues 7-11 added "
    "about 12 MiB more. Lazy driver and plugin imports, or a new aim, are the choices "
    "left open",
}

BASELINE_APP = '''\
"""The baseline: a bare uvicorn + FastAPI app with one route."""
import os
import socket
import sys
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI



def notify(message):
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)


@asynccontextmanager
async def lifespan(app):
    notify("READY=1")  # runs before uvicorn binds its socket
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health():
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
'''


class BenchError(Exception):
    pass


# -- one measurement ---------------------------------------------------------------------


@dataclass
class Sample:
    ready_ms: float
    first_200_ms: float
    rss_kib: int
    devices: tuple[int, int] | None = None  # (available, total); the daemon only


@dataclass
class Target:
    """What to start and where it answers; `prepare` is called before each start."""

    name: str
    workdir: Path
    health_path: str
    argv: list[str] = field(default_factory=list)
    port: int = 0
    # The daemon exits 0 on SIGTERM; uvicorn.run() re-raises the signal once shut down.
    clean_exits: tuple[int, ...] = (0,)

    def prepare(self) -> None:
        raise NotImplementedError

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.health_path}"


class DaemonTarget(Target):
    def prepare(self) -> None:
        self.port = free_port()
        config = self.workdir / "gridhall.toml"
        config.write_text(demo_config(self.port, free_port(), self.workdir / "gridhall.db"))
        self.argv = [sys.executable, "-m", "daemon", "run", "-c", str(config)]


class BaselineTarget(Target):
    def prepare(self) -> None:
        self.port = free_port()
        app = self.workdir / "bare_app.py"
        app.write_text(BASELINE_APP)
        self.argv = [sys.executable, str(app), str(self.port)]


def demo_config(api_port: int, bus_port: int, db: Path) -> str:
    """The demo config with its fixed ports and database path replaced, nothing else."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    replacements = [
        (rf'listen = "{re.escape(DEMO_API)}"', f'listen = "127.0.0.1:{api_port}"', 1),
        (rf"\b{DEMO_BUS_PORT}\b", str(bus_port), 2),  # the emulator's listen, the bus url
        (r'(?m)^path = "[^"]*"', f'path = "{db}"', 1),
    ]
    for pattern, new, expected in replacements:
        text, count = re.subn(pattern, new, text)
        if count != expected:
            raise BenchError(f"{DEMO_CONFIG}: expected {expected} x {pattern!r}, found {count}")
    # The ticket categories the demo names beside itself stay where they are.
    return re.sub(
        r'(?m)^categories = "([^"]*)"',
        lambda m: f'categories = "{DEMO_CONFIG.parent / m.group(1)}"',
        text,
    )


class ReadyListener:
    """A datagram socket for $NOTIFY_SOCKET; a thread stamps the arrival of READY=1."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.ready_at: float | None = None
        self._ready = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._closing:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if b"READY=1" in data.split(b"\n") and self.ready_at is None:
                self.ready_at = time.monotonic()
                self._ready.set()

    def wait(self, timeout: float) -> float | None:
        self._ready.wait(timeout)
        return self.ready_at

    def close(self) -> None:
        self._closing = True
        self._thread.join()
        self.sock.close()
        self.path.unlink(missing_ok=True)


@contextmanager
def started(target: Target, notify_path: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start the target with NOTIFY_SOCKET set; SIGTERM it on the way out, kill on timeout."""
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    env.pop("WATCHDOG_USEC", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            target.argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        stop(proc, target)


def stop(proc: subprocess.Popen[bytes], target: Target) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise BenchError(f"did not stop {STOP_TIMEOUT_S:.0f}s after SIGTERM: killed") from None
    if code not in target.clean_exits:
        raise BenchError(f"exited {code} on SIGTERM")


def wait_first_200(
    client: httpx.Client, url: str, proc: subprocess.Popen[bytes], deadline: float
) -> float:
    while True:
        try:
            if client.get(url).status_code == 200:
                return time.monotonic()
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise BenchError(f"exited with {proc.returncode} before answering {url}")
        if time.monotonic() > deadline:
            raise BenchError(f"{url} did not answer 200 in {START_TIMEOUT_S:.0f}s")
        time.sleep(POLL_S)


def vm_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if not match:
        raise BenchError(f"no VmRSS in /proc/{pid}/status")
    return int(match.group(1))


def devices_available(client: httpx.Client, url: str) -> tuple[int, int]:
    devices = client.get(url).json()["devices"]
    return devices["total"] - len(devices["unavailable"]), devices["total"]


def measure(target: Target, settle_s: float) -> Sample:
    """Start the target once: time READY and the first 200, sample RSS after settling."""
    target.prepare()
    notify_path = target.workdir / "notify.sock"
    log = target.workdir / f"{target.name}.log"
    listener = ReadyListener(notify_path)
    try:
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            t0 = time.monotonic()
            with started(target, notify_path, log) as proc:
                deadline = t0 + START_TIMEOUT_S
                first_200 = wait_first_200(client, target.health_url, proc, deadline)
                ready = listener.wait(max(0.0, deadline - time.monotonic()))
                if ready is None:
                    raise BenchError(f"no READY=1 in {START_TIMEOUT_S:.0f}s")
                time.sleep(max(0.0, ready + settle_s - time.monotonic()))
                if proc.poll() is not None:
                    raise BenchError(f"exited with {proc.returncode} while idle")
                rss = vm_rss_kib(proc.pid)
                devices = None
                if isinstance(target, DaemonTarget):
                    devices = devices_available(client, target.health_url)
    except BenchError as exc:
        raise BenchError(f"{target.name}: {exc}\n--- {log}:\n{tail(log)}") from None
    finally:
        listener.close()
    return Sample((ready - t0) * 1e3, (first_200 - t0) * 1e3, rss, devices)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


# -- the rounds and the report -----------------------------------------------------------


def run_rounds(
    daemon: Target, baseline: Target, runs: int, settle_s: float
) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {"daemon": [], "baseline": []}
    for i in range(runs + 1):
        label = "warm-up" if i == 0 else f"run {i}/{runs}"
        for target in (daemon, baseline):
            s = measure(target, settle_s)
            devices = f"  devices {s.devices[0]}/{s.devices[1]}" if s.devices else ""
            print(
                f"  {label:>9}  {target.name:<8}  READY {s.ready_ms:7.1f} ms"
                f"  first 200 {s.first_200_ms:7.1f} ms  RSS {s.rss_kib / 1024:6.1f} MiB{devices}",
                flush=True,
            )
            if i > 0:
                samples[target.name].append(s)
    return samples


def median(samples: list[Sample], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in samples))


def report(samples: dict[str, list[Sample]], settle_s: float) -> None:
    d, b = samples["daemon"], samples["baseline"]
    rows = [
        # label, Sample attribute, scale, aim (None: for information)
        ("start to first 200 (ms)", "first_200_ms", 1.0, AIM_START),
        ("start to READY=1 (ms) *", "ready_ms", 1.0, None),
        ("idle RSS (MiB)", "rss_kib", 1 / 1024, AIM_RSS),
    ]
    print()
    print(
        f"{f'median of {len(d)} runs':<26}{'daemon':>9}{'baseline':>10}{'ratio':>8}{'aim':>9}  met"
    )
    for label, attr, scale, aim in rows:
        dm, bm = median(d, attr) * scale, median(b, attr) * scale
        ratio = dm / bm
        aim_text, met = "-", "-"
        if aim is not None:
            aim_text, met = f"<={aim:g}x", "yes" if ratio <= aim else "NO"
            figure, unit = label.rsplit(" (", 1)
            record(
                2,
                f"{figure}, demo daemon (median of {len(d)})",
                dm,
                unit.rstrip(")"),
                bm,
                base="a bare uvicorn + FastAPI app, same Python",
                aim=Aim("ratio", "<=", aim),
                why=WHY[attr],
            )
        print(f"{label:<26}{dm:>9.1f}{bm:>10.1f}{ratio:>7.2f}x{aim_text:>9}  {met}")
    print()
    print("* the baseline sends READY=1 from its lifespan startup, before uvicorn binds;")
    print("  the daemon sends it once its API is bound. The start aim is judged on first 200.")
    counts = sorted({s.devices for s in d if s.devices})
    available = ", ".join(f"{a}/{t}" for a, t in counts)
    print(f"RSS sampled {settle_s:g} s after READY=1; daemon devices available then: {available}")


def machine() -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"{now}  |  {platform.node()}  |  nproc {os.cpu_count()}  |  "
        f"{platform.python_implementation()} {platform.python_version()}  |  "
        f"{platform.system()} {platform.release()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="recorded runs of each (default 5)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds after READY before RSS (default 3)"
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(f"gridhall startup bench: {machine()}")
    print(f"daemon: {DEMO_CONFIG.relative_to(ROOT)} (free ports, temp db)  baseline: bare FastAPI")
    workdir = Path(tempfile.mkdtemp(prefix="gridhall-bench-"))
    try:
        daemon = DaemonTarget("daemon", workdir, "/api/v1/health")
        baseline = BaselineTarget("baseline", workdir, "/health", clean_exits=(0, -signal.SIGTERM))
        samples = run_rounds(daemon, baseline, args.runs, args.settle)
        report(samples, args.settle)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
