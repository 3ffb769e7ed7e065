"""An IHSE Draco tera KVM matrix: the demo's operator-seat matrix and the driver tests' peer.

It keeps each console's connection in `consoles` (console -> (cpu, mode name), cpu 0
for none) for tests to read and change, answers connect frames with ACK or NAK and
echoes the keep-alive, and sends every switch to the other LAN clients as the connect
frame itself, as the matrix does. `switch_elsewhere()` is a switch made at the front
panel or by another controller. Its connections survive `stop()` and `start()`, as a
matrix's do when only its network drops.

Private mode is enforced: a console connecting privately takes the CPU from every other
console (each such disconnect is echoed to every client), and while it holds the CPU
any other console's connection to it, video only included, is refused with a NAK.

Fault injection beyond the base's: `busy_for(n)` answers `07` to the next n requests.
Every switch it makes is logged in `switches` (bounded) with the monotonic time it was
made, for tests and benchmarks to time what reached the matrix.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from typing import Annotated, ClassVar

from pydantic import Field, StrictInt

from drivers.emulators.base import EmulatorOptions
from drivers.emulators.stream import Fault, Session, StreamEmulator
from drivers.ihse import protocol as draco
from drivers.ihse.protocol import MODE_NAMES, Mode

_ACK, _NAK, _BUSY = bytes([draco.ACK]), bytes([draco.NAK]), bytes([draco.BUSY])


class DracoEmulatorOptions(EmulatorOptions):
    cpus: Annotated[StrictInt, Field(ge=1, le=4096)] = 16
    consoles: Annotated[StrictInt, Field(ge=1, le=4096)] = 8


class DracoEmulator(StreamEmulator):
    type: ClassVar[str] = "ihse-draco"
    Options = DracoEmulatorOptions
    options: DracoEmulatorOptions

    def __init__(self, host: str, port: int, options: DracoEmulatorOptions | None = None) -> None:
        super().__init__(host, port, options or DracoEmulatorOptions())
        self.consoles: dict[int, tuple[int, Mode]] = {
            n: (0, "full") for n in range(1, self.options.consoles + 1)
        }
        self._busy_left: int | None = None
        # (monotonic time, cpu, console, mode) of each switch, in the order made.
        self.switches: deque[tuple[float, int, int, Mode]] = deque(maxlen=10_000)

    @property
    def routes(self) -> dict[int, int]:
        """Console -> CPU (0: none)."""
        return {con: cpu for con, (cpu, _) in self.consoles.items()}

    # -- faults --------------------------------------------------------------------------
    def busy_for(self, requests: int | None) -> None:
        """Answer `07` to the next `requests` requests (None: until `fault` is cleared)."""
        self.fault = Fault.BUSY
        self._busy_left = requests

    def busy_reply(self, session: Session, data: bytes) -> bytes:
        if self._busy_left is not None:
            self._busy_left -= 1
            if self._busy_left <= 0:
                self.fault, self._busy_left = Fault.NONE, None
        return _BUSY

    # -- switching done elsewhere ------------------------------------------------------
    def switch_elsewhere(self, cpu: int, con: int, mode: Mode = "full") -> None:
        """Someone at the front panel or another controller connects `cpu` to `con`."""
        self._switch(cpu, con, mode, None)

    def _switch(self, cpu: int, con: int, mode: Mode, origin: Session | None) -> None:
        if cpu and mode == "private":
            for other, (held, _) in self.consoles.items():
                if other != con and held == cpu:
                    self.consoles[other] = (0, "full")
                    self._echo(draco.connect(0, other), None)  # news to the requester too
        self.consoles[con] = (cpu, mode if cpu else "full")
        self.switches.append((time.monotonic(), cpu, con, mode))
        self._echo(draco.connect(cpu, con, mode), origin)

    def _echo(self, frame: bytes, origin: Session | None) -> None:
        for session in list(self._sessions):
            if session is not origin:
                session.write(frame)

    # -- the wire ------------------------------------------------------------------------
    def feed(self, session: Session, data: bytes) -> bytes:
        session.buffer += data
        out = b""
        while session.buffer:
            buf = session.buffer
            if not draco.HEADER.startswith(buf[:2]):
                session.buffer = b""  # garbage: refuse it, and start clean
                return out + _NAK
            if len(buf) < draco.MIN_FRAME:
                break
            (length,) = struct.unpack_from("<H", buf, 3)
            if not draco.MIN_FRAME <= length <= draco.MAX_FRAME:
                session.buffer = b""
                return out + _NAK
            if len(buf) < length:
                break
            raw, session.buffer = buf[:length], buf[length:]
            out += self._execute(session, raw)
        return out

    def _execute(self, session: Session, raw: bytes) -> bytes:
        event = draco.decode(raw)
        if isinstance(event, draco.KeepAlive):
            return raw
        if not isinstance(event, draco.Connection):
            return _NAK
        mode = MODE_NAMES.get(event.mode)
        if (
            mode is None
            or not 1 <= event.con <= self.options.consoles
            or event.cpu > self.options.cpus
            or (event.cpu and self._held_privately(event.cpu, event.con))
        ):
            return _NAK
        self._switch(event.cpu, event.con, mode, session)
        return _ACK

    def _held_privately(self, cpu: int, con: int) -> bool:
        return any(
            other != con and held == (cpu, "private") for other, held in self.consoles.items()
        )
