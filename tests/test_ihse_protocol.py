"""IHSE Draco tera, sans-I/O: commands to bytes, and byte fixtures to events, each fixture
fed whole, split in two at every offset, and one byte at a time."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.errors import ProtocolError
from drivers.ihse import protocol as draco
from drivers.ihse.protocol import Ack, Busy, Connection, Frame, KeepAlive, Nak, Parser

GARBAGE = "garbage"  # how a ProtocolError shows in the expected events

CONNECT_3_TO_2_VIDEO = bytes.fromhex("1b5b620b00 0300 0200 0100")
FIXTURES: list[tuple[str, bytes, list[Any]]] = [
    ("ack", b"\x06", [Ack()]),
    ("nak", b"\x15", [Nak()]),
    ("busy", b"\x07", [Busy()]),
    ("keep-alive echo", bytes.fromhex("1b5b7a0500"), [KeepAlive()]),
    ("echoed switch", CONNECT_3_TO_2_VIDEO, [Connection(3, 2, 1)]),
    (
        "private, CPU 300 on console 16",
        bytes.fromhex("1b5b620b00 2c01 1000 0300"),
        [Connection(300, 16, 3)],
    ),
    ("disconnect", bytes.fromhex("1b5b620b00 0000 0400 0000"), [Connection(0, 4, 0)]),
    (
        "ack then an echo then busy",
        b"\x06" + CONNECT_3_TO_2_VIDEO + b"\x07",
        [Ack(), Connection(3, 2, 1), Busy()],
    ),
    ("a login frame", bytes.fromhex("1b5b650900 0200 0700"), [Frame(0x65, bytes([2, 0, 7, 0]))]),
    ("garbage", b"\x00\xff\x13\x37garbage\xfe\r\n", [GARBAGE]),
    ("a length below the header", bytes.fromhex("1b5b620300"), [GARBAGE]),
    ("a connect with a short payload", bytes.fromhex("1b5b620900 0300 0200"), [GARBAGE]),
    ("escape then no bracket", b"\x1bX", [GARBAGE]),
]


def shown(events: list[Any]) -> list[Any]:
    """Events, with a run of garbage as one: garbage split over chunks is reported per
    chunk (the parser cannot tell where it ends), and the first report is what counts."""
    out: list[Any] = []
    for event in events:
        item = GARBAGE if isinstance(event, ProtocolError) else event
        if not (item == GARBAGE and out and out[-1] == GARBAGE):
            out.append(item)
    return out


def chunkings(data: bytes) -> list[list[bytes]]:
    splits = [[data[:i], data[i:]] for i in range(1, len(data))]
    return [[data], *splits, [data[i : i + 1] for i in range(len(data))]]


@pytest.mark.parametrize(("name", "data", "expected"), FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_whole_and_split_everywhere(name: str, data: bytes, expected: list[Any]) -> None:
    for chunks in chunkings(data):
        parser = Parser()
        events = [e for chunk in chunks for e in parser.feed(chunk)]
        assert shown(events) == expected, (name, chunks)


def test_a_frame_after_garbage_parses_once_the_garbage_is_dropped() -> None:
    parser = Parser()
    assert shown(parser.feed(b"\x00junk")) == [GARBAGE]
    assert parser.feed(b"\x06") == [Ack()]


def test_reset_drops_half_a_frame() -> None:
    parser = Parser()
    assert parser.feed(CONNECT_3_TO_2_VIDEO[:7]) == []
    parser.reset()
    assert parser.feed(b"\x06") == [Ack()]


@pytest.mark.parametrize(
    ("args", "wire"),
    [
        ((3, 2, "full"), "1b5b620b00 0300 0200 0000"),
        ((3, 2, "video"), "1b5b620b00 0300 0200 0100"),
        ((3, 2, "private"), "1b5b620b00 0300 0200 0300"),
        ((0, 5, "full"), "1b5b620b00 0000 0500 0000"),
        ((513, 258, "full"), "1b5b620b00 0102 0201 0000"),  # little-endian words
    ],
)
def test_connect_bytes(args: tuple[int, int, draco.Mode], wire: str) -> None:
    assert draco.connect(*args) == bytes.fromhex(wire)


def test_keep_alive_bytes_and_every_frame_round_trips() -> None:
    assert draco.keep_alive() == bytes.fromhex("1b5b7a0500")
    frame = draco.connect(12, 7, "private")
    assert len(frame) == frame[3] == 11
    assert Parser().feed(frame + draco.keep_alive()) == [Connection(12, 7, 3), KeepAlive()]
