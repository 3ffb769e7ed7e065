"""The PJLink emulator against two PJLink clients written by others (pypjlink2, blocking;
aiopjlink, asyncio), with and without a password: if the emulator and our driver shared
a misreading of the spec, these would disagree with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiopjlink import Errors as AioErrors
from aiopjlink import PJClass, PJLink, PJLinkERR3, PJLinkPassword, Power, Sources
from pypjlink import MUTE_AUDIO, MUTE_VIDEO, Projector
from pypjlink.projector import ProjectorError

from drivers.pjlink.emulator import PJLinkEmulator, PJLinkEmulatorOptions
from tests.support import free_port, wait_for

PASSWORDS = [None, "JBMIAProjectorLink"]


@pytest.fixture(params=PASSWORDS, ids=["no-password", "password"])
async def projector(request: pytest.FixtureRequest) -> AsyncIterator[PJLinkEmulator]:
    options = PJLinkEmulatorOptions(
        password=request.param, inputs=["11", "31", "32"], warmup_s=0.3, cooldown_s=0.3
    )
    emu = PJLinkEmulator("127.0.0.1", free_port(), options)
    await emu.start()
    yield emu
    await emu.stop()


def _pypjlink_session(port: int, password: str | None) -> dict[str, object]:
    """Runs in a thread: pypjlink blocks on its socket."""
    seen: dict[str, object] = {}
    with Projector.from_address("127.0.0.1", port, timeout=5) as p:
        seen["auth"] = p.authenticate(password)
        seen["power_before"] = p.get_power()
        p.set_power("on")
        seen["power_after_on"] = p.get_power()
        try:
            p.set_input("DIGITAL", 2)
        except ProjectorError as exc:
            seen["input_while_warming"] = str(exc)
        deadline = time.monotonic() + 5
        while p.get_power() != "on" and time.monotonic() < deadline:
            time.sleep(0.05)
        p.set_input("DIGITAL", 2)
        seen["input"] = p.get_input()
        p.set_mute(MUTE_VIDEO | MUTE_AUDIO, True)
        seen["muted"] = p.get_mute()
        p.set_mute(MUTE_AUDIO, False)
        seen["audio_unmuted"] = p.get_mute()
        p.set_mute(MUTE_VIDEO | MUTE_AUDIO, False)
        seen["unmuted"] = p.get_mute()
        seen["errors"] = p.get_errors()
        seen["inputs"] = p.get_inputs()
        seen["lamps"] = p.get_lamps()
        seen["name"] = p.get_name()
        try:
            p.set_input("VIDEO", 9)
        except ProjectorError as exc:
            seen["missing_input"] = str(exc)
        p.set_power("off")
        seen["power_after_off"] = p.get_power()
    return seen


async def test_pypjlink2(projector: PJLinkEmulator) -> None:
    projector.error_status = "020100"
    password = projector.options.password
    seen = await asyncio.to_thread(_pypjlink_session, projector.port, password)
    assert seen["auth"] is (None if password is None else True)
    assert seen["power_before"] == "off"
    assert seen["power_after_on"] == "warm-up"
    assert seen["input_while_warming"] == "unavailable time"
    assert seen["input"] == ("DIGITAL", 2) and projector.input == "32"
    assert seen["muted"] == (True, True)
    assert seen["audio_unmuted"] == (True, False)
    assert seen["unmuted"] == (False, False)
    assert not projector.video_muted and not projector.audio_muted
    assert seen["errors"] == {
        "fan": "ok",
        "lamp": "error",
        "temperature": "ok",
        "cover": "warning",
        "filter": "ok",
        "other": "ok",
    }
    assert seen["inputs"] == [("RGB", 1), ("DIGITAL", 1), ("DIGITAL", 2)]
    assert seen["lamps"] == [(1234, True)]
    assert seen["name"] == "gridhall emulator"
    assert seen["missing_input"] == "out of parameter"
    assert seen["power_after_off"] == "cooling" and projector.power == "cooling"


async def test_aiopjlink(projector: PJLinkEmulator) -> None:
    projector.error_status = "100002"
    password = projector.options.password
    async with PJLink("127.0.0.1", port=projector.port, password=password, timeout=2) as link:
        assert await link.power.get() == Power.State.OFF
        await link.power.turn_on()
        assert await link.power.get() == Power.State.WARMING
        with pytest.raises(PJLinkERR3):
            await link.sources.set(Sources.Mode.RGB, 1)
        await wait_for(lambda: projector.power == "on")
        assert await link.power.get() == Power.State.ON

        await link.sources.set(Sources.Mode.RGB, 1)
        assert await link.sources.get() == (Sources.Mode.RGB, "1")
        assert projector.input == "11"

        await link.mute.both(True)
        assert await link.mute.status() == (True, True)
        assert projector.video_muted and projector.audio_muted
        await link.mute.video(False)
        assert await link.mute.status() == (False, True)
        await link.mute.both(False)
        assert await link.mute.status() == (False, False)

        errors = await link.errors.query()
        assert errors[AioErrors.Category.FAN] == AioErrors.Level.WARN
        assert errors[AioErrors.Category.OTHER] == AioErrors.Level.ERROR
        assert errors[AioErrors.Category.LAMP] == AioErrors.Level.OK

        assert await link.info.pjlink_class() == PJClass.ONE
        assert await link.sources.available() == [
            (Sources.Mode.RGB, "1"),
            (Sources.Mode.DIGITAL, "1"),
            (Sources.Mode.DIGITAL, "2"),
        ]
        await link.power.turn_off()
        assert await link.power.get() == Power.State.COOLING
    assert projector.power == "cooling"


async def test_wrong_password_with_both_clients() -> None:
    options = PJLinkEmulatorOptions(password="JBMIAProjectorLink")
    emu = PJLinkEmulator("127.0.0.1", free_port(), options)
    await emu.start()
    try:
        link = PJLink("127.0.0.1", port=emu.port, password="wrong", timeout=2)
        try:
            with pytest.raises(PJLinkPassword, match="authentication failed"):
                await link.__aenter__()
        finally:
            # aiopjlink 1.0.5 leaves its socket open when __aenter__ raises.
            link._writer.close()

        def pypjlink_auth() -> object:
            with Projector.from_address("127.0.0.1", emu.port, timeout=5) as p:
                return p.authenticate("wrong")

        assert await asyncio.to_thread(pypjlink_auth) is False
        assert [answer for _, answer in emu.log] == ["ERRA", "ERRA"]
    finally:
        await emu.stop()
