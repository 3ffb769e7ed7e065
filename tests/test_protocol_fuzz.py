"""Every protocol parser fed random and mutated frames (hypothesis): the valid fixtures
of each protocol's own tests with bits flipped, cut short, repeated, glued together,
with bytes inserted or taken out and lengths no frame has, fed in chunks as a socket
hands them over. Nothing escapes but the parser's own events (`ProtocolError` among
them), the bytes a parser keeps stay within its protocol's longest frame, and a feed
always returns. The Modbus answers come from the real pymodbus server, mangled on
their way out, through the link the relay and fan drivers use.

Each test runs a fixed number of examples (FUZZ), so `make test` stays bounded; set
GRIDHALL_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import asyncio
import os
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from daemon.errors import GridhallError, ProtocolError
from drivers.extron import protocol as sis
from drivers.ihse import protocol as draco
from drivers.modbus.link import ModbusLink
from drivers.mqtt.driver import MqttRelay, MqttRelayOptions
from drivers.pjlink import protocol as pjlink
from drivers.samsung import protocol as mdc
from tests import test_extron_protocol, test_ihse_protocol, test_pjlink_protocol
from tests import test_samsung_protocol as samsung_tests
from tests.support import ThreadedEmulator, relay_config, running, wait_for

FUZZ = settings(
    max_examples=int(os.environ.get("GRIDHALL_FUZZ_EXAMPLES", "200")),
    deadline=None,  # a shared 2-core machine: "no hang" is the feed's own bound below
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CHUNK = 4096  # what a StreamLink reads at once


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], huge: Sequence[bytes]) -> bytes:
    """Valid frames glued together, then a few mutations; or bytes from nowhere."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2 * CHUNK))
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(seeds), min_size=1, max_size=4))))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "repeat", "huge"]))
        if op == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "repeat":
            data *= draw(st.integers(2, 12))
        elif op == "huge":
            data[at:at] = draw(st.sampled_from(huge))
    return bytes(data)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` as a socket might hand it over: cut at `cuts`, no chunk over CHUNK."""
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    return [p[i : i + CHUNK] for p in pieces for i in range(0, len(p), CHUNK)]


CUTS = st.lists(st.integers(0, 1 << 16), max_size=12)


def check_parser(
    feed: Callable[[bytes], list[Any]],
    kept: Callable[[], int],
    allowed: tuple[type, ...],
    longest: int,
    data: bytes,
    cuts: list[int],
) -> None:
    for chunk in chunked(data, cuts):
        events = feed(chunk)
        assert isinstance(events, list)
        for event in events:
            assert isinstance(event, allowed), f"{event!r} from {chunk[:64]!r}"
        assert kept() <= longest, f"{kept()} bytes kept after {chunk[:64]!r}"


def event_types(union: Any) -> tuple[type, ...]:
    return tuple(typing.get_args(union))


def seeds_of(fixtures: Sequence[Any]) -> list[bytes]:
    return [next(v for v in f if isinstance(v, bytes)) for f in fixtures]


# -- Extron SIS ---------------------------------------------------------------------
SIS_SEEDS = seeds_of(test_extron_protocol.FIXTURES) + [b"Password:", b"E22\r\n", b"\r\n"]


@FUZZ
@given(mutated(SIS_SEEDS, [b"9" * 5000, b"Out" * 2000, b"\r" * 3000]), CUTS)
def test_extron_sis(data: bytes, cuts: list[int]) -> None:
    parser = sis.Parser()
    check_parser(
        parser.feed, lambda: len(parser._buffer), event_types(sis.Event), sis.MAX_LINE, data, cuts
    )


@FUZZ
@given(st.binary(max_size=64), st.sampled_from(SIS_SEEDS))
def test_extron_answers_pairs_anything_with_any_event(command: bytes, line: bytes) -> None:
    predicate = sis.answers(command)
    for event in sis.Parser().feed(line + b"\r\n"):
        assert predicate(event) in (True, False)
        if isinstance(event, sis.Error):
            assert isinstance(sis.exception_for(event, "a command"), GridhallError)


# -- IHSE Draco ---------------------------------------------------------------------
DRACO_SEEDS = seeds_of(test_ihse_protocol.FIXTURES)
DRACO_HUGE = [
    bytes.fromhex("1b5b62ffff"),  # a length no frame has
    bytes.fromhex("1b5b62ff03") + b"\x00" * 40,  # the longest allowed, and far too little
    b"\x1b" * 3000,
]


@FUZZ
@given(mutated(DRACO_SEEDS, DRACO_HUGE), CUTS)
def test_ihse_draco(data: bytes, cuts: list[int]) -> None:
    parser = draco.Parser()
    allowed = event_types(draco.Event)
    check_parser(parser.feed, lambda: len(parser._buffer), allowed, draco.MAX_FRAME, data, cuts)


# -- PJLink -------------------------------------------------------------------------
PJLINK_SEEDS = [f[0] for f in test_pjlink_protocol.FIXTURES]


@FUZZ
@given(mutated(PJLINK_SEEDS, [b"%1POWR=" + b"1" * 5000, b"\n" * 3000, b"PJLINK 1 " * 600]), CUTS)
def test_pjlink(data: bytes, cuts: list[int]) -> None:
    parser = pjlink.Parser()
    allowed = event_types(pjlink.Event)
    check_parser(parser.feed, lambda: len(parser._buffer), allowed, pjlink.MAX_LINE, data, cuts)


@FUZZ
@given(st.text(max_size=300))
def test_pjlink_parameters_fail_only_as_protocol_errors(param: str) -> None:
    for parse in (
        pjlink.parse_power,
        pjlink.parse_input,
        pjlink.parse_video_muted,
        pjlink.parse_errors,
    ):
        try:
            parse(param)
        except ProtocolError:
            pass
    assert pjlink.Reply("POWR", param).error in (None, *pjlink.DEVICE_ERRORS)


# -- Samsung MDC --------------------------------------------------------------------
MDC_SEEDS = [p.values[0] for p in samsung_tests.FIXTURES]
MDC_HUGE = [bytes.fromhex("aaff01ff41") + b"\x00" * 100, b"\xaa" * 3000]


@FUZZ
@given(mutated(MDC_SEEDS, MDC_HUGE), CUTS)
def test_samsung_mdc(data: bytes, cuts: list[int]) -> None:
    parser = mdc.ReplyParser(1)
    allowed = (mdc.Ack, mdc.Nak, ProtocolError)
    longest = 4 + mdc.MAX_DATA + 1  # header, command, id, length, data, checksum
    check_parser(parser.feed, lambda: len(parser._reader._buffer), allowed, longest, data, cuts)


@FUZZ
@given(st.binary(max_size=300))
def test_samsung_status_fails_only_as_a_protocol_error(data: bytes) -> None:
    try:
        status = mdc.Status.from_data(data)
    except ProtocolError:
        return
    assert len(data) >= 4 and status.power == data[0]


# -- the mqtt driver's payloads ------------------------------------------------------
@FUZZ
@given(st.binary(max_size=500))
def test_mqtt_payloads_fail_only_as_protocol_errors(payload: bytes) -> None:
    relay: Any = types.SimpleNamespace(options=MqttRelayOptions())
    try:
        assert MqttRelay._parse(relay, 1, payload) in (True, False)
    except ProtocolError:
        pass
    try:
        assert isinstance(MqttRelay._parse_speed(payload), int)
    except ProtocolError:
        pass


# -- Modbus: pymodbus's answers, mangled, through our link ---------------------------
COILS = [True, False, True, True, False, False, True, False]


@st.composite
def mangling(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    """How an RTU answer goes wrong on a noisy line or a bad converter."""
    op = draw(st.sampled_from(["flip", "cut", "append", "twice", "length", "exception"]))
    at, bit = draw(st.integers(0, 300)), draw(st.integers(0, 7))
    junk = draw(st.binary(min_size=1, max_size=32))
    code = draw(st.integers(0, 255))

    def mangle(frame: bytes) -> bytes:
        data = bytearray(frame)
        i = at % len(data)
        if op == "flip":
            data[i] ^= 1 << bit
        elif op == "cut":
            del data[i:]
        elif op == "append":
            data += junk
        elif op == "twice":
            data *= 2
        elif op == "length" and len(data) > 2:
            data[2] = code  # the byte count of a read's answer
        elif op == "exception" and len(data) > 2:
            data[1] |= 0x80
            data[2] = code
        return bytes(data)

    return mangle


async def read_coils(port: int) -> list[bool] | GridhallError:
    link = ModbusLink.from_url(f"socket://127.0.0.1:{port}", timeout=0.2)
    await link.open()
    try:
        async with asyncio.timeout(5):  # no hang: the link's own timeout answers first
            return await link.read_coils(1, 0, len(COILS))
    except GridhallError as exc:
        return exc
    finally:
        await link.close()


@pytest.fixture(scope="module")
def rtu_gateway() -> Any:
    """A gateway answering RTU frames over TCP, as a serial-to-Ethernet converter."""
    from drivers.modbus.emulator import ModbusEmulator, ModbusOptions
    from tests.support import free_port

    emulator = ModbusEmulator("127.0.0.1", free_port(), ModbusOptions(units=[1], coils=16))
    emulator.rtu = True
    with ThreadedEmulator(emulator) as threaded:
        threaded.call(emulator.set_coils(1, 0, COILS))
        yield threaded


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 40))
@given(mangling())
def test_modbus_answers_are_right_or_a_typed_error(rtu_gateway: Any, mangle: Any) -> None:
    """RTU carries a CRC: a mangled answer is never taken for another state."""
    rtu_gateway.emulator.mangle = mangle
    try:
        got = asyncio.run(read_coils(rtu_gateway.port))
    finally:
        rtu_gateway.emulator.mangle = None
    assert got == COILS or isinstance(got, GridhallError), got


async def test_a_board_answering_mangled_frames_is_unavailable_then_back(
    tmp_path: Path, modbus: Any
) -> None:
    """Through the whole daemon: answers cut short leave the client waiting for the
    rest, so the board goes unavailable with a typed error and actions answer 503/504;
    once the answers are whole again, the board comes back."""

    def cut_short(frame: bytes) -> bytes:
        return frame[:-2]

    async with running(relay_config(tmp_path, modbus.port)) as hall:
        relay = hall.host.devices.get("relay")
        await wait_for(lambda: relay.available)
        modbus.mangle = cut_short
        await wait_for(lambda: not relay.available, timeout=5)
        assert relay.error
        op = hall.as_role("operator")
        r = await hall.client.post("/api/v1/devices/relay/actions/on", headers=op)
        assert r.status_code in (503, 504) and r.json()["error"]["message"]
        modbus.mangle = None
        await wait_for(lambda: relay.available, timeout=5)
