"""An Extron SIS matrix switcher: the demo's video-wall matrix and the driver tests' peer.

It answers the commands the driver sends with the switcher's real replies and E-codes,
keeps its ties in `routes` (output -> input, 0 untied) for tests to read and change,
sends the banner (and `Password:` when it has one) on each TCP connect, and reports a
front-panel tie unsolicited with `front_panel_tie()`. Its ties survive `stop()` and
`start()`, as a switcher's do when only its network drops.

Fault injection beyond the base's: `busy_for(n)` answers E22 to the next n requests,
and `half_replies` sends only the first half of each reply (a line cut mid-frame).
"""

from __future__ import annotations

import re
import time
from typing import Annotated, ClassVar

from pydantic import Field, StrictInt

from drivers.emulators.base import EmulatorOptions
from drivers.emulators.stream import Fault, Session, StreamEmulator
from drivers.extron.protocol import TIE_CHARS, TieKind

FIRMWARE = "1.23"
_KIND_OF = {char: kind for kind, char in TIE_CHARS.items()}
# One command: digits, `*`, digits, and its command character (none needs a terminator).
_TIE = re.compile(r"(\d+)\*(\d*)([!%$&])")
_READ = re.compile(r"(\d+)([%$&])")
_PRESET = re.compile(r"(\d+)([.,])")
_COMMAND_END = frozenset("!%$&.,IQ")
_IGNORED = frozenset("\r\n ")


class ExtronEmulatorOptions(EmulatorOptions):
    inputs: Annotated[StrictInt, Field(ge=1, le=999)] = 8
    outputs: Annotated[StrictInt, Field(ge=1, le=999)] = 4
    presets: Annotated[StrictInt, Field(ge=1, le=999)] = 32
    password: Annotated[str, Field(min_length=1, max_length=64)] | None = None


def _line(text: str) -> bytes:
    return text.encode("ascii") + b"\r\n"


class ExtronEmulator(StreamEmulator):
    type: ClassVar[str] = "extron-sis"
    Options = ExtronEmulatorOptions
    options: ExtronEmulatorOptions

    def __init__(self, host: str, port: int, options: ExtronEmulatorOptions | None = None) -> None:
        super().__init__(host, port, options or ExtronEmulatorOptions())
        o = self.options
        self.routes: dict[int, int] = {n: 0 for n in range(1, o.outputs + 1)}
        self.audio: dict[int, int] = {n: 0 for n in range(1, o.outputs + 1)}
        self.presets: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
        self.half_replies = False
        self._busy_left: int | None = None

    # -- faults --------------------------------------------------------------------------
    def busy_for(self, requests: int | None) -> None:
        """Answer E22 to the next `requests` requests (None: until `fault` is cleared)."""
        self.fault = Fault.BUSY
        self._busy_left = requests

    def busy_reply(self, session: Session, data: bytes) -> bytes:
        if self._busy_left is not None:
            self._busy_left -= 1
            if self._busy_left <= 0:
                self.fault, self._busy_left = Fault.NONE, None
        return _line("E22")

    # -- the front panel ---------------------------------------------------------------
    def front_panel_tie(self, input: int, output: int | None = None) -> None:
        """Someone at the rack ties `input` (to every output when `output` is None)."""
        self._tie(input, output, "All")
        text = f"In{input:02d} All" if output is None else f"Out{output:02d} In{input:02d} All"
        self.push(_line(text))

    # -- the wire ------------------------------------------------------------------------
    def greeting(self, session: Session) -> bytes:
        o = self.options
        banner = _line(
            f"(c) Copyright 2024, Extron Electronics, CrossPoint {o.inputs}{o.outputs:02d}, "
            f"V{FIRMWARE}, 60-1234-01"
        ) + _line(time.strftime("%a, %d %b %Y %H:%M:%S", time.gmtime()))
        # Only a TCP session is locked: a serial port is trusted (no greeting there).
        session.state["locked"] = o.password is not None
        return banner + (b"\r\nPassword:" if o.password is not None else b"")

    def feed(self, session: Session, data: bytes) -> bytes:
        session.buffer += data
        out = b""
        while session.buffer:
            if session.state.get("locked"):
                reply, done = self._password(session)
            else:
                reply, done = self._next_command(session)
            out += reply
            if not done:
                break
        return out[: len(out) // 2] if self.half_replies else out

    def _password(self, session: Session) -> tuple[bytes, bool]:
        line, sep, rest = session.buffer.partition(b"\r")
        if not sep:
            return b"", False
        session.buffer = rest.lstrip(b"\n")
        if line.decode("ascii", "replace") == self.options.password:
            session.state["locked"] = False
            return b"\r\n" + _line("Login Administrator"), True
        return b"\r\nPassword:", True

    def _next_command(self, session: Session) -> tuple[bytes, bool]:
        """Answer the first whole command in the buffer; (b"", False) when there is none."""
        text = session.buffer.decode("ascii", "replace")
        for i, char in enumerate(text):
            if char in _COMMAND_END or not (char.isdigit() or char == "*" or char in _IGNORED):
                session.buffer = session.buffer[i + 1 :]
                command = "".join(c for c in text[: i + 1] if c not in _IGNORED)
                return self._execute(command), True
        if not text.strip("".join(_IGNORED)):
            session.buffer = b""
        return b"", False

    def _execute(self, command: str) -> bytes:
        o = self.options
        if command == "I":
            return _line(f"V{o.inputs}X{o.outputs} A{o.inputs}X{o.outputs}")
        if command == "Q":
            return _line(FIRMWARE)
        if m := _TIE.fullmatch(command):
            return self._tie_command(int(m[1]), int(m[2]) if m[2] else None, _KIND_OF[m[3]])
        if m := _READ.fullmatch(command):
            output = int(m[1])
            if not 1 <= output <= o.outputs:
                return _line("E12")
            ties = self.audio if m[2] == "$" else self.routes
            return _line(f"{ties[output]:02d}")
        if m := _PRESET.fullmatch(command):
            return self._preset(int(m[1]), save=m[2] == ",")
        return _line("E10")

    def _tie_command(self, input: int, output: int | None, kind: TieKind) -> bytes:
        if input > self.options.inputs:
            return _line("E01")
        if output is not None and not 1 <= output <= self.options.outputs:
            return _line("E12")
        self._tie(input, output, kind)
        if output is None:
            return _line(f"In{input:02d} {kind}")
        return _line(f"Out{output:02d} In{input:02d} {kind}")

    def _tie(self, input: int, output: int | None, kind: TieKind) -> None:
        outputs = list(self.routes) if output is None else [output]
        for n in outputs:
            if kind != "Aud":
                self.routes[n] = input
            if kind in ("All", "Aud"):
                self.audio[n] = input

    def _preset(self, n: int, save: bool) -> bytes:
        if not 1 <= n <= self.options.presets:
            return _line("E11")
        if save:
            self.presets[n] = (dict(self.routes), dict(self.audio))
            return _line(f"Spr{n:02d}")
        if n not in self.presets:
            return _line("E11")  # nothing saved there: nothing to recall
        video, audio = self.presets[n]
        self.routes.update(video)
        self.audio.update(audio)
        return _line(f"Rpr{n:02d}")
