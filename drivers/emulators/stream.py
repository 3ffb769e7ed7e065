"""The base of byte-stream emulators: a loopback TCP server, or a real pty.

A subclass implements the device: `greeting()` for what it sends on connect, and
`feed(session, data)` that parses what the controller sent and returns the bytes to
answer. Faults are injected from tests or the demo by setting `fault`:

- `Fault.SILENT`: read everything, answer nothing;
- `Fault.GARBAGE`: answer bytes that no protocol allows;
- `Fault.DISCONNECT`: drop the connection when a request arrives;
- `Fault.BUSY`: ask `busy_reply()` of the subclass (its protocol's "busy, retry").

`push(data)` sends unsolicited bytes to every connected controller (a front panel).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections import deque
from enum import StrEnum
from typing import Any

from drivers.emulators.base import Emulator

GARBAGE = b"\x00\xff\x13\x37garbage\xfe\r\n"
EMULATOR_LOG = 1000


class Fault(StrEnum):
    NONE = "none"
    SILENT = "silent"
    GARBAGE = "garbage"
    DISCONNECT = "disconnect"
    BUSY = "busy"


class Session:
    """One controller's connection; subclasses keep per-connection state here."""

    def __init__(self, write: Any, close: Any) -> None:
        self.write = write
        self.close = close
        self.buffer = b""
        self.state: dict[str, Any] = {}


class StreamEmulator(Emulator):
    def __init__(self, host: str, port: int, options: Any = None) -> None:
        super().__init__(host, port, options if options is not None else self.Options())
        self.fault = Fault.NONE
        self.connections = 0
        # The latest chunks controllers sent, for tests; bounded, as the demo runs for
        # months (EMULATOR_LOG is the bound of every emulator's own log).
        self.received: deque[bytes] = deque(maxlen=EMULATOR_LOG)
        self._server: asyncio.Server | None = None
        self._sessions: set[Session] = set()
        self._pty_master: int | None = None
        self.pty_path: str | None = None

    # -- the device, for subclasses ------------------------------------------------
    def greeting(self, session: Session) -> bytes:
        return b""

    def feed(self, session: Session, data: bytes) -> bytes:
        """Parse what arrived (keep partial frames in `session.buffer`); return a reply."""
        raise NotImplementedError

    def busy_reply(self, session: Session, data: bytes) -> bytes:
        return b""

    # -- faults and unsolicited output ---------------------------------------------
    def _answer(self, session: Session, data: bytes) -> bytes | None:
        self.received.append(data)
        if self.fault is Fault.SILENT:
            return b""
        if self.fault is Fault.GARBAGE:
            return GARBAGE
        if self.fault is Fault.DISCONNECT:
            return None
        if self.fault is Fault.BUSY:
            return self.busy_reply(session, data)
        return self.feed(session, data)

    def push(self, data: bytes) -> None:
        for session in list(self._sessions):
            session.write(data)

    # -- TCP -------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in list(self._sessions):
                session.close()
            await self._server.wait_closed()
            self._server = None
        self._close_pty()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        session = Session(writer.write, writer.close)
        self._sessions.add(session)
        try:
            if hello := self.greeting(session):
                writer.write(hello)
            while data := await reader.read(4096):
                reply = self._answer(session, data)
                if reply is None:
                    break
                if reply:
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._sessions.discard(session)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # -- a real serial line: the emulator holds the pty's master side ---------------
    async def start_pty(self) -> str:
        """Serve on a pty; returns the path of the side the driver opens as a serial port."""
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        self._pty_master = master
        self._pty_slave = slave  # kept open so the line stays up between driver opens
        self.pty_path = os.ttyname(slave)
        os.set_blocking(master, False)
        session = Session(lambda data: os.write(master, data), lambda: None)
        self._pty_session = session
        self._sessions.add(session)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            reply = self._answer(session, data)
            if reply:
                os.write(master, reply)

        loop.add_reader(master, readable)
        self.connections += 1
        return self.pty_path

    def _close_pty(self) -> None:
        if self._pty_master is not None:
            asyncio.get_running_loop().remove_reader(self._pty_master)
            os.close(self._pty_master)
            os.close(self._pty_slave)
            self._pty_master = None
            self._sessions.discard(self._pty_session)
