"""Samsung MDC framing on byte fixtures, each also fed split at every offset."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from daemon.errors import ProtocolError
from drivers.samsung import protocol as mdc

# From PROTOCOLS.md: power on for display 1, and its ack.
POWER_ON_1 = bytes.fromhex("AA 11 01 01 01 14")
POWER_ON_ACK_1 = bytes.fromhex("AA FF 01 03 41 11 01 56")
# Status of display 1: on, volume 20, unmuted, HDMI2, aspect 0x10, timers 0.
STATUS_ACK_1 = bytes.fromhex("AA FF 01 09 41 00 01 14 00 23 10 00 00 92")
# Input source refused by display 1 with error code 2.
INPUT_NAK_1 = bytes.fromhex("AA FF 01 03 4E 14 02 67")
# The power-on ack from display 2 on the same chain.
POWER_ON_ACK_2 = bytes.fromhex("AA FF 02 03 41 11 01 57")


def shape(events: Sequence[object]) -> list[object]:
    """Events comparable across splits: a ProtocolError's text names the bytes it saw."""
    return ["ProtocolError" if isinstance(e, ProtocolError) else e for e in events]


def feed_split(parser: mdc.ReplyParser, data: bytes, at: int) -> list[object]:
    parser.reset()
    return shape([*parser.feed(data[:at]), *parser.feed(data[at:])])


def feed_bytewise(parser: mdc.ReplyParser, data: bytes) -> list[object]:
    parser.reset()
    return shape([e for b in data for e in parser.feed(bytes([b]))])


FIXTURES = [
    pytest.param(POWER_ON_ACK_1, [mdc.Ack(0x11, b"\x01")], id="power-ack"),
    pytest.param(
        STATUS_ACK_1, [mdc.Ack(0x00, bytes.fromhex("01 14 00 23 10 00 00"))], id="status-ack"
    ),
    pytest.param(INPUT_NAK_1, [mdc.Nak(0x14, 0x02)], id="nak"),
    pytest.param(POWER_ON_ACK_2, [], id="other-display-dropped"),
    pytest.param(
        POWER_ON_ACK_2 + INPUT_NAK_1 + POWER_ON_ACK_1,
        [mdc.Nak(0x14, 0x02), mdc.Ack(0x11, b"\x01")],
        id="chain-traffic",
    ),
    pytest.param(POWER_ON_1 + POWER_ON_ACK_1, [mdc.Ack(0x11, b"\x01")], id="echoed-request"),
    pytest.param(
        b"\x00\x13\x37noise" + POWER_ON_ACK_1,
        ["ProtocolError", mdc.Ack(0x11, b"\x01")],
        id="garbage-before-frame",
    ),
    pytest.param(
        POWER_ON_ACK_1[:-1] + b"\x57" + POWER_ON_ACK_1,
        ["ProtocolError", mdc.Ack(0x11, b"\x01")],
        id="bad-checksum-then-good",
    ),
    pytest.param(
        POWER_ON_ACK_1[:5] + STATUS_ACK_1,
        ["ProtocolError", mdc.Ack(0x00, bytes.fromhex("01 14 00 23 10 00 00"))],
        id="torn-frame-then-good",
    ),
    pytest.param(mdc.frame(mdc.REPLY, 1, b"\x41"), ["ProtocolError"], id="ack-without-command"),
    pytest.param(
        mdc.frame(mdc.REPLY, 1, b"\x58\x11\x01"), ["ProtocolError"], id="neither-ack-nor-nak"
    ),
]


@pytest.mark.parametrize(("data", "expected"), FIXTURES)
def test_fixture_whole_and_split_at_every_offset(data: bytes, expected: list[object]) -> None:
    parser = mdc.ReplyParser(1)
    assert shape(parser.feed(data)) == expected
    for at in range(len(data) + 1):
        assert feed_split(parser, data, at) == expected, f"split at {at}"
    assert feed_bytewise(parser, data) == expected


def test_encoding_matches_the_documented_bytes() -> None:
    assert mdc.set_value(mdc.POWER, 1, 1) == POWER_ON_1
    assert mdc.ack(1, mdc.POWER, b"\x01") == POWER_ON_ACK_1
    assert mdc.nak(1, mdc.INPUT, 2) == INPUT_NAK_1
    assert mdc.get(mdc.STATUS, 1) == bytes.fromhex("AA 00 01 00 01")
    assert mdc.set_value(mdc.INPUT, 0xFE, 0x21) == bytes.fromhex("AA 14 FE 01 21 34")
    # The checksum keeps its low 8 bits only.
    assert mdc.checksum(bytes([0xFF, 0xFE, 0x03])) == 0x00


def test_bad_checksum_is_an_error_not_a_reply() -> None:
    bad = POWER_ON_ACK_1[:-1] + b"\x00"
    [event] = mdc.ReplyParser(1).feed(bad)
    assert isinstance(event, ProtocolError)
    assert "checksum" in event.message


def test_one_error_per_run_of_garbage() -> None:
    parser = mdc.ReplyParser(1)
    events = parser.feed(b"\x00\xff\x13\x37garbage\xfe\r\n")
    assert shape(events) == ["ProtocolError"]
    assert parser.feed(b"more noise") == []  # the same run goes on
    assert parser.feed(POWER_ON_ACK_1) == [mdc.Ack(0x11, b"\x01")]
    assert shape(parser.feed(b"\x01")) == ["ProtocolError"]  # a new run


def test_partial_frame_is_kept_until_reset() -> None:
    parser = mdc.ReplyParser(1)
    assert parser.feed(POWER_ON_ACK_1[:4]) == []
    parser.reset()
    assert parser.feed(STATUS_ACK_1) == [mdc.Ack(0x00, bytes.fromhex("01 14 00 23 10 00 00"))]


def test_frame_reader_gives_requests_for_the_display_side() -> None:
    reader = mdc.FrameReader()
    assert reader.feed(POWER_ON_1 + mdc.get(mdc.STATUS, 2)) == [
        mdc.Frame(mdc.POWER, 1, b"\x01"),
        mdc.Frame(mdc.STATUS, 2, b""),
    ]


def test_status_layout() -> None:
    status = mdc.Status.from_data(bytes.fromhex("01 14 00 23 10 00 00"))
    assert status == mdc.Status(power=1, volume=20, mute=0, input=0x23)
    with pytest.raises(ProtocolError):
        mdc.Status.from_data(b"\x01\x14")


def test_nak_describes_its_code() -> None:
    assert "0x02" in mdc.Nak(0x14, 0x02).describe()
    assert "bad value" in mdc.Nak(0x14, 0x02).describe()
    assert "0x7F" in mdc.Nak(0x14, 0x7F).describe()
