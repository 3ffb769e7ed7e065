"""Extron SIS, sans-I/O: commands to bytes, and byte fixtures to events, each fixture
fed whole, split in two at every offset, and one byte at a time."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.errors import BadArguments, DeviceRejected, ProtocolError
from drivers.extron import protocol as sis
from drivers.extron.protocol import (
    DeviceBusy,
    Error,
    FrontPanel,
    LoginOk,
    Parser,
    PasswordPrompt,
    PresetRecalled,
    PresetSaved,
    Size,
    Tie,
    TieAll,
    TieRead,
    Version,
)

BANNER = (
    b"(c) Copyright 2024, Extron Electronics, CrossPoint 84, V1.23, 60-1234-01\r\n"
    b"Tue, 04 Mar 2025 10:22:00\r\n"
)
GARBAGE = "garbage"  # how a ProtocolError shows in the expected events

FIXTURES: list[tuple[str, bytes, list[Any]]] = [
    ("banner", BANNER, []),
    ("banner and password prompt", BANNER + b"\r\nPassword:", [PasswordPrompt()]),
    (
        "old banner with a model line",
        b'(c) COPYRIGHT 2005, EXTRON ELECTRONICS\r\n"MMX 32", V1.00\r\n',
        [],
    ),
    ("login", b"\r\nLogin Administrator\r\n", [LoginOk("Administrator")]),
    ("login as user", b"\r\nLogin User\r\n", [LoginOk("User")]),
    (
        "wrong password, then right",
        b"\r\nPassword:\r\nLogin User\r\n",
        [PasswordPrompt(), LoginOk("User")],
    ),
    ("tie", b"Out02 In03 All\r\n", [Tie(2, 3, "All")]),
    ("tie unpadded, video", b"Out2 In3 Vid\r\n", [Tie(2, 3, "Vid")]),
    ("untie", b"Out04 In00 All\r\n", [Tie(4, 0, "All")]),
    (
        "audio and RGB ties",
        b"Out01 In07 Aud\r\nOut12 In16 RGB\r\n",
        [Tie(1, 7, "Aud"), Tie(12, 16, "RGB")],
    ),
    ("tie to all", b"In03 All\r\n", [TieAll(3, "All")]),
    ("untie all", b"In00 All\r\n", [TieAll(0, "All")]),
    ("tie read", b"03\r\n", [TieRead(3)]),
    ("tie read untied", b"00\r\n", [TieRead(0)]),
    ("presets", b"Rpr05\r\nSpr12\r\n", [PresetRecalled(5), PresetSaved(12)]),
    ("size", b"V8X4 A8X4\r\n", [Size(8, 4, 8, 4)]),
    ("size, video only", b"V16X8\r\n", [Size(16, 8)]),
    ("firmware", b"1.23\r\n", [Version("1.23")]),
    ("errors", b"E01\r\nE22\r\nE24\r\n", [Error(1), Error(22), Error(24)]),
    (
        "front panel notices",
        b"Qik\r\nVmt02 1\r\nIn03 Aud-12\r\nExe1\r\n",
        [FrontPanel("Qik"), FrontPanel("Vmt02 1"), FrontPanel("In03 Aud-12"), FrontPanel("Exe1")],
    ),
    (
        "bare LF and CR line ends",
        b"Out01 In02 All\nOut03 In04 All\r",
        [Tie(1, 2, "All"), Tie(3, 4, "All")],
    ),
    # Garbage: each bad line is one ProtocolError, and the good lines around it still count.
    ("binary noise", b"\x00\xff\x13\x37garbage\xfe\r\n", [GARBAGE]),
    ("an unknown line", b"Hello world\r\n", [GARBAGE]),
    (
        "noise between replies",
        b"Out01 In02 All\r\nxyzzy\r\n05\r\n",
        [Tie(1, 2, "All"), GARBAGE, TieRead(5)],
    ),
    ("a tie with no such kind", b"Out01 In02 Foo\r\n", [GARBAGE]),
    (
        "an odd line right after the banner is its model line; the next is not",
        BANNER.split(b"\n")[0] + b"\nodd\r\nodd\r\n",
        [GARBAGE],
    ),
    ("no line end for too long", b"A" * 300, [GARBAGE]),
]


def normal(events: list[Any]) -> list[Any]:
    return [GARBAGE if isinstance(e, ProtocolError) else e for e in events]


@pytest.mark.parametrize(
    ("data", "expected"), [f[1:] for f in FIXTURES], ids=[f[0] for f in FIXTURES]
)
def test_fixture_whole_split_and_bytewise(data: bytes, expected: list[Any]) -> None:
    assert normal(Parser().feed(data)) == expected
    for offset in range(1, len(data)):
        parser = Parser()
        events = parser.feed(data[:offset]) + parser.feed(data[offset:])
        assert normal(events) == expected, f"split at {offset}"
    parser = Parser()
    bytewise = [e for i in range(len(data)) for e in parser.feed(data[i : i + 1])]
    assert normal(bytewise) == expected


def test_garbage_is_a_protocol_error_that_says_what() -> None:
    [event] = Parser().feed(b"\x00\xffjunk\r\n")
    assert isinstance(event, ProtocolError) and "junk" in event.message


def test_reset_drops_half_a_line() -> None:
    parser = Parser()
    assert parser.feed(b"Out02 In0") == []
    parser.reset()
    assert parser.feed(b"Out02 In03 All\r\n") == [Tie(2, 3, "All")]


def test_a_prompt_needs_all_of_it() -> None:
    parser = Parser()
    assert parser.feed(b"Password") == []
    assert parser.feed(b":") == [PasswordPrompt()]


def test_commands() -> None:
    assert sis.tie(3, 2) == b"3*2!"
    assert sis.tie(3) == b"3*!"
    assert sis.tie(0, 4) == b"0*4!"
    assert sis.tie(0) == b"0*!"
    assert sis.tie(12, 10, "Vid") == b"12*10%"
    assert sis.tie(1, 1, "Aud") == b"1*1$"
    assert sis.read_tie(2) == b"2%"
    assert sis.read_tie(2, "Aud") == b"2$"
    assert sis.recall_preset(5) == b"5."
    assert sis.save_preset(12) == b"12,"
    assert sis.read_size() == b"I"
    assert sis.read_version() == b"Q"
    assert sis.login("s3cret") == b"s3cret\r"


@pytest.mark.parametrize(
    "build",
    [
        lambda: sis.tie(-1, 1),
        lambda: sis.tie(1, 0),
        lambda: sis.read_tie(0),
        lambda: sis.recall_preset(0),
        lambda: sis.save_preset(0),
        lambda: sis.login("two\rlines"),
        lambda: sis.login("caf\u00e9"),
    ],
)
def test_commands_refuse_what_sis_cannot_say(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_error_codes_map_to_typed_errors() -> None:
    for code in (1, 11, 12, 13):  # numbers out of range: the caller's fault
        exc = sis.exception_for(Error(code), "tie input 9 to output 2")
        assert isinstance(exc, BadArguments) and exc.status == 422
        assert exc.message.startswith(f"tie input 9 to output 2: E{code:02d}")
    busy = sis.exception_for(Error(22), "x")
    assert isinstance(busy, DeviceBusy) and isinstance(busy, DeviceRejected)
    assert busy.status == 503 and "busy" in busy.message
    for code in (10, 14, 17, 24, 25, 26, 27, 28, 99):  # the switcher's own refusal
        exc = sis.exception_for(Error(code), "x")
        assert type(exc) is DeviceRejected and exc.status == 502
    assert "privilege" in sis.exception_for(Error(24), "x").message
    assert "unknown error" in sis.exception_for(Error(99), "x").message


@pytest.mark.parametrize(
    ("command", "answer", "not_an_answer"),
    [
        (b"3*2!", Tie(2, 3, "All"), Tie(1, 3, "All")),  # another output: the front panel
        (b"3*!", TieAll(3, "All"), Tie(2, 3, "All")),
        (b"2%", TieRead(3), TieAll(3, "All")),
        (b"2%", Tie(2, 3, "Vid"), Tie(1, 3, "Vid")),
        (b"5.", PresetRecalled(5), PresetRecalled(6)),
        (b"5,", PresetSaved(5), PresetRecalled(5)),
        (b"I", Size(8, 4, 8, 4), TieRead(8)),
        (b"Q", Version("1.23"), TieRead(1)),
        (b"s3cret\r", LoginOk("User"), Tie(1, 1, "All")),
        (b"nonsense", None, TieRead(1)),
    ],
)
def test_answers_pair_a_line_with_its_command(
    command: bytes, answer: Any, not_an_answer: Any
) -> None:
    accepts = sis.answers(command)
    assert answer is None or accepts(answer)
    assert not accepts(not_an_answer)
