"""PJLink class 1, sans-I/O: commands in, bytes out; bytes in, events out.

A connection starts with the device's greeting, `PJLINK 0` (no authentication) or
`PJLINK 1 <random>`; with authentication the first command of the connection is
prefixed with `md5(random + password)` in lowercase hex, and a wrong digest is answered
`PJLINK ERRA`. After that each command line `%1BODY param` is answered by one line
`%1BODY=param`, where the parameter may be one of the device's errors ERR1..ERR4.
Lines end CR and are at most 136 bytes long. Nothing here reads or writes a socket.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from daemon.errors import ProtocolError

CR = b"\r"
# The longest line the spec allows (a 128-character parameter, header, body, CR).
# Longer without a CR, the peer is not speaking PJLink and waiting longer is pointless.
MAX_LINE = 136
MAX_PARAM = 128

POWER = {"0": "off", "1": "on", "2": "cooling", "3": "warming"}
ERROR_ITEMS = ("fan", "lamp", "temperature", "cover", "filter", "other")
ERROR_LEVELS = {"0": "ok", "1": "warning", "2": "error"}
DEVICE_ERRORS = {
    "ERR1": "undefined command",
    "ERR2": "out of parameter",
    "ERR3": "unavailable time",
    "ERR4": "projector failure",
}
# Input type 1-5 (RGB, video, digital, storage, network; class 2 adds 6, internal) and
# the input's number, 1-9 (class 2 also A-Z).
INPUT_CODE = re.compile(r"[1-6][1-9A-Z]")
# AVMT: tens digit 1 video, 2 audio, 3 both; units digit 1 muted, 0 not.
VIDEO_MUTED = {"11": True, "31": True, "10": False, "20": False, "21": False, "30": False}

_BODY = re.compile(r"[A-Z0-9]{4}")
_GREETING_AUTH = re.compile(r"PJLINK 1 (\S{1,32})", re.IGNORECASE)
_REPLY = re.compile(r"%1([A-Za-z0-9]{4})=(.*)", re.DOTALL)


# -- events ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Greeting:
    """What the device sends on connect; `challenge` is None when it asks no password."""

    challenge: str | None


@dataclass(frozen=True)
class AuthRejected:
    """`PJLINK ERRA`: the digest was wrong or missing."""


@dataclass(frozen=True)
class Reply:
    body: str
    param: str

    @property
    def error(self) -> str | None:
        """`ERR1`..`ERR4` when the device answered with one of its errors."""
        code = self.param.upper()
        return code if code in DEVICE_ERRORS else None


Event = Greeting | AuthRejected | Reply | ProtocolError


# -- bytes out ------------------------------------------------------------------------
def auth_digest(challenge: str, password: str) -> str:
    """The authentication prefix: md5(random + password), lowercase hex."""
    return hashlib.md5((challenge + password).encode("utf-8")).hexdigest()


def encode(body: str, param: str, auth: str = "") -> bytes:
    """`%1BODY param` CR, preceded by `auth` (the digest, on a connection's first command)."""
    if not _BODY.fullmatch(body):
        raise ValueError(f"PJLink command body must be 4 upper-case characters: {body!r}")
    if len(param) > MAX_PARAM or not param.isascii() or not param.isprintable():
        raise ValueError(f"bad PJLink parameter {param!r}")
    return f"{auth}%1{body} {param}\r".encode("ascii")


# -- bytes in -------------------------------------------------------------------------
def parse_line(line: bytes) -> Event:
    """One line without its CR."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return ProtocolError(f"not PJLink: {line[:40]!r}")
    if not text.isprintable():
        return ProtocolError(f"not PJLink: {line[:40]!r}")
    upper = text.upper()
    if upper == "PJLINK ERRA":
        return AuthRejected()
    if upper == "PJLINK 0":
        return Greeting(None)
    if m := _GREETING_AUTH.fullmatch(text):
        return Greeting(m[1])
    if m := _REPLY.fullmatch(text):
        return Reply(m[1].upper(), m[2])
    return ProtocolError(f"not PJLink: {text[:40]!r}")


class Parser:
    """Splits what arrives into lines, keeping a partial line for the next chunk.

    A device that ends lines CR LF is understood: the LF is dropped as the next line's
    first byte.
    """

    def __init__(self) -> None:
        self._buffer = b""
        # After a line too long to be PJLink, the rest of it up to its CR is dropped,
        # so one bad line is one error and the next line parses.
        self._skipping = False

    def reset(self) -> None:
        self._buffer = b""
        self._skipping = False

    @property
    def pending(self) -> bool:
        """Part of a line arrived and its end did not."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        if self._skipping:
            _, sep, data = data.partition(CR)
            if not sep:
                return []
            self._skipping = False
        self._buffer += data
        events: list[Event] = []
        while True:
            line, sep, rest = self._buffer.partition(CR)
            if not sep:
                break
            self._buffer = rest
            line = line.lstrip(b"\n")
            if len(line) >= MAX_LINE:
                events.append(ProtocolError(f"line longer than {MAX_LINE} bytes: {line[:40]!r}"))
            elif line:
                events.append(parse_line(line))
        self._buffer = self._buffer.lstrip(b"\n")
        if len(self._buffer) >= MAX_LINE:
            events.append(ProtocolError(f"no line end in {MAX_LINE} bytes: {self._buffer[:40]!r}"))
            self._buffer = b""
            self._skipping = True
        return events


# -- parameters -----------------------------------------------------------------------
def parse_power(param: str) -> str:
    """`POWR ?` -> "off", "on", "cooling" or "warming"."""
    try:
        return POWER[param]
    except KeyError:
        raise ProtocolError(f"POWR: unknown power status {param!r}") from None


def parse_input(param: str) -> str:
    """`INPT ?` -> the two-character input code."""
    code = param.upper()
    if not INPUT_CODE.fullmatch(code):
        raise ProtocolError(f"INPT: not an input code: {param!r}")
    return code


def parse_video_muted(param: str) -> bool:
    """`AVMT ?` -> whether the picture is muted (11 or 31). A screen's `muted` is about
    its picture: audio alone muted (21) leaves the picture on, so it reads False."""
    try:
        return VIDEO_MUTED[param]
    except KeyError:
        raise ProtocolError(f"AVMT: unknown mute status {param!r}") from None


def parse_errors(param: str) -> dict[str, str]:
    """`ERST ?` -> {item: "warning" | "error"} for the items that are not ok."""
    if len(param) != len(ERROR_ITEMS) or any(c not in ERROR_LEVELS for c in param):
        raise ProtocolError(f"ERST: expected six digits 0-2, got {param!r}")
    return {
        item: ERROR_LEVELS[level]
        for item, level in zip(ERROR_ITEMS, param, strict=True)
        if level != "0"
    }
