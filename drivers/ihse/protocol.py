"""IHSE Draco tera, sans-I/O: commands to bytes, bytes to events.

A frame is `1B 5B cmd len payload`, `len` a little-endian 16-bit count of the whole
frame (header included), every value in the payload little-endian 16-bit too. The
matrix answers a command with one byte: `06` ACK, `15` NAK, `07` busy (not executed,
send it again). A switch made elsewhere (front panel, another controller) reaches every
LAN client as the connect frame itself, so the same decoder reads both directions.

The keep-alive is `1B 5B 7A`; no vendor document we could find gives its length form,
so it is read as a frame like every other: `1B 5B 7A 05 00` (five bytes, no payload),
echoed back unchanged. No public document we found gives a command that reads the
connections back either: the state comes from ACKed commands and echoes only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Literal

from daemon.errors import DeviceRejected, ProtocolError

HEADER: Final = b"\x1b\x5b"
CONNECT: Final = 0x62  # extended connection: cpu, con, mode
KEEP_ALIVE: Final = 0x7A
ACK, NAK, BUSY = 0x06, 0x15, 0x07
MIN_FRAME = 5  # header, command, length
MAX_FRAME = 1024  # longer than any command this driver meets: a bad length, not a frame

Mode = Literal["full", "video", "private"]
MODE_CODES: Final[dict[Mode, int]] = {"full": 0, "video": 1, "private": 3}
MODE_NAMES: Final[dict[int, Mode]] = {code: name for name, code in MODE_CODES.items()}


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Nak:
    pass


@dataclass(frozen=True)
class Busy:
    pass


@dataclass(frozen=True)
class Connection:
    """A connect frame: CPU `cpu` (0: none) on console `con` in mode `mode` (the raw
    code: a firmware may know modes this driver does not)."""

    cpu: int
    con: int
    mode: int


@dataclass(frozen=True)
class KeepAlive:
    pass


@dataclass(frozen=True)
class Frame:
    """A well-formed frame of a command this driver does not use (a login, a macro)."""

    cmd: int
    payload: bytes


class DeviceBusy(DeviceRejected):
    """`07` even after the retries: the matrix is fine but could not take the command."""

    status = 503
    code = "device_busy"


Event = Ack | Nak | Busy | Connection | KeepAlive | Frame | ProtocolError
_SINGLE: Final[dict[int, Event]] = {ACK: Ack(), NAK: Nak(), BUSY: Busy()}


def frame(cmd: int, *values: int) -> bytes:
    """`1B 5B cmd len values...`, each value a little-endian 16-bit word."""
    payload = b"".join(struct.pack("<H", v) for v in values)
    return HEADER + bytes([cmd]) + struct.pack("<H", MIN_FRAME + len(payload)) + payload


def connect(cpu: int, con: int, mode: Mode = "full") -> bytes:
    """Connect `cpu` to console `con` (cpu 0 disconnects the console)."""
    return frame(CONNECT, cpu, con, MODE_CODES[mode])


def keep_alive() -> bytes:
    return frame(KEEP_ALIVE)


def decode(raw: bytes) -> Event:
    """The event one whole frame is (`raw` starts with the header, its length checked)."""
    cmd, payload = raw[2], raw[MIN_FRAME:]
    if cmd == CONNECT and len(payload) == 6:
        cpu, con, mode = struct.unpack("<HHH", payload)
        return Connection(cpu, con, mode)
    if cmd == KEEP_ALIVE and not payload:
        return KeepAlive()
    if cmd in (CONNECT, KEEP_ALIVE):
        return ProtocolError(f"Draco frame 0x{cmd:02X} with a {len(payload)}-byte payload")
    return Frame(cmd, payload)


class Parser:
    """Bytes in, events out; keeps a partial frame until the rest arrives. Bytes that
    start no frame and are no answer are garbage: one ProtocolError, the buffer dropped
    (the next frame after them starts clean)."""

    def __init__(self) -> None:
        self._buffer = b""

    def reset(self) -> None:
        """Drop a partial frame: a new connection, or a reply that never finished."""
        self._buffer = b""

    def feed(self, data: bytes) -> list[Event]:
        self._buffer += data
        events: list[Event] = []
        while self._buffer:
            first = self._buffer[0]
            if first in _SINGLE:
                events.append(_SINGLE[first])
                self._buffer = self._buffer[1:]
                continue
            if not HEADER.startswith(self._buffer[:2]):
                events.append(ProtocolError(f"not a Draco frame: {self._buffer[:32]!r}"))
                self._buffer = b""
                break
            if len(self._buffer) < MIN_FRAME:
                break
            (length,) = struct.unpack_from("<H", self._buffer, 3)
            if not MIN_FRAME <= length <= MAX_FRAME:
                events.append(ProtocolError(f"Draco frame length {length}: {self._buffer[:32]!r}"))
                self._buffer = b""
                break
            if len(self._buffer) < length:
                break
            raw, self._buffer = self._buffer[:length], self._buffer[length:]
            events.append(decode(raw))
        return events
