"""The link a bus owns for one PJLink device: a TCP connection, opened again on demand.

A PJLink device closes a connection that has been idle for about 30 s, and a long
poll interval or a quiet night easily exceeds that. A plain stream link would take the
close for a broken line, and the bus would back off and mark the screen unavailable
each time. Here a connection is disposable instead: an exchange that finds its
connection closed by the device opens a new one, reads the greeting, authenticates
with the command it sends, and goes on. Only a device that cannot be reached at all
(refused, no greeting) is `LinkDown`, so the bus backs off for a projector that is
really gone and for nothing else.

A command lost to a close is sent once more on the new connection; PJLink commands set
absolute values (POWR 1, INPT 31, AVMT 31), so sending one twice changes nothing.
An exchange that ends in doubt (no answer, half an answer, garbage, ERRA) closes its
connection, so a late reply can never be taken for the next command's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from daemon.errors import DeviceError, LinkDown, NoAnswer, ProtocolError
from drivers.pjlink.protocol import (
    AuthRejected,
    Event,
    Greeting,
    Parser,
    Reply,
    auth_digest,
    encode,
)

if TYPE_CHECKING:
    from daemon.config import BusConfig

log = logging.getLogger(__name__)

DEFAULT_PORT = 4352


class AuthFailed(DeviceError):
    """The device refused our password (`PJLINK ERRA`) or asks for one we do not have.

    Not `LinkDown`: the link works and retrying at once would fail the same way, so the
    device goes unavailable and its poll loop probes it again with backoff."""

    status = 503
    code = "auth_failed"


class _Dropped(Exception):
    """The device closed or reset the connection under an exchange."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    challenge: str | None = None  # the greeting's random, when a password is asked
    authenticated: bool = False
    parser: Parser = field(default_factory=Parser)
    events: deque[Event] = field(default_factory=deque)

    def closed_by_peer(self) -> bool:
        """True once the device's FIN or RST has arrived, which the event loop reads
        while the connection sits idle: the common idle drop is seen before sending."""
        r = self.reader
        return r.at_eof() or r.exception() is not None or self.writer.is_closing()

    async def next_event(self, timeout: float) -> Event:
        async with asyncio.timeout(timeout):
            while not self.events:
                try:
                    data = await self.reader.read(4096)
                except OSError as exc:
                    raise _Dropped(f"connection reset: {exc}") from exc
                if not data:
                    raise _Dropped("connection closed by the device")
                self.events.extend(self.parser.feed(data))
        return self.events.popleft()


class PJLinkLink:
    def __init__(self, url: str, host: str | None, port: int, timeout: float) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.timeout = timeout
        self._conn: _Connection | None = None
        self.connects = 0  # connections opened, for tests and diagnostics

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 1.0, bus: BusConfig | None = None
    ) -> PJLinkLink:
        parts = urlsplit(url)
        # A serial URL is reported by open(), where the bus logs it and backs off,
        # rather than raised here, where it would stop the daemon.
        host = parts.hostname if parts.scheme in ("tcp", "socket") else None
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            host, port = None, DEFAULT_PORT
        return cls(url, host, port, timeout)

    # -- what the bus calls -----------------------------------------------------------
    async def open(self) -> None:
        """Check that the device is reachable and speaks PJLink; keep the connection."""
        await self.close()
        self._conn = await self._connect()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.writer.close()
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()

    # -- exchanges ----------------------------------------------------------------------
    async def ask(self, body: str, param: str, password: str | None = None) -> Reply:
        """Send `%1BODY param` and return the device's reply (which may be ERR1..ERR4),
        on the open connection or, if the device dropped it, on a new one."""
        why = ""
        for _ in range(2):
            if self._conn is None or self._conn.closed_by_peer():
                if self._conn is not None:
                    log.debug("%s: the device closed the idle connection; reconnecting", self.url)
                self._drop()
                self._conn = await self._connect()
            try:
                return await self._ask(self._conn, body, param, password)
            except _Dropped as exc:
                log.debug("%s: %s under %s; sending it again", self.url, exc, body)
                self._drop()
                why = str(exc)
            except BaseException:
                self._drop()
                raise
        raise LinkDown(f"{self.url}: {why}, twice in one exchange")

    async def _ask(self, conn: _Connection, body: str, param: str, password: str | None) -> Reply:
        auth = ""
        if conn.challenge is not None and not conn.authenticated:
            if password is None:
                raise AuthFailed(
                    f"authentication failed: {self.url} asks for a password and the device "
                    "has none configured"
                )
            auth = auth_digest(conn.challenge, password)
        try:
            conn.writer.write(encode(body, param, auth))
            await conn.writer.drain()
        except (OSError, RuntimeError) as exc:
            raise _Dropped(f"write failed: {exc}") from exc
        try:
            event = await conn.next_event(self.timeout)
        except TimeoutError:
            half = ": half a reply, then silence" if conn.parser.pending else ""
            raise NoAnswer(
                f"{self.url}: no answer to {body} in {self.timeout:.1f} s{half}"
            ) from None
        if isinstance(event, AuthRejected):
            raise AuthFailed(
                f"authentication failed: {self.url} answered PJLINK ERRA; check the password"
            )
        if isinstance(event, ProtocolError):
            raise ProtocolError(f"{self.url}: {event.message}")
        if not isinstance(event, Reply) or event.body != body:
            raise ProtocolError(f"{self.url}: asked {body}, the device answered {event!r}")
        conn.authenticated = True
        return event

    async def _connect(self) -> _Connection:
        """A new connection, its greeting read. Every failure here is `LinkDown`: the
        device is not reachable as a PJLink device, and the bus must back off."""
        if self.host is None:
            raise LinkDown(f"{self.url}: a PJLink device is reached at tcp://HOST:PORT")
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise LinkDown(f"{self.url}: cannot connect: {str(exc) or 'timed out'}") from exc
        self.connects += 1
        conn = _Connection(reader, writer)
        try:
            event = await conn.next_event(self.timeout)
        except TimeoutError:
            why = f"no greeting in {self.timeout:.1f} s"
        except _Dropped as exc:
            why = f"{exc} before its greeting"
        except BaseException:
            writer.close()
            raise
        else:
            if isinstance(event, Greeting):
                conn.challenge = event.challenge
                return conn
            why = f"not a PJLink greeting: {event!r}"
        writer.close()
        raise LinkDown(f"{self.url}: {why}")

    def _drop(self) -> None:
        """Forget the connection at once (no await: also used on cancellation)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.writer.close()
