"""The `extron-sis` driver through the HTTP API, against the SIS emulator over TCP and a
real pty: every result is checked on the emulator's own ties, not the driver's word."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.config import ConfigError, load
from daemon.devices import Device
from daemon.pluginhost import PluginHost
from drivers.emulators.stream import Fault, Session
from drivers.extron.emulator import ExtronEmulator, ExtronEmulatorOptions
from tests.support import Running, device_on_a_line, free_port, running, wait_for

POLL_MS, TIMEOUT_MS, RECONNECT_MAX_MS = 200, 300, 2000
QUIET_POLL_MS = 3_600_000  # no poll after the first read: only what a test causes is sent


def write_config(tmp_path: Path, url: str, options: str = "", poll_ms: int = POLL_MS) -> Path:
    device = """
        id = "matrix"
        kind = "matrix"
        driver = "extron-sis"
        name = "Video wall matrix"
        """
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
async def switcher() -> AsyncIterator[ExtronEmulator]:
    """An 8x4 switcher, not started: each test starts it on TCP or on a pty."""
    emu = ExtronEmulator("127.0.0.1", free_port(), ExtronEmulatorOptions(inputs=8, outputs=4))
    yield emu
    await emu.stop()


def matrix(hall: Running) -> Device:
    return hall.host.devices.get("matrix")


async def act(hall: Running, action: str, **args: Any) -> httpx.Response:
    return await hall.client.post(
        f"/api/v1/devices/matrix/actions/{action}", json=args, headers=hall.as_role("operator")
    )


async def available(hall: Running) -> Device:
    device = matrix(hall)
    await wait_for(lambda: device.available, timeout=5.0)
    return device


def sent(emu: ExtronEmulator, command: bytes) -> int:
    return sum(chunk == command for chunk in emu.received)


# -- actions --------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_every_action_reaches_the_switcher(
    tmp_path: Path, switcher: ExtronEmulator, transport: str
) -> None:
    if transport == "tcp":
        await switcher.start()
        url, options = f"tcp://127.0.0.1:{switcher.port}", ""  # the size is asked with `I`
    else:
        url, options = await switcher.start_pty(), "inputs = 8\noutputs = 4\n"
    switcher.routes.update({1: 4, 3: 8})
    async with running(write_config(tmp_path, url, options)) as hall:
        device = await available(hall)
        assert device.state == {"routes": {"1": 4, "2": 0, "3": 8, "4": 0}}
        assert (sent(switcher, b"I") == 1) is (transport == "tcp")

        r = await act(hall, "route", input=3, output=2)
        assert r.status_code == 200, r.text
        assert r.json()["state"]["routes"]["2"] == 3 and switcher.routes[2] == 3

        r = await act(hall, "route", input=5)  # no output: every output
        assert r.status_code == 200, r.text
        assert switcher.routes == {1: 5, 2: 5, 3: 5, 4: 5}
        assert r.json()["state"]["routes"] == {"1": 5, "2": 5, "3": 5, "4": 5}

        r = await act(hall, "route", input=0, output=1)  # input 0 unties
        assert r.status_code == 200, r.text
        assert switcher.routes[1] == 0 and r.json()["state"]["routes"]["1"] == 0

        r = await act(hall, "save_preset", preset=7)
        assert r.status_code == 200, r.text
        assert switcher.presets[7][0] == {1: 0, 2: 5, 3: 5, 4: 5}

        r = await act(hall, "route", input=0)  # untie all
        assert r.status_code == 200, r.text
        assert switcher.routes == {1: 0, 2: 0, 3: 0, 4: 0}
        assert set(r.json()["state"]["routes"].values()) == {0}

        r = await act(hall, "recall_preset", preset=7)
        assert r.status_code == 200, r.text
        assert switcher.routes == {1: 0, 2: 5, 3: 5, 4: 5}
        assert r.json()["state"]["routes"] == {"1": 0, "2": 5, "3": 5, "4": 5}

        r = await act(hall, "route", input=2, output=3, mode="video")  # breakaway
        assert r.status_code == 200, r.text
        assert switcher.routes[3] == 2 and switcher.audio[3] == 5
        assert sent(switcher, b"2*3%") == 1


async def test_bad_numbers_are_422_and_the_switcher_stays_available(
    tmp_path: Path, switcher: ExtronEmulator
) -> None:
    await switcher.start()
    # The config claims 16 inputs: input 12 passes our check and the switcher says E01.
    config = write_config(tmp_path, f"tcp://127.0.0.1:{switcher.port}", "inputs = 16\n")
    async with running(config) as hall:
        device = await available(hall)
        for args, words in [
            ({"input": 12, "output": 1}, "E01"),  # the switcher's own refusal
            ({"input": 9, "output": 5}, "output 5"),  # refused before the wire
            ({"input": 17}, "input 17"),
            ({"input": 1, "output": 1, "mode": "private"}, "mode"),
        ]:
            r = await act(hall, "route", **args)
            assert r.status_code == 422, (args, r.text)
            assert words in r.json()["error"]["message"]
        r = await act(hall, "recall_preset", preset=9)  # nothing saved there: E11
        assert r.status_code == 422 and "E11" in r.json()["error"]["message"]
        r = await act(hall, "save_preset", preset=0)
        assert r.status_code == 422
        assert device.available
        assert switcher.routes == {1: 0, 2: 0, 3: 0, 4: 0}


async def test_more_outputs_configured_than_the_switcher_has(
    tmp_path: Path, switcher: ExtronEmulator
) -> None:
    await switcher.start()
    config = write_config(tmp_path, f"tcp://127.0.0.1:{switcher.port}", "outputs = 6\n")
    async with running(config) as hall:
        device = matrix(hall)
        await wait_for(lambda: device.error is not None and "E12" in device.error)
        assert not device.available and "options.outputs" in (device.error or "")


# -- the front panel ------------------------------------------------------------------------
async def test_front_panel_ties_show_without_any_call(
    tmp_path: Path, switcher: ExtronEmulator
) -> None:
    await switcher.start()
    config = write_config(tmp_path, f"tcp://127.0.0.1:{switcher.port}", poll_ms=QUIET_POLL_MS)
    async with running(config) as hall:
        device = await available(hall)
        requests = len(switcher.received)
        switcher.front_panel_tie(6, 3)
        await wait_for(lambda: device.state["routes"]["3"] == 6, timeout=2.0)
        switcher.front_panel_tie(2)
        await wait_for(lambda: set(device.state["routes"].values()) == {2}, timeout=2.0)
        assert len(switcher.received) == requests  # nothing was asked: it was pushed
        r = await hall.client.get("/api/v1/devices/matrix", headers=hall.as_role("viewer"))
        assert r.json()["state"]["routes"] == {"1": 2, "2": 2, "3": 2, "4": 2}


class RackDuringQuery(ExtronEmulator):
    """Someone at the rack ties input 7 to output 1 just as the driver asks about output 2:
    the report lands between the query and its answer."""

    def feed(self, session: Session, data: bytes) -> bytes:
        reply = super().feed(session, data)
        if data == b"2%" and self.routes[1] != 7:
            self.routes[1] = 7
            return b"Out01 In07 All\r\n" + reply
        return reply


async def test_a_front_panel_report_between_a_query_and_its_answer(tmp_path: Path) -> None:
    emu = RackDuringQuery("127.0.0.1", free_port(), ExtronEmulatorOptions(inputs=8, outputs=4))
    emu.routes[2] = 3
    await emu.start()
    try:
        config = write_config(tmp_path, f"tcp://127.0.0.1:{emu.port}", poll_ms=QUIET_POLL_MS)
        async with running(config) as hall:
            device = await available(hall)
            # Output 2 read as 3 (not as the report's 7), output 1 as the report said,
            # though it was read before the report came.
            assert device.state["routes"] == {"1": 7, "2": 3, "3": 0, "4": 0}
    finally:
        await emu.stop()


# -- passwords ------------------------------------------------------------------------------
async def test_password_login(tmp_path: Path) -> None:
    emu = ExtronEmulator("127.0.0.1", free_port(), ExtronEmulatorOptions(password="s3cret"))
    await emu.start()
    try:
        config = write_config(tmp_path, f"tcp://127.0.0.1:{emu.port}", 'password = "s3cret"\n')
        async with running(config) as hall:
            device = await available(hall)
            assert sent(emu, b"s3cret\r") == 1
            r = await act(hall, "route", input=4, output=4)
            assert r.status_code == 200, r.text
            assert emu.routes[4] == 4
            # A new connection is a new login.
            await emu.stop()
            await wait_for(lambda: not device.available, timeout=(POLL_MS + TIMEOUT_MS) / 1000 + 1)
            await emu.start()
            await wait_for(
                lambda: device.available, timeout=(RECONNECT_MAX_MS + POLL_MS) / 1000 + 1
            )
            assert sent(emu, b"s3cret\r") == 2
            assert (await act(hall, "route", input=5, output=4)).status_code == 200
    finally:
        await emu.stop()


@pytest.mark.parametrize(
    ("options", "words"),
    [('password = "wrong"\n', "refused options.password"), ("", "set options.password")],
    ids=["wrong password", "no password"],
)
async def test_login_failure_leaves_the_device_unavailable(
    tmp_path: Path, options: str, words: str
) -> None:
    emu = ExtronEmulator("127.0.0.1", free_port(), ExtronEmulatorOptions(password="s3cret"))
    await emu.start()
    try:
        async with running(write_config(tmp_path, f"tcp://127.0.0.1:{emu.port}", options)) as hall:
            device = matrix(hall)
            await wait_for(lambda: words in (device.error or ""), timeout=5.0)
            r = await hall.client.get("/api/v1/devices/matrix", headers=hall.as_role("viewer"))
            body = r.json()
            assert body["available"] is False and words in body["error"]
            r = await act(hall, "route", input=1, output=1)
            assert r.status_code == 503 and words in r.json()["error"]["message"]
            assert emu.routes[1] == 0
    finally:
        await emu.stop()


# -- a switcher that goes away --------------------------------------------------------------
async def test_switcher_loss_and_return(tmp_path: Path, switcher: ExtronEmulator) -> None:
    await switcher.start()
    async with running(write_config(tmp_path, f"tcp://127.0.0.1:{switcher.port}")) as hall:
        device = await available(hall)
        assert (await act(hall, "route", input=3, output=1)).status_code == 200

        await switcher.stop()
        # One poll interval plus the timeout, and a second of slack for a loaded machine.
        await wait_for(lambda: not device.available, timeout=(POLL_MS + TIMEOUT_MS) / 1000 + 1)
        r = await act(hall, "route", input=4, output=1)
        assert r.status_code == 503 and r.json()["error"]["message"]
        # Someone switched at the rack while we could not see it.
        switcher.routes.update({1: 7, 4: 2})

        await switcher.start()
        # Back within the backoff bound, plus one poll and a connect.
        bound = (RECONNECT_MAX_MS + POLL_MS) / 1000 + 1
        await wait_for(lambda: device.available, timeout=bound)
        assert device.state["routes"] == {"1": 7, "2": 0, "3": 0, "4": 2}
        r = await act(hall, "route", input=8, output=2)
        assert r.status_code == 200 and switcher.routes[2] == 8


# -- faults ---------------------------------------------------------------------------------
def garbage(emu: ExtronEmulator) -> None:
    emu.fault = Fault.GARBAGE


def silence(emu: ExtronEmulator) -> None:
    emu.fault = Fault.SILENT


def half_frames(emu: ExtronEmulator) -> None:
    emu.half_replies = True


def clear(emu: ExtronEmulator) -> None:
    emu.fault = Fault.NONE
    emu.half_replies = False


@pytest.mark.parametrize(
    ("fault", "words"),
    [(garbage, "not an SIS line"), (silence, "no answer"), (half_frames, "no answer")],
    ids=["garbage", "silence", "half frames"],
)
async def test_faults_answer_503_or_504_and_the_switcher_comes_back(
    tmp_path: Path, switcher: ExtronEmulator, fault: Any, words: str
) -> None:
    await switcher.start()
    async with running(write_config(tmp_path, f"tcp://127.0.0.1:{switcher.port}")) as hall:
        device = await available(hall)
        fault(switcher)
        r = await act(hall, "route", input=5, output=2)
        assert r.status_code in (503, 504), r.text
        assert r.json()["error"]["message"]
        # Whichever met the fault first, the action or a poll, says what it was.
        await wait_for(lambda: not device.available, timeout=3.0)
        assert words in (device.error or "")
        health = await hall.client.get("/api/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"

        clear(switcher)
        switcher.routes[4] = 6
        await wait_for(lambda: device.available, timeout=5.0)
        assert device.state["routes"]["4"] == 6
        r = await act(hall, "route", input=5, output=2)
        assert r.status_code == 200, r.text
        assert switcher.routes[2] == 5 and r.json()["state"]["routes"]["2"] == 5


async def test_busy_is_retried_then_a_typed_error(tmp_path: Path, switcher: ExtronEmulator) -> None:
    await switcher.start()
    config = write_config(tmp_path, f"tcp://127.0.0.1:{switcher.port}", poll_ms=QUIET_POLL_MS)
    async with running(config) as hall:
        device = await available(hall)
        switcher.busy_for(2)
        r = await act(hall, "route", input=3, output=2)
        assert r.status_code == 200, r.text
        assert switcher.routes[2] == 3
        assert sent(switcher, b"3*2!") == 3  # two E22, then done

        switcher.busy_for(None)  # busy for good
        r = await act(hall, "route", input=4, output=2)
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "device_busy" and "E22" in error["message"]
        assert sent(switcher, b"4*2!") == 4  # the first try and three retries
        assert device.available  # it answered: busy, not gone
        switcher.fault = Fault.NONE
        assert (await act(hall, "route", input=4, output=2)).status_code == 200
        assert switcher.routes[2] == 4


# -- the emulator on its own, and the options -----------------------------------------------
def test_emulator_answers_like_a_switcher() -> None:
    emu = ExtronEmulator("127.0.0.1", 0, ExtronEmulatorOptions(inputs=8, outputs=4))
    session = Session(lambda data: None, lambda: None)
    assert emu.feed(session, b"3*2!") == b"Out02 In03 All\r\n"
    assert emu.feed(session, b"2%") == b"03\r\n"
    assert emu.feed(session, b"9*1!1*5!") == b"E01\r\nE12\r\n"
    assert emu.feed(session, b"1") == b""  # half a command: wait for the rest
    assert emu.feed(session, b"0.") == b"E11\r\n"
    assert emu.feed(session, b"I\r\nQ") == b"V8X4 A8X4\r\n1.23\r\n"
    assert emu.feed(session, b"x") == b"E10\r\n"


def test_emulator_locks_a_tcp_session_until_the_password() -> None:
    emu = ExtronEmulator("127.0.0.1", 0, ExtronEmulatorOptions(password="pw"))
    session = Session(lambda data: None, lambda: None)
    assert emu.greeting(session).endswith(b"\r\nPassword:")
    assert emu.feed(session, b"3*2!") == b""  # taken as the start of a password
    assert emu.feed(session, b"\r") == b"\r\nPassword:"
    assert emu.feed(session, b"pw\r") == b"\r\nLogin Administrator\r\n"
    assert emu.feed(session, b"3*2!") == b"Out02 In03 All\r\n"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ("inputs = 0", "greater than or equal to 1"),
        ('inputs = "8"', "valid integer"),
        ("outputs = true", "valid integer"),
        ('password = "two\\nlines"', "printable ASCII"),
        ("busy_retries = 99", "less than or equal to 10"),
        ("colour = 1", "unknown key"),
    ],
)
def test_options_are_validated(tmp_path: Path, options: str, words: str) -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as err:
        load(write_config(tmp_path, "tcp://127.0.0.1:1", options + "\n"), plugins)
    [issue] = err.value.issues
    assert "options." in issue.message and words in issue.message
