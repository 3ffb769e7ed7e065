"""A PJLink class 1 projector on loopback, for the demo and the tests.

It behaves as real projectors do where the driver must cope with them: it greets
`PJLINK 0`, or `PJLINK 1 <random>` when it has a password, and wants the digest before
the first command (a wrong or missing one is answered `PJLINK ERRA`, then it hangs up);
power on warms up for `warmup_s` (`POWR ?` = 3) and power off cools down for
`cooldown_s` (= 2); input and mute, set or asked, answer ERR3 unless the power is on,
and a power command against a running transition answers ERR3 too; a connection with
no command for `idle_timeout_s` is closed.

Its own state is what the tests check the driver against: `power`, `input`,
`video_muted`, `audio_muted`, `error_status` (the six ERST digits); `log` keeps every
command with its answer. Besides `StreamEmulator`'s faults, `half_replies = True`
answers the first half of each reply and no CR, and `reply_delay_s` answers late.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from drivers.emulators.base import EmulatorOptions
from drivers.emulators.stream import EMULATOR_LOG, Session, StreamEmulator

_COMMAND = re.compile(r"%([0-9])([A-Za-z0-9]{4}) ?(.*)")
_POWER_CODES = {"off": "0", "on": "1", "cooling": "2", "warming": "3"}
_MUTES = {"10", "11", "20", "21", "30", "31"}
# (video muted, audio muted) -> the answer to `AVMT ?`
_MUTE_STATUS = {(False, False): "30", (True, False): "11", (False, True): "21", (True, True): "31"}


class PJLinkEmulatorOptions(EmulatorOptions):
    password: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    inputs: Annotated[list[str], Field(min_length=1)] = ["11", "31", "32"]
    warmup_s: Annotated[float, Field(ge=0, le=600)] = 20.0
    cooldown_s: Annotated[float, Field(ge=0, le=600)] = 20.0
    idle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    power: Literal["off", "on"] = "off"
    name: Annotated[str, Field(max_length=64)] = "gridhall emulator"

    @field_validator("inputs")
    @classmethod
    def _codes(cls, inputs: list[str]) -> list[str]:
        for code in inputs:
            if not re.fullmatch(r"[1-6][1-9A-Z]", code):
                raise ValueError(f"{code!r} is not a PJLink input code such as '31'")
        return inputs


class PJLinkEmulator(StreamEmulator):
    type = "pjlink"
    Options = PJLinkEmulatorOptions
    options: PJLinkEmulatorOptions

    def __init__(self, host: str, port: int, options: PJLinkEmulatorOptions | None = None) -> None:
        super().__init__(host, port, options)
        o = self.options
        self._power: str = o.power
        self._settles_at = 0.0
        self.input = o.inputs[0]
        self.video_muted = False
        self.audio_muted = False
        self.error_status = "000000"
        self.lamp_hours = 1234
        self.half_replies = False
        self.reply_delay_s = 0.0
        self.idle_drops = 0
        self.log: deque[tuple[str, str]] = deque(maxlen=EMULATOR_LOG)
        self._handlers: dict[str, Callable[[str], str]] = {
            "POWR": self._powr,
            "INPT": self._inpt,
            "AVMT": self._avmt,
            "ERST": self._query(lambda: self.error_status),
            "LAMP": self._query(lambda: f"{self.lamp_hours} {int(self.power == 'on')}"),
            "INST": self._query(lambda: " ".join(self.options.inputs)),
            "NAME": self._query(lambda: self.options.name),
            "INF1": self._query(lambda: "GRIDHALL"),
            "INF2": self._query(lambda: "PJLink emulator"),
            "INFO": self._query(lambda: ""),
            "CLSS": self._query(lambda: "1"),
        }

    # -- the projector's own state ------------------------------------------------------
    @property
    def power(self) -> str:
        """The power: "off", "on", "warming" or "cooling"; a transition ends on its own."""
        if self._power in ("warming", "cooling") and time.monotonic() >= self._settles_at:
            self._power = "on" if self._power == "warming" else "off"
        return self._power

    @power.setter
    def power(self, value: str) -> None:
        """Set at once, as with the remote control in a test."""
        self._power = value

    def _start(self, transition: str, seconds: float) -> None:
        self._power = transition
        self._settles_at = time.monotonic() + seconds

    # -- commands -------------------------------------------------------------------------
    def _powr(self, param: str) -> str:
        power = self.power
        if param == "?":
            return _POWER_CODES[power]
        if param == "1":
            if power == "cooling":
                return "ERR3"
            if power == "off":
                self._start("warming", self.options.warmup_s)
            return "OK"
        if param == "0":
            if power == "warming":
                return "ERR3"
            if power == "on":
                self.video_muted = self.audio_muted = False
                self._start("cooling", self.options.cooldown_s)
            return "OK"
        return "ERR2"

    def _inpt(self, param: str) -> str:
        if self.power != "on":
            return "ERR3"
        if param == "?":
            return self.input
        if param not in self.options.inputs:
            return "ERR2"
        self.input = param
        return "OK"

    def _avmt(self, param: str) -> str:
        if self.power != "on":
            return "ERR3"
        if param == "?":
            return _MUTE_STATUS[(self.video_muted, self.audio_muted)]
        if param not in _MUTES:
            return "ERR2"
        muted = param[1] == "1"
        if param[0] in "13":
            self.video_muted = muted
        if param[0] in "23":
            self.audio_muted = muted
        return "OK"

    @staticmethod
    def _query(value: Callable[[], str]) -> Callable[[str], str]:
        return lambda param: value() if param == "?" else "ERR2"

    # -- the connection ---------------------------------------------------------------------
    def greeting(self, session: Session) -> bytes:
        self._arm_idle_timer(session)
        if self.options.password is None:
            session.state["challenge"] = None
            return b"PJLINK 0\r"
        challenge = secrets.token_hex(4)
        session.state["challenge"] = challenge
        return f"PJLINK 1 {challenge}\r".encode()

    def feed(self, session: Session, data: bytes) -> bytes:
        self._arm_idle_timer(session)
        out = b"".join(self._answer_line(session, line) for line in self._lines(session, data))
        if self.half_replies:
            out = out[: len(out) // 2]
        if self.reply_delay_s and out:
            asyncio.get_running_loop().call_later(self.reply_delay_s, self._late, session, out)
            return b""
        return out

    def _late(self, session: Session, out: bytes) -> None:
        if session in self._sessions:
            session.write(out)

    def busy_reply(self, session: Session, data: bytes) -> bytes:
        out = b""
        for line in self._lines(session, data):
            if m := _COMMAND.search(line):
                out += f"%{m[1]}{m[2]}=ERR3\r".encode()
        return out

    def _lines(self, session: Session, data: bytes) -> Iterator[str]:
        session.buffer += data
        while b"\r" in session.buffer:
            raw, session.buffer = session.buffer.split(b"\r", 1)
            yield raw.lstrip(b"\n").decode("ascii", "replace")
        if len(session.buffer) > 512:  # no CR in sight: not a PJLink controller
            session.buffer = b""

    def _answer_line(self, session: Session, line: str) -> bytes:
        if session.state.get("hung_up"):
            return b""
        challenge = session.state["challenge"]
        if challenge is not None and not session.state.get("authenticated"):
            password = self.options.password or ""
            digest = hashlib.md5((challenge + password).encode()).hexdigest()
            if line[:32] != digest:
                self.log.append((line, "ERRA"))
                session.state["hung_up"] = True
                # After the base class has written the answer.
                asyncio.get_running_loop().call_soon(session.close)
                return b"PJLINK ERRA\r"
            session.state["authenticated"] = True
            line = line[32:]
        m = _COMMAND.fullmatch(line)
        if m is None:
            return b""  # not a command; a real projector ignores it too
        klass, body, param = m[1], m[2].upper(), m[3]
        handler = self._handlers.get(body)
        answer = handler(param) if handler is not None and klass == "1" else "ERR1"
        self.log.append((f"{body} {param}", answer))
        return f"%{klass}{body}={answer}\r".encode()

    def _arm_idle_timer(self, session: Session) -> None:
        timer: Any = session.state.get("idle_timer")
        if timer is not None:
            timer.cancel()
        session.state["idle_timer"] = asyncio.get_running_loop().call_later(
            self.options.idle_timeout_s, self._idle_drop, session
        )

    def _idle_drop(self, session: Session) -> None:
        if session in self._sessions:
            self.idle_drops += 1
            session.close()
