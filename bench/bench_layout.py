"""How long a four-console layout takes to reach the matrix, beside the same four routes
sent one after another, measured in the same run.

The daemon runs in-process on a seat of four consoles on an `ihse-draco` matrix; the
Draco emulator runs in a thread with its own event loop (as a real matrix is elsewhere)
and stamps every switch it makes, right before it sends the ACK. Two layouts that
differ on every console are used in turn, `--runs` times each way:

- layout: `POST /api/v1/seats/seat-1/layouts/<id>/recall`, one request; its four
  routes go to the bus together and the link takes them back to back;
- singles (baseline): the same four consoles, each `POST /api/v1/seats/seat-1/route`
  sent once the previous one was answered, as a panel without layouts would.

For each: from the request to the matrix's last switch (its last ACK), and to the
answer at the client. Both go through the same path (HTTP, Host.act with the rights,
the audit committed before each answer, the bus), so the ratio is what recalling a
layout saves.

Run: .venv/bin/python bench/bench_layout.py [--runs 100]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import platform
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import config_head, elsewhere, free_port, pct, print_table, record  # noqa: E402

from daemon import auth  # noqa: E402
from daemon.config import load  # noqa: E402
from daemon.pluginhost import PluginHost  # noqa: E402
from daemon.runtime import Daemon  # noqa: E402
from drivers.ihse.emulator import DracoEmulator, DracoEmulatorOptions  # noqa: E402

CONSOLES = 4
LAYOUTS = {  # console -> computer; every console changes from one to the other
    "a": {1: "pc-1", 2: "pc-2", 3: "pc-3", 4: "pc-4"},
    "b": {1: "pc-5", 2: "pc-6", 3: "pc-7", 4: "pc-8"},
}


def config(folder: Path, port: int) -> Path:
    computers = "".join(
        f'[[computer]]\nid = "pc-{n}"\nmatrix = "kvm"\ninput = {n}\n' for n in range(1, 9)
    )
    layouts = "".join(
        f'[[seat.layouts]]\nid = "{name}"\nroutes = ['
        + ", ".join(f'{{ console = {c}, computer = "{pc}" }}' for c, pc in routes.items())
        + "]\n"
        for name, routes in LAYOUTS.items()
    )
    text = f"""
    [[device]]
    id = "kvm"
    kind = "matrix"
    driver = "ihse-draco"
    url = "tcp://127.0.0.1:{port}"
    poll_ms = 60000
    [device.options]
    cpus = 8
    consoles = 8
    """
    seat = f"""
[[seat]]
id = "seat-1"
matrix = "kvm"
computers = [{", ".join(f'"pc-{n}"' for n in range(1, 9))}]
consoles = [{", ".join(f"{{ output = {c} }}" for c in range(1, CONSOLES + 1))}]
"""
    path = folder / "gridhall.toml"
    path.write_text(config_head() + textwrap.dedent(text) + computers + seat + layouts)
    return path


async def bench(runs: int, emu: DracoEmulator) -> dict[str, list[float]]:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    figures: dict[str, list[float]] = {k: [] for k in ("layout", "layout_answer", "singles")}
    figures["singles_answer"] = []
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(load(config(Path(tmp), emu.port), plugins), plugins)
        async with daemon.lifespan():
            token = await auth.create_token(daemon.host.store, "bench", "operator")
            headers = {"Authorization": f"Bearer {token}"}
            transport = httpx.ASGITransport(app=daemon.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gh") as client:
                while not daemon.host.devices.get("kvm").available:
                    await asyncio.sleep(0.02)

                async def layout(name: str) -> None:
                    r = await client.post(
                        f"/api/v1/seats/seat-1/layouts/{name}/recall", headers=headers
                    )
                    if r.status_code != 200:
                        raise SystemExit(f"recall {name}: {r.status_code} {r.text}")

                async def singles(name: str) -> None:
                    for console, computer in LAYOUTS[name].items():
                        body = {"console": console, "computer": computer}
                        r = await client.post(
                            "/api/v1/seats/seat-1/route", json=body, headers=headers
                        )
                        if r.status_code != 200:
                            raise SystemExit(f"route {body}: {r.status_code} {r.text}")

                for _ in range(runs):
                    for name in LAYOUTS:
                        for key, way in (("layout", layout), ("singles", singles)):
                            other = "b" if name == "a" else "a"
                            await layout(other)  # every console changes on the measured run
                            emu.switches.clear()
                            start = time.monotonic()
                            await way(name)
                            answered = time.monotonic()
                            made = [at for at, _, _, _ in emu.switches]
                            if len(made) != CONSOLES:
                                raise SystemExit(f"{key}: {len(made)} switches, not {CONSOLES}")
                            figures[key].append((max(made) - start) * 1000)
                            figures[f"{key}_answer"].append((answered - start) * 1000)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    emu = DracoEmulator("127.0.0.1", free_port(), DracoEmulatorOptions(cpus=8, consoles=8))
    with elsewhere(emu):
        figures = asyncio.run(bench(args.runs, emu))

    n = len(figures["layout"])
    print(
        f"{n} recalls of a {CONSOLES}-console layout and {n} x {CONSOLES} single routes; "
        f"{platform.node()}, Python {platform.python_version()}, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )
    names = {
        "layout": "layout: to the matrix's last ACK",
        "layout_answer": "layout: to the answer",
        "singles": "4 single routes (baseline): to the last ACK",
        "singles_answer": "4 single routes (baseline): to the answer",
    }
    print_table("from the request (ms)", {name: figures[k] for k, name in names.items()})
    ratio = pct(figures["singles"], 50) / pct(figures["layout"], 50)
    print(f"to the last ACK, p50: singles / layout = {ratio:.2f}x")
    for p in (50, 99):
        record(
            10,
            f"a {CONSOLES}-console layout recalled, to the matrix's last ACK, p{p}",
            pct(figures["layout"], p),
            "ms",
            pct(figures["singles"], p),
            base=f"the same {CONSOLES} consoles routed one request after another",
        )


if __name__ == "__main__":
    main()
