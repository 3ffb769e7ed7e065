"""A Samsung MDC display, or a daisy chain of them on one line: `samsung-mdc`.

Each id in `ids` is one display with its own power, input, mute and volume, which
tests read and change (`displays[id]`). A request for an id on the chain is answered
by that display alone; one for an id not on the chain gets silence, as on a real
chain; the broadcast id 0xFE is obeyed by every display and answered by none. An
unknown command is naked `NAK_UNSUPPORTED`, a value out of range or an input the
display lacks `NAK_BAD_VALUE`; `Fault.BUSY` answers every request `NAK_NOT_NOW`.

Beyond the faults of `StreamEmulator`, `half_replies` sends only the first half of
each answer: the torn frame a line sees when a display reboots mid-reply.

State lives in the emulator, not in a connection: a stop and start (a line cut) keeps
it, and a test may change it meanwhile, as a front panel or a remote would.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator

from daemon.errors import ProtocolError
from drivers.emulators.base import EmulatorOptions
from drivers.emulators.stream import EMULATOR_LOG, Session, StreamEmulator
from drivers.samsung import protocol as mdc

Byte = Annotated[int, Field(ge=0, le=255)]


class MDCEmulatorOptions(EmulatorOptions):
    ids: list[Annotated[int, Field(ge=0, le=253)]] = [1]
    # The input source codes the displays have; set_input to any other is naked.
    inputs: list[Byte] = [0x21, 0x23, 0x25]

    @field_validator("ids")
    @classmethod
    def _distinct(cls, ids: list[int]) -> list[int]:
        if not ids:
            raise ValueError("a chain has at least one display")
        if len(set(ids)) != len(ids):
            raise ValueError("display ids on one chain must be distinct")
        return ids


# The one-byte values a display gets and sets, by command.
FIELDS = {mdc.POWER: "power", mdc.MUTE: "mute", mdc.VOLUME: "volume", mdc.INPUT: "input"}


@dataclass
class Display:
    power: bool = False
    input: int = 0x21
    mute: bool = False
    volume: int = 20


class MDCEmulator(StreamEmulator):
    type = "samsung-mdc"
    Options = MDCEmulatorOptions
    options: MDCEmulatorOptions

    def __init__(self, host: str, port: int, options: MDCEmulatorOptions | None = None) -> None:
        super().__init__(host, port, options or MDCEmulatorOptions())
        first_input = self.options.inputs[0] if self.options.inputs else 0x21
        self.displays: dict[int, Display] = {
            i: Display(input=first_input) for i in self.options.ids
        }
        self.half_replies = False
        # Every well-formed request, as (display id, command, data), for tests.
        self.requests: deque[tuple[int, int, bytes]] = deque(maxlen=EMULATOR_LOG)

    # -- the line -------------------------------------------------------------------------
    def _frames(self, session: Session, data: bytes) -> list[mdc.Frame]:
        reader = session.state.setdefault("reader", mdc.FrameReader())
        # A display ignores what it cannot read: no answer to noise or a bad checksum.
        frames = [f for f in reader.feed(data) if not isinstance(f, ProtocolError)]
        self.requests.extend((f.display_id, f.cmd, f.data) for f in frames)
        return frames

    def feed(self, session: Session, data: bytes) -> bytes:
        out = b""
        for request in self._frames(session, data):
            for display_id in self._addressed(request):
                reply = self._execute(display_id, request)
                if request.display_id != mdc.BROADCAST:
                    out += reply
        if self.half_replies and out:
            return out[: max(1, len(out) // 2)]
        return out

    def busy_reply(self, session: Session, data: bytes) -> bytes:
        return b"".join(
            mdc.nak(f.display_id, f.cmd, mdc.NAK_NOT_NOW)
            for f in self._frames(session, data)
            if f.display_id in self.displays
        )

    def _addressed(self, request: mdc.Frame) -> list[int]:
        if request.cmd == mdc.REPLY:
            return []  # another display's answer on the chain, not a request
        if request.display_id == mdc.BROADCAST:
            return list(self.displays)
        return [request.display_id] if request.display_id in self.displays else []

    # -- one display --------------------------------------------------------------------
    def _execute(self, display_id: int, request: mdc.Frame) -> bytes:
        display = self.displays[display_id]
        cmd, data = request.cmd, request.data
        if cmd == mdc.STATUS and not data:
            values = [int(display.power), display.volume, int(display.mute), display.input]
            return mdc.ack(display_id, cmd, bytes(values + [0x10, 0, 0]))  # aspect, timers
        field = FIELDS.get(cmd)
        if field is None:
            return mdc.nak(display_id, cmd, mdc.NAK_UNSUPPORTED)
        if len(data) > 1 or (data and not self._valid(cmd, data[0])):
            return mdc.nak(display_id, cmd, mdc.NAK_BAD_VALUE)
        if data:
            value = 1 if cmd == mdc.POWER and data[0] == 2 else data[0]  # reboot: back on
            setattr(display, field, bool(value) if field in ("power", "mute") else value)
        return mdc.ack(display_id, cmd, bytes([int(getattr(display, field))]))

    def _valid(self, cmd: int, value: int) -> bool:
        if cmd == mdc.POWER:
            return value in (0, 1, 2)
        if cmd == mdc.MUTE:
            return value in (0, 1)
        if cmd == mdc.VOLUME:
            return value <= 100
        return value in self.options.inputs
