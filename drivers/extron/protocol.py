"""Extron SIS (Simple Instruction Set), sans-I/O: commands out as bytes, lines in as events.

A command is a few characters ending in its command character (`3*2!`, `2%`, `5.`)
and needs no terminator; only a password is sent as a line. The switcher answers
every command with one CRLF-terminated line: the tie it made (`Out02 In03 All`), the
number asked for (`03`), a preset saved or recalled (`Spr05`, `Rpr05`), the size
(`V8X4 A8X4`) or an error (`E01`). The same tie lines also come unsolicited when the
front panel is used, so a line answers a command only when it is what `answers()`
says that command gets back; any other line is a report.

On a TCP connect the switcher sends a copyright banner and a date line, which mean
nothing to a controller and are dropped here, then `Password:` with no line end when
it is password-protected. A line the protocol does not allow comes out as a
`daemon.errors.ProtocolError` instance, so a request waiting on it fails at once.

Nothing here reads a socket or a clock: every rule is tested on byte fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from daemon.errors import BadArguments, DeviceRejected, GridhallError, ProtocolError, Unavailable

TieKind = Literal["All", "Vid", "Aud", "RGB"]
# Each tie kind's command character: `!` audio and video, `%` video, `$` audio, `&` RGB.
TIE_CHARS: dict[TieKind, str] = {"All": "!", "Vid": "%", "Aud": "$", "RGB": "&"}
# Tie kinds that move the video path, which is what a matrix's `routes` report.
VIDEO_KINDS: frozenset[TieKind] = frozenset({"All", "Vid", "RGB"})

PROMPT = b"Password:"  # sent without a line end: the switcher waits on the same line
MAX_LINE = 256  # no SIS answer is near this; more without a line end is not SIS


# -- commands -------------------------------------------------------------------------
def tie(input: int, output: int | None = None, kind: TieKind = "All") -> bytes:
    """Tie `input` to `output`, or to every output when `output` is None; input 0 unties."""
    if input < 0 or (output is not None and output < 1):
        raise ValueError(f"bad tie {input} -> {output}")
    target = "" if output is None else str(output)
    return f"{input}*{target}{TIE_CHARS[kind]}".encode("ascii")


def read_tie(output: int, kind: Literal["Vid", "Aud"] = "Vid") -> bytes:
    """Ask which input is tied to `output` (the answer is a bare number, `00` untied)."""
    if output < 1:
        raise ValueError(f"bad output {output}")
    return f"{output}{TIE_CHARS[kind]}".encode("ascii")


def recall_preset(preset: int) -> bytes:
    return f"{_preset(preset)}.".encode("ascii")


def save_preset(preset: int) -> bytes:
    return f"{_preset(preset)},".encode("ascii")


def _preset(preset: int) -> int:
    if preset < 1:
        raise ValueError(f"presets count from 1, got {preset}")  # 0 is the live state
    return preset


def read_size() -> bytes:
    """`I`: the matrix size, `V8X4 A8X4`."""
    return b"I"


def read_version() -> bytes:
    """`Q`: the firmware version; harmless, so it also serves as a keep-alive."""
    return b"Q"


def login(password: str) -> bytes:
    """The answer to `Password:`: a password is the one thing sent as a line."""
    if not password.isascii() or not password.isprintable():
        raise ValueError("an SIS password is printable ASCII")
    return password.encode("ascii") + b"\r"


# -- events -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tie:
    """`Out02 In03 All`: input 3 is now tied to output 2 (input 0: untied)."""

    output: int
    input: int
    kind: TieKind


@dataclass(frozen=True)
class TieAll:
    """`In03 All`: input 3 is now tied to every output."""

    input: int
    kind: TieKind


@dataclass(frozen=True)
class TieRead:
    """`03`: the answer to `read_tie`; the output is the one the driver asked about."""

    input: int


@dataclass(frozen=True)
class PresetSaved:
    preset: int


@dataclass(frozen=True)
class PresetRecalled:
    preset: int


@dataclass(frozen=True)
class Size:
    """`V8X4 A8X4`: video inputs x outputs, audio inputs x outputs."""

    inputs: int
    outputs: int
    audio_inputs: int | None = None
    audio_outputs: int | None = None


@dataclass(frozen=True)
class Version:
    text: str


@dataclass(frozen=True)
class Error:
    """`E01`: the switcher refused the command."""

    code: int

    @property
    def meaning(self) -> str:
        return ERROR_MEANINGS.get(self.code, "unknown error")


@dataclass(frozen=True)
class PasswordPrompt:
    """`Password:`: the connection is locked until a password is sent; also the answer
    to a wrong one."""


@dataclass(frozen=True)
class LoginOk:
    """`Login Administrator` or `Login User`."""

    level: str


@dataclass(frozen=True)
class FrontPanel:
    """A front-panel notice that carries no tie (`Qik`, a mute, a level, executive
    mode): the ties it may have changed are read on the next poll."""

    text: str


Event = (
    Tie
    | TieAll
    | TieRead
    | PresetSaved
    | PresetRecalled
    | Size
    | Version
    | Error
    | PasswordPrompt
    | LoginOk
    | FrontPanel
    | ProtocolError
)


# -- errors -------------------------------------------------------------------------------
ERROR_MEANINGS = {
    1: "invalid input number",
    10: "invalid command",
    11: "invalid preset number",
    12: "invalid output number",
    13: "invalid value",
    14: "not valid for this configuration",
    17: "timed out",
    21: "invalid room number",
    22: "busy",
    24: "privilege violation: this login may not do that (use the administrator password)",
    25: "device not present",
    26: "maximum number of connections exceeded",
    27: "invalid event number",
    28: "bad filename or file not found",
}
BUSY = 22  # not executed: try again shortly
# Numbers out of the switcher's range: the caller asked for something that does not exist.
CALLER_ERRORS = frozenset({1, 11, 12, 13})


class DeviceBusy(DeviceRejected):
    """E22 even after the retries: the switcher is fine but could not take the command."""

    status = 503
    code = "device_busy"


class LoginFailed(Unavailable):
    """The switcher wants a password we do not have, or refused the one we have: nothing
    works until the config changes, so the device is unavailable, not just one action."""

    code = "login_failed"


def exception_for(error: Error, what: str) -> GridhallError:
    """The typed error for an E-code answering `what` (a description, never the bytes:
    a password must not end up in a message)."""
    message = f"{what}: E{error.code:02d} {error.meaning}"
    if error.code in CALLER_ERRORS:
        return BadArguments(message)
    if error.code == BUSY:
        return DeviceBusy(message)
    return DeviceRejected(message)


# -- which line answers which command ----------------------------------------------------
_TIE_COMMAND = re.compile(r"(\d+)\*(\d*)([!%$&])")
_READ_COMMAND = re.compile(r"(\d+)([%$&])")
_PRESET_COMMAND = re.compile(r"(\d+)([.,])")


def answers(command: bytes) -> Callable[[Event], bool]:
    """What answers `command`, besides an error (which may answer any): the tie of the
    output it named, the preset it named. Everything else that arrives meanwhile, a
    front-panel tie above all, is unsolicited."""
    if command.endswith(b"\r"):
        return lambda e: isinstance(e, LoginOk)  # the one command sent as a line
    text = command.decode("ascii", "replace")
    if text == "I":
        return lambda e: isinstance(e, Size)
    if text == "Q":
        return lambda e: isinstance(e, Version)
    if m := _TIE_COMMAND.fullmatch(text):
        if not m[2]:
            return lambda e: isinstance(e, TieAll)
        output = int(m[2])
        return lambda e: isinstance(e, Tie) and e.output == output
    if m := _READ_COMMAND.fullmatch(text):
        output = int(m[1])
        # Some firmware answers a tie query in the tie report's own form.
        return lambda e: isinstance(e, TieRead) or (isinstance(e, Tie) and e.output == output)
    if m := _PRESET_COMMAND.fullmatch(text):
        preset, kind = int(m[1]), PresetRecalled if m[2] == "." else PresetSaved
        return lambda e: isinstance(e, kind) and e.preset == preset
    return lambda e: False


# -- the parser -----------------------------------------------------------------------
_TIE = re.compile(r"Out(\d+) In(\d+) (All|Vid|Aud|RGB)")
_TIE_ALL = re.compile(r"In(\d+) (All|Vid|Aud|RGB)")
_NUMBER = re.compile(r"\d+")
_PRESET = re.compile(r"(Spr|Rpr)(\d+)")
_SIZE = re.compile(r"V(\d+)X(\d+)(?: A(\d+)X(\d+))?")
_VERSION = re.compile(r"V?\d+\.\d+[\w.\-]*")
_ERROR = re.compile(r"E(\d\d)")
_LOGIN = re.compile(r"Login (Administrator|User)")
# Front-panel notices with no tie in them: quick-switch, video/audio mute, input level,
# output volume, executive mode.
_NOTICE = re.compile(r"Qik|[VA]mt\d+ [01]|In\d+ Aud[+-]?\d+|Out\d+ Vol\d+|Exe\d")
# The line after the banner on a TCP connect: `Tue, 04 Mar 2025 10:22:00`.
_DATE = re.compile(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{1,2}:\d\d:\d\d")
_LINE_END = re.compile(rb"[\r\n]")
_KINDS: dict[str, TieKind] = {kind: kind for kind in TIE_CHARS}


class Parser:
    """Bytes in, events out; keeps a partial line until its end arrives."""

    def __init__(self) -> None:
        self._buffer = b""
        self._after_banner = False

    def reset(self) -> None:
        """Drop a partial line: a new connection, or a reply that never finished."""
        self._buffer = b""
        self._after_banner = False

    def feed(self, data: bytes) -> list[Event]:
        self._buffer += data
        events: list[Event] = []
        while (end := _LINE_END.search(self._buffer)) is not None:
            line, self._buffer = self._buffer[: end.start()], self._buffer[end.end() :]
            if (event := self._line(line)) is not None:
                events.append(event)
        if self._buffer == PROMPT:
            self._buffer = b""
            events.append(PasswordPrompt())
        elif len(self._buffer) > MAX_LINE:
            events.append(ProtocolError(f"no line end in {len(self._buffer)} bytes"))
            self._buffer = b""
        return events

    def _line(self, raw: bytes) -> Event | None:
        if not raw.strip():
            return None  # CRLF counts as two ends; the empty line between means nothing
        if not all(0x20 <= b < 0x7F for b in raw):
            self._after_banner = False
            return ProtocolError(f"not an SIS line: {raw[:64]!r}")
        text = raw.decode("ascii").strip()
        if text[:3].lower() == "(c)":
            self._after_banner = True  # the line after it may be a date or a model name
            return None
        after_banner, self._after_banner = self._after_banner, False
        if _DATE.fullmatch(text):
            return None
        event = _event(text)
        if event is None:
            return None if after_banner else ProtocolError(f"unexpected line {text[:64]!r}")
        return event


def _event(text: str) -> Event | None:
    """The event one whole line is, or None for a line SIS does not have."""
    if m := _TIE.fullmatch(text):
        return Tie(int(m[1]), int(m[2]), _KINDS[m[3]])
    if m := _TIE_ALL.fullmatch(text):
        return TieAll(int(m[1]), _KINDS[m[2]])
    if _NUMBER.fullmatch(text):
        return TieRead(int(text))
    if m := _PRESET.fullmatch(text):
        return PresetSaved(int(m[2])) if m[1] == "Spr" else PresetRecalled(int(m[2]))
    if m := _SIZE.fullmatch(text):
        audio = (int(m[3]), int(m[4])) if m[3] else (None, None)
        return Size(int(m[1]), int(m[2]), *audio)
    if m := _ERROR.fullmatch(text):
        return Error(int(m[1]))
    if text == PROMPT.decode():
        return PasswordPrompt()
    if m := _LOGIN.fullmatch(text):
        return LoginOk(m[1])
    if _NOTICE.fullmatch(text):
        return FrontPanel(text)
    if _VERSION.fullmatch(text):
        return Version(text)
    return None
