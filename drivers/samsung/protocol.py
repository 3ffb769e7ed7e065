"""Samsung MDC (Multiple Display Control), sans-I/O: frames in, events out.

A frame is `AA cmd id len data... ck`, the checksum being the low 8 bits of the sum of
every byte after `AA`. A display answers `AA FF id len 'A'|'N' rcmd data... ck`: an
ack carries the command's value(s), a nak one error code. Nothing here reads a
socket or a clock, so every rule is tested on byte fixtures.

Several displays can share one RS-232 daisy chain, each with its own id, so a reply
parser is built for one id and drops complete replies of the others. Bytes that are
not a frame (noise, a baud-rate mismatch, a half frame followed by a new one) come
out as one `ProtocolError` per run of garbage, and the parser resynchronises on the
next `AA`, so a request waiting on the line fails at once instead of timing out.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.errors import ProtocolError

HEADER = 0xAA
REPLY = 0xFF  # the command byte of every answer
ACK = 0x41  # 'A'
NAK = 0x4E  # 'N'
BROADCAST = 0xFE  # every display obeys, none answers

# Commands this driver uses. A command sent with no data reads the value ("get");
# with data it sets it and the ack echoes the value now in force.
STATUS = 0x00  # get only: power, volume, mute, input, aspect, N time NF, F time NF
POWER = 0x11  # 0 off, 1 on, 2 reboot
VOLUME = 0x12  # 0..100
MUTE = 0x13  # 0 off, 1 on
INPUT = 0x14  # input source code, e.g. HDMI1 0x21, HDMI2 0x23, DP 0x25

# Samsung's documents describe a nak's byte only as "a code showing what error has
# occurred" and list no values. These are the meanings this project gives them (the
# emulator answers them); a driver always reports the raw code as well.
NAK_UNSUPPORTED = 0x01  # no such command on this model
NAK_BAD_VALUE = 0x02  # a value out of range or not available (an input it lacks)
NAK_NOT_NOW = 0x03  # not possible in the current state (busy, in standby)

NAK_MEANINGS = {
    NAK_UNSUPPORTED: "command not supported",
    NAK_BAD_VALUE: "bad value",
    NAK_NOT_NOW: "not possible now",
}

MAX_DATA = 255  # `len` is one byte


def checksum(body: bytes) -> int:
    """The low 8 bits of the sum of the bytes after the header."""
    return sum(body) & 0xFF


def frame(cmd: int, display_id: int, data: bytes = b"") -> bytes:
    """One frame, header and checksum included."""
    if len(data) > MAX_DATA:
        raise ValueError(f"MDC data is at most {MAX_DATA} bytes, got {len(data)}")
    body = bytes([cmd, display_id, len(data)]) + data
    return bytes([HEADER]) + body + bytes([checksum(body)])


# -- requests -------------------------------------------------------------------------
def get(cmd: int, display_id: int) -> bytes:
    """Read a value (the status, the power, the input...)."""
    return frame(cmd, display_id)


def set_value(cmd: int, display_id: int, value: int) -> bytes:
    """Set a one-byte value (power, mute, input source, volume)."""
    return frame(cmd, display_id, bytes([value]))


# -- answers (what a display sends; the emulator's side) -------------------------------
def ack(display_id: int, cmd: int, data: bytes = b"") -> bytes:
    return frame(REPLY, display_id, bytes([ACK, cmd]) + data)


def nak(display_id: int, cmd: int, code: int) -> bytes:
    return frame(REPLY, display_id, bytes([NAK, cmd, code]))


# -- events -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """Any well-formed frame: a request (a display's view) or a reply."""

    cmd: int
    display_id: int
    data: bytes


@dataclass(frozen=True)
class Ack:
    cmd: int
    data: bytes


@dataclass(frozen=True)
class Nak:
    cmd: int
    code: int

    def describe(self) -> str:
        meaning = NAK_MEANINGS.get(self.code, "unknown error code")
        return f"command 0x{self.cmd:02X} refused: NAK code 0x{self.code:02X} ({meaning})"


@dataclass(frozen=True)
class Status:
    """The reply to STATUS (0x00): the four values a screen's state needs."""

    power: int
    volume: int
    mute: int
    input: int

    @classmethod
    def from_data(cls, data: bytes) -> Status:
        # Models add fields after these (aspect, timers); only the first four matter.
        if len(data) < 4:
            raise ProtocolError(f"status reply has {len(data)} data bytes, expected at least 4")
        return cls(power=data[0], volume=data[1], mute=data[2], input=data[3])


Reply = Ack | Nak | ProtocolError


class FrameReader:
    """Splits a byte stream into frames, keeping a partial frame for the next chunk.

    Garbage (bytes before an `AA`, a frame with a bad checksum) gives one
    `ProtocolError` per run: the run ends at the next good frame, so the events do not
    depend on how the stream was chunked.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_garbage = False

    def reset(self) -> None:
        """Forget a partial frame (a new connection, or a new request on the line)."""
        self._buffer.clear()
        self._in_garbage = False

    def feed(self, data: bytes) -> list[Frame | ProtocolError]:
        self._buffer += data
        events: list[Frame | ProtocolError] = []
        buf = self._buffer
        while buf:
            start = buf.find(HEADER)
            if start != 0:
                skipped = bytes(buf[: start if start > 0 else len(buf)])
                del buf[: len(skipped)]
                self._garbage(
                    events, f"{len(skipped)} bytes outside a frame: {skipped[:16].hex(' ')}"
                )
                continue
            if len(buf) < 4:
                break  # the header and the length are not all here yet
            end = 4 + buf[3] + 1
            if len(buf) < end:
                break
            body, ck = bytes(buf[1 : end - 1]), buf[end - 1]
            if checksum(body) != ck:
                # Drop only the `AA`: a real frame may start inside what we took for one.
                del buf[:1]
                self._garbage(
                    events,
                    f"bad checksum 0x{ck:02X} (expected 0x{checksum(body):02X}) "
                    f"on {bytes([HEADER]) + body[:16]!r}",
                )
                continue
            del buf[:end]
            self._in_garbage = False
            events.append(Frame(body[0], body[1], body[3:]))
        return events

    def _garbage(self, events: list[Frame | ProtocolError], what: str) -> None:
        if not self._in_garbage:
            events.append(ProtocolError(f"MDC: {what}"))
            self._in_garbage = True


class ReplyParser:
    """The controller's side for one display id: replies in, `Ack`/`Nak` out.

    Replies addressed to other ids (the rest of a daisy chain) and frames that are not
    replies (a request echoed by a converter) are dropped; a reply that breaks the
    reply layout is a `ProtocolError`.
    """

    def __init__(self, display_id: int) -> None:
        self.display_id = display_id
        self._reader = FrameReader()

    def reset(self) -> None:
        self._reader.reset()

    def feed(self, data: bytes) -> list[Reply]:
        events: list[Reply] = []
        for item in self._reader.feed(data):
            if isinstance(item, ProtocolError):
                events.append(item)
            elif item.cmd == REPLY and item.display_id == self.display_id:
                events.append(self._decode(item.data))
        return events

    @staticmethod
    def _decode(data: bytes) -> Reply:
        if len(data) >= 2 and data[0] == ACK:
            return Ack(data[1], bytes(data[2:]))
        if len(data) == 3 and data[0] == NAK:
            return Nak(data[1], data[2])
        return ProtocolError(f"MDC: malformed reply data {data.hex(' ') or '(none)'}")
