"""The `ihse-draco` driver through the HTTP API, against the Draco emulator over TCP and
a real pty: every result is checked on the emulator's own connections, not the driver's
word."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.devices import Device
from drivers.emulators.stream import Fault, Session
from drivers.ihse import protocol as draco
from drivers.ihse.emulator import DracoEmulator, DracoEmulatorOptions
from tests.support import Running, device_on_a_line, free_port, running, wait_for

POLL_MS, TIMEOUT_MS, RECONNECT_MAX_MS = 200, 300, 2000
QUIET_POLL_MS = 3_600_000  # no poll after the first read: only what a test causes is sent
CPUS, CONSOLES = 8, 4
UNKNOWN = {str(c): None for c in range(1, CONSOLES + 1)}


def write_config(tmp_path: Path, url: str, poll_ms: int = POLL_MS) -> Path:
    device = """
        id = "kvm"
        kind = "matrix"
        driver = "ihse-draco"
        name = "Operator KVM"
        """
    options = f"cpus = {CPUS}\nconsoles = {CONSOLES}\n"
    return device_on_a_line(
        tmp_path,
        url,
        device,
        poll_ms=poll_ms,
        timeout_ms=TIMEOUT_MS,
        reconnect_max_ms=RECONNECT_MAX_MS,
        options=options,
    )


@pytest.fixture
async def kvm() -> AsyncIterator[DracoEmulator]:
    """An 8-CPU, 4-console matrix, not started: each test starts it on TCP or a pty."""
    emu = DracoEmulator(
        "127.0.0.1", free_port(), DracoEmulatorOptions(cpus=CPUS, consoles=CONSOLES)
    )
    yield emu
    await emu.stop()


async def act(hall: Running, action: str, **args: Any) -> httpx.Response:
    return await hall.client.post(
        f"/api/v1/devices/kvm/actions/{action}", json=args, headers=hall.as_role("operator")
    )


async def available(hall: Running) -> Device:
    device: Device = hall.host.devices.get("kvm")
    await wait_for(lambda: device.available, timeout=5.0)
    return device


def sent(emu: DracoEmulator, frame: bytes) -> int:
    return sum(chunk == frame for chunk in emu.received)


# -- actions --------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_every_mode_reaches_the_matrix(
    tmp_path: Path, kvm: DracoEmulator, transport: str
) -> None:
    if transport == "tcp":
        await kvm.start()
        url = f"tcp://127.0.0.1:{kvm.port}"
    else:
        url = await kvm.start_pty()
    async with running(write_config(tmp_path, url)) as hall:
        device = await available(hall)
        # Nothing reads connections back: unknown until routed or echoed.
        assert device.state == {"routes": UNKNOWN, "modes": UNKNOWN}

        for con, cpu, mode in [(1, 3, "full"), (2, 5, "video"), (3, 6, "private")]:
            r = await act(hall, "route", input=cpu, output=con, mode=mode)
            assert r.status_code == 200, r.text
            assert kvm.consoles[con] == (cpu, mode)
            state = r.json()["state"]
            assert state["routes"][str(con)] == cpu and state["modes"][str(con)] == mode
        assert sent(kvm, draco.connect(5, 2, "video")) == 1

        r = await act(hall, "route", input=4, output=4)  # no mode: full access
        assert r.status_code == 200 and kvm.consoles[4] == (4, "full")

        r = await act(hall, "route", input=0, output=1)  # input 0 disconnects
        assert r.status_code == 200, r.text
        assert kvm.routes[1] == 0
        assert r.json()["state"]["routes"]["1"] == 0 and r.json()["state"]["modes"]["1"] is None

        r = await act(hall, "route", input=2, mode="video")  # no output: every console
        assert r.status_code == 200, r.text
        assert kvm.consoles == {c: (2, "video") for c in range(1, CONSOLES + 1)}
        assert r.json()["state"] == {
            "routes": {str(c): 2 for c in range(1, CONSOLES + 1)},
            "modes": {str(c): "video" for c in range(1, CONSOLES + 1)},
        }


async def test_a_private_connection_refuses_another_consoles_view(
    tmp_path: Path, kvm: DracoEmulator
) -> None:
    await kvm.start()
    async with running(write_config(tmp_path, f"tcp://127.0.0.1:{kvm.port}")) as hall:
        device = await available(hall)
        assert (await act(hall, "route", input=5, output=2, mode="video")).status_code == 200

        # Console 1 takes CPU 5 privately: the matrix drops console 2's view and says so.
        r = await act(hall, "route", input=5, output=1, mode="private")
        assert r.status_code == 200, r.text
        assert kvm.consoles[1] == (5, "private") and kvm.routes[2] == 0
        await wait_for(lambda: device.state["routes"]["2"] == 0, timeout=2.0)

        r = await act(hall, "route", input=5, output=2, mode="video")
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "refused"
        assert "NAK" in error["message"] and "console 1 holds CPU 5 in private" in error["message"]
        assert kvm.routes[2] == 0 and kvm.consoles[1] == (5, "private")
        assert device.available  # it answered: refused, not gone

        # Once console 1 lets go, console 2 may look again.
        assert (await act(hall, "route", input=0, output=1)).status_code == 200
        r = await act(hall, "route", input=5, output=2, mode="video")
        assert r.status_code == 200 and kvm.consoles[2] == (5, "video")


async def test_a_switch_made_elsewhere_shows_without_any_call(
    tmp_path: Path, kvm: DracoEmulator
) -> None:
    await kvm.start()
    config = write_config(tmp_path, f"tcp://127.0.0.1:{kvm.port}", poll_ms=QUIET_POLL_MS)
    async with running(config) as hall:
        device = await available(hall)
        kvm.switch_elsewhere(7, 4, "video")
        await wait_for(lambda: device.state["routes"]["4"] == 7, timeout=2.0)
        assert device.state["modes"]["4"] == "video"
        r = await hall.client.get("/api/v1/devices/kvm", headers=hall.as_role("operator"))
        assert r.status_code == 200 and r.json()["state"]["routes"]["4"] == 7


async def test_bad_arguments_are_422_before_the_wire(tmp_path: Path, kvm: DracoEmulator) -> None:
    await kvm.start()
    config = write_config(tmp_path, f"tcp://127.0.0.1:{kvm.port}", poll_ms=QUIET_POLL_MS)
    async with running(config) as hall:
        device = await available(hall)
        before = len(kvm.received)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"input": 9, "output": 1}, "input 9"),
            ({"input": 1, "output": 5}, "output 5"),
            ({"input": 1, "output": 1, "mode": "shared"}, "mode"),
        ]
        for args, words in cases:
            r = await act(hall, "route", **args)
            assert r.status_code == 422, (args, r.text)
            assert words in r.json()["error"]["message"]
        assert len(kvm.received) == before and device.available


# -- a matrix that goes away ----------------------------------------------------------------
async def test_matrix_loss_and_return(tmp_path: Path, kvm: DracoEmulator) -> None:
    await kvm.start()
    async with running(write_config(tmp_path, f"tcp://127.0.0.1:{kvm.port}")) as hall:
        device = await available(hall)
        assert (await act(hall, "route", input=3, output=1)).status_code == 200

        await kvm.stop()
        await wait_for(lambda: not device.available, timeout=(POLL_MS + TIMEOUT_MS) / 1000 + 1)
        r = await act(hall, "route", input=4, output=1)
        assert r.status_code == 503 and r.json()["error"]["message"]

        await kvm.start()
        bound = (RECONNECT_MAX_MS + POLL_MS) / 1000 + 1
        await wait_for(lambda: device.available, timeout=bound)
        # What happened while we were away cannot be read back: unknown, not stale.
        assert device.state["routes"] == UNKNOWN
        r = await act(hall, "route", input=8, output=2)
        assert r.status_code == 200 and kvm.routes[2] == 8
        assert r.json()["state"]["routes"]["2"] == 8


# -- faults ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "words"),
    [(Fault.GARBAGE, "not a Draco frame"), (Fault.SILENT, "no answer")],
    ids=["garbage", "silence"],
)
async def test_faults_answer_503_or_504_and_the_matrix_comes_back(
    tmp_path: Path, kvm: DracoEmulator, fault: Fault, words: str
) -> None:
    await kvm.start()
    async with running(write_config(tmp_path, f"tcp://127.0.0.1:{kvm.port}")) as hall:
        device = await available(hall)
        kvm.fault = fault
        r = await act(hall, "route", input=5, output=2)
        assert r.status_code in (503, 504), r.text
        await wait_for(lambda: not device.available, timeout=3.0)
        assert words in (device.error or "")

        kvm.fault = Fault.NONE
        await wait_for(lambda: device.available, timeout=5.0)
        r = await act(hall, "route", input=5, output=2)
        assert r.status_code == 200, r.text
        assert kvm.routes[2] == 5


async def test_busy_is_retried_then_a_typed_error(tmp_path: Path, kvm: DracoEmulator) -> None:
    await kvm.start()
    config = write_config(tmp_path, f"tcp://127.0.0.1:{kvm.port}", poll_ms=QUIET_POLL_MS)
    async with running(config) as hall:
        device = await available(hall)
        kvm.busy_for(2)
        r = await act(hall, "route", input=3, output=2)
        assert r.status_code == 200, r.text
        assert kvm.routes[2] == 3 and sent(kvm, draco.connect(3, 2)) == 3  # two 07, then done

        kvm.busy_for(None)
        r = await act(hall, "route", input=4, output=2)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "device_busy"
        assert sent(kvm, draco.connect(4, 2)) == 4  # the first try and three retries
        assert device.available
        kvm.fault = Fault.NONE
        assert (await act(hall, "route", input=4, output=2)).status_code == 200


# -- the emulator on its own ----------------------------------------------------------------
def test_emulator_answers_like_a_matrix() -> None:
    emu = DracoEmulator("127.0.0.1", 0, DracoEmulatorOptions(cpus=CPUS, consoles=CONSOLES))
    session = Session(lambda data: None, lambda: None)
    frame = draco.connect(3, 2, "private")
    assert emu.feed(session, frame[:4]) == b""  # half a frame: wait for the rest
    assert emu.feed(session, frame[4:]) == b"\x06"
    assert emu.feed(session, draco.keep_alive()) == draco.keep_alive()
    assert emu.feed(session, draco.connect(3, 1, "video")) == b"\x15"  # held privately
    assert emu.feed(session, draco.connect(9, 1)) == b"\x15"  # no CPU 9
    assert emu.feed(session, draco.connect(1, 5)) == b"\x15"  # no console 5
    assert emu.feed(session, b"junk") == b"\x15"
    assert emu.consoles == {1: (0, "full"), 2: (3, "private"), 3: (0, "full"), 4: (0, "full")}
