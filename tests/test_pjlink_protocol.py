"""The PJLink protocol on byte fixtures, each also fed split at every offset and byte by
byte: a reply cut anywhere by TCP must parse the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from daemon.errors import ProtocolError
from drivers.pjlink.protocol import (
    AuthRejected,
    Greeting,
    Parser,
    Reply,
    auth_digest,
    encode,
    parse_errors,
    parse_input,
    parse_power,
    parse_video_muted,
)

ERROR = "protocol error"

FIXTURES: list[tuple[bytes, list[Any]]] = [
    (b"PJLINK 0\r", [Greeting(None)]),
    (b"PJLINK 1 498e4a67\r", [Greeting("498e4a67")]),
    (b"PJLINK ERRA\r", [AuthRejected()]),
    (b"%1POWR=OK\r", [Reply("POWR", "OK")]),
    (b"%1POWR=ERR3\r", [Reply("POWR", "ERR3")]),
    (b"%1powr=1\r", [Reply("POWR", "1")]),
    (b"%1ERST=010200\r", [Reply("ERST", "010200")]),
    (b"%1INST=11 31 32\r", [Reply("INST", "11 31 32")]),
    (b"%1NAME=\r", [Reply("NAME", "")]),
    (b"%1INPT=31\r%1AVMT=30\r", [Reply("INPT", "31"), Reply("AVMT", "30")]),
    # CR LF line ends, from devices that add an LF.
    (b"%1POWR=OK\r\n%1INPT=31\r\n", [Reply("POWR", "OK"), Reply("INPT", "31")]),
    # The stream emulator's garbage, then a good line: the parser recovers.
    (b"\x00\xff\x13\x37garbage\xfe\r\n%1POWR=0\r", [ERROR, Reply("POWR", "0")]),
    (b"HELLO\r", [ERROR]),
    (b"%2POWR=OK\r", [ERROR]),
    (b"%1POWR OK\r", [ERROR]),
    # Too long, with and without a line end.
    (b"%1INFO=" + b"x" * 140 + b"\r", [ERROR]),
    (b"X" * 200, [ERROR]),
    (b"%1INFO=" + b"x" * 140 + b"\r%1POWR=1\r", [ERROR, Reply("POWR", "1")]),
    # Half a reply: nothing yet.
    (b"%1POWR=", []),
]


def normal(events: list[Any]) -> list[Any]:
    return [ERROR if isinstance(e, ProtocolError) else e for e in events]


@pytest.mark.parametrize("data,expected", FIXTURES, ids=[repr(f[0][:24]) for f in FIXTURES])
def test_fixture_whole_split_and_bytewise(data: bytes, expected: list[Any]) -> None:
    assert normal(Parser().feed(data)) == expected
    for cut in range(1, len(data)):
        parser = Parser()
        events = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert normal(events) == expected, f"split at {cut}"
    parser = Parser()
    assert normal([e for i in range(len(data)) for e in parser.feed(data[i : i + 1])]) == expected


def test_pending_and_reset() -> None:
    parser = Parser()
    assert parser.feed(b"%1POW") == [] and parser.pending
    parser.reset()
    assert not parser.pending
    # What was left of the old connection does not glue onto the new one's greeting.
    assert parser.feed(b"PJLINK 0\r") == [Greeting(None)]
    assert not parser.pending


def test_reply_error_codes() -> None:
    assert Reply("POWR", "OK").error is None
    assert Reply("INPT", "31").error is None
    assert [Reply("POWR", f"ERR{n}").error for n in range(1, 5)] == [
        "ERR1",
        "ERR2",
        "ERR3",
        "ERR4",
    ]
    assert Reply("POWR", "err3").error == "ERR3"


def test_auth_digest_spec_vector() -> None:
    # The example of the JBMIA PJLink specification.
    assert auth_digest("498e4a67", "JBMIAProjectorLink") == "5d8409bc1c3fa39749434aa3a5c38682"


def test_encode() -> None:
    assert encode("POWR", "1") == b"%1POWR 1\r"
    assert encode("INPT", "?") == b"%1INPT ?\r"
    digest = auth_digest("498e4a67", "JBMIAProjectorLink")
    assert encode("POWR", "?", digest) == b"5d8409bc1c3fa39749434aa3a5c38682%1POWR ?\r"
    for body, param in [("powr", "1"), ("POW", "1"), ("POWR", "1\r"), ("POWR", "x" * 129)]:
        with pytest.raises(ValueError):
            encode(body, param)


def test_parameters() -> None:
    assert [parse_power(p) for p in "0123"] == ["off", "on", "cooling", "warming"]
    assert parse_input("31") == "31" and parse_input("3a") == "3A"
    assert parse_video_muted("31") is True and parse_video_muted("11") is True
    assert parse_video_muted("30") is False and parse_video_muted("21") is False
    assert parse_errors("000000") == {}
    assert parse_errors("012001") == {"lamp": "warning", "temperature": "error", "other": "warning"}
    bad: list[tuple[Callable[[str], object], str]] = [
        (parse_power, "4"),
        (parse_input, "0"),
        (parse_input, "71"),
        (parse_video_muted, "32"),
        (parse_errors, "00000"),
        (parse_errors, "000300"),
    ]
    for parse, param in bad:
        with pytest.raises(ProtocolError):
            parse(param)
