"""The SD card: how many bytes the idle daemon writes an hour, beside a daemon with no
devices, and what one action costs.

Three `gridhall run` processes side by side, each with its own store in a temp dir:

* the demo (etc/gridhall.toml with free ports: every kind of device polled over real
  sockets, the ticket plugin's watcher, the schedules), idle;
* the baseline: the same daemon on a config with no buses and no devices (its
  plugins, watcher and store as in the demo);
* the demo again, sent one device action every `--every-s` seconds: the control, which
  shows the measure sees writes and what each action's audit row costs.

For each, `write_bytes` of /proc/<pid>/io (bytes the process caused to be written to
the storage layer, its store's WAL and checkpoints included) is read once every device
is available and again `--minutes` later, and extrapolated to an hour; the daemons'
output goes to /dev/null (under systemd it goes to the journal, a socket). Aim: the
idle demo under 1 MB an hour.

Run: .venv/bin/python bench/bench_sd_writes.py [--minutes M] [--every-s S]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from common import Aim, record  # noqa: E402

from tests.browser_support import DEMO_DEVICES  # noqa: E402
from tests.support import bare_config, create_token_cli, demo_copy, wait_http  # noqa: E402

AIM_BYTES_PER_HOUR = 1_000_000


def io(pid: int) -> dict[str, int]:
    fields = (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {k: int(v) for k, v in fields}


@contextmanager
def daemon(config: Path, port: int, devices: set[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "-c", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health")
        deadline = time.monotonic() + 30
        while devices:
            health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).json()
            if not set(health["devices"]["unavailable"]) & devices:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"devices unavailable: {health['devices']}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def run(minutes: float, every_s: float) -> int:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        for name in ("demo", "bare", "busy"):
            (Path(tmp) / name).mkdir()
        demo, demo_port, _ = demo_copy(Path(tmp) / "demo")
        bare = bare_config(Path(tmp) / "bare")
        bare_port = int(bare.read_text().split('listen = "127.0.0.1:')[1].split('"')[0])
        busy, busy_port, _ = demo_copy(Path(tmp) / "busy")
        token = create_token_cli(busy, "operator")
        procs = {
            "idle demo": stack.enter_context(daemon(demo, demo_port, DEMO_DEVICES)),
            "no devices (baseline)": stack.enter_context(daemon(bare, bare_port, set())),
            f"demo, an action every {every_s:g} s": stack.enter_context(
                daemon(busy, busy_port, DEMO_DEVICES)
            ),
        }
        client = stack.enter_context(
            httpx.Client(
                base_url=f"http://127.0.0.1:{busy_port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        )
        time.sleep(5)  # start-up's own writes (migrations, seeds, catalog) settle
        before = {name: io(p.pid) for name, p in procs.items()}
        started = time.monotonic()
        actions = 0
        for on in itertools.cycle((True, False)):
            if time.monotonic() - started >= minutes * 60:
                break
            action = "on" if on else "off"
            r = client.post(f"/api/v1/devices/power-2/actions/{action}", json={"channel": 1})
            actions += r.status_code == 200
            time.sleep(every_s)
        seconds = time.monotonic() - started
        after = {name: io(p.pid) for name, p in procs.items()}
    print(
        f"SD card writes over {seconds / 60:.1f} min on {platform.node()}, {datetime.date.today()}"
    )
    print(f"{'daemon':34} {'write_bytes':>12} {'per hour':>12} {'write calls':>12}")
    per_hour = {}
    for name in procs:
        written = after[name]["write_bytes"] - before[name]["write_bytes"]
        per_hour[name] = written * 3600 / seconds
        calls = after[name]["syscw"] - before[name]["syscw"]
        print(f"{name:34} {written:12,} {per_hour[name]:12,.0f} {calls:12,}")
    idle, base = per_hour["idle demo"], per_hour["no devices (baseline)"]
    busy_rate = per_hour[next(n for n in procs if n.startswith("demo, an action"))]
    ratio = f"{idle / base:.2f}" if base else ("1.00 (both 0)" if not idle else "inf")
    print(f"idle demo / baseline: {ratio}")
    if actions:
        print(f"the control: {busy_rate * seconds / 3600 / actions:,.0f} bytes per action")
    verdict = "met" if idle < AIM_BYTES_PER_HOUR else "NOT met"
    record(
        9,
        f"bytes written an hour by the idle demo ({seconds / 60:.1f} min, extrapolated)",
        idle / 1e6,
        "MB/h",
        base / 1e6,
        base="the same daemon with no devices",
        aim=Aim("value", "<", AIM_BYTES_PER_HOUR / 1e6, "MB/h"),
        why="a poll wrote to the store though nothing changed (tests/test_sd_writes.py "
        "should say which)",
        note=f"the control, an action every {every_s:g} s: {busy_rate / 1e6:.1f} MB/h"
        + (f", {busy_rate * seconds / 3600 / actions / 1e3:.0f} kB an action" if actions else ""),
    )
    print(f"aim (idle demo under {AIM_BYTES_PER_HOUR:,} bytes an hour): {verdict}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=1.5)
    parser.add_argument("--every-s", type=float, default=10.0)
    args = parser.parse_args()
    return run(args.minutes, args.every_s)


if __name__ == "__main__":
    sys.exit(main())
