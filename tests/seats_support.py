"""A hall of seats on one KVM matrix (the Draco emulator): computers, two seats, a wall.

| output | belongs to            |   | input | computer              |
|--------|-----------------------|---|-------|-----------------------|
| 1-4    | seat-1 "Dispatch 1"   |   | 1     | duty-pc               |
| 5, 6   | seat-2 "Dispatch 2"   |   | 2     | video-pc              |
| 7, 8   | wall                  |   | 3     | gis-pc                |
|        |                       |   | 4     | secure-pc (secure)    |

secure-pc: the operator `li.wei` in full or video (pushed in video only), the role
`facility` in video; nobody else but admin. gis-pc may be pushed in full by any operator.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import auth
from drivers.ihse import protocol
from drivers.ihse.emulator import DracoEmulator, DracoEmulatorOptions
from tests.support import Running, device_on_a_line, free_port, wait_for

CPUS, CONSOLES = 8, 8
SEATS = """
[[computer]]
id = "duty-pc"
name = "Duty PC"
matrix = "kvm"
input = 1

[[computer]]
id = "video-pc"
name = "Video patrol PC"
matrix = "kvm"
input = 2

[[computer]]
id = "gis-pc"
name = "Grid map PC"
matrix = "kvm"
input = 3
allow = [{ role = "operator", share = ["video", "full"] }]

[[computer]]
id = "secure-pc"
name = "Secure network PC"
matrix = "kvm"
input = 4
secure = true
allow = [
  { operator = "li.wei", modes = ["full", "video"] },
  { role = "facility", modes = ["video"] },
]

[[seat]]
id = "seat-1"
name = "Dispatch 1"
matrix = "kvm"
computers = ["duty-pc", "video-pc", "gis-pc", "secure-pc"]
default_layout = "dispatch"
consoles = [
  { output = 1, name = "left", screens = ["left"] },
  { output = 2, name = "centre", screens = ["centre top", "centre bottom"] },
  { output = 3, name = "right" },
  { output = 4, name = "secure" },
]
[[seat.layouts]]
id = "dispatch"
name = "Dispatch"
routes = [
  { console = 1, computer = "duty-pc" },
  { console = 2, computer = "video-pc", mode = "video" },
  { console = 3, computer = "gis-pc" },
  { console = 4 },
]
[[seat.layouts]]
id = "patrol"
name = "Video patrol"
routes = [
  { console = 1, computer = "video-pc" },
  { console = 2, computer = "gis-pc", mode = "video" },
  { console = 3, computer = "duty-pc", mode = "video" },
  { console = 4 },
]
[[seat.layouts]]
id = "secure"
name = "Secure work"
routes = [
  { console = 1, computer = "duty-pc" },
  { console = 4, computer = "secure-pc" },
]

[[seat]]
id = "seat-2"
name = "Dispatch 2"
matrix = "kvm"
computers = ["duty-pc", "video-pc"]
consoles = [{ output = 5 }, { output = 6 }]

[[wall]]
id = "wall"
name = "Video wall"
matrix = "kvm"
outputs = [{ output = 7, name = "wall left" }, { output = 8, name = "wall right" }]
"""


def seats_config(tmp_path: Path, url: str, *, poll_ms: int = 200, extra: str = "") -> Path:
    device = """
        id = "kvm"
        kind = "matrix"
        driver = "ihse-draco"
        name = "Operator KVM"
        """
    path = device_on_a_line(
        tmp_path,
        url,
        device,
        poll_ms=poll_ms,
        timeout_ms=300,
        reconnect_max_ms=2000,
        options=f"cpus = {CPUS}\nconsoles = {CONSOLES}\n",
    )
    path.write_text(path.read_text() + SEATS + textwrap.dedent(extra))
    return path


@pytest.fixture
async def draco() -> AsyncIterator[DracoEmulator]:
    """The seats' matrix: an 8-CPU, 8-console Draco emulator on TCP, started."""
    emu = DracoEmulator(
        "127.0.0.1", free_port(), DracoEmulatorOptions(cpus=CPUS, consoles=CONSOLES)
    )
    await emu.start()
    yield emu
    await emu.stop()


async def operator_tokens(hall: Running, *names: str, role: str = "operator") -> dict[str, str]:
    """Tokens for named operators: the name is who they are to the rights."""
    return {name: await auth.create_token(hall.host.store, name, role) for name in names}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def seats_ready(hall: Running) -> None:
    await wait_for(lambda: hall.host.devices.get("kvm").available, timeout=5.0)


async def post(hall: Running, path: str, token: str, body: Any = None) -> httpx.Response:
    return await hall.client.post(f"/api/v1/seats/{path}", json=body, headers=bearer(token))


def connects(emu: DracoEmulator) -> list[protocol.Connection]:
    """Every connect frame the matrix received, in order (keep-alives left out)."""
    parser = protocol.Parser()
    events = [e for chunk in emu.received for e in parser.feed(chunk)]
    return [e for e in events if isinstance(e, protocol.Connection)]
