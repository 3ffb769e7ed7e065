"""A byte-stream link: TCP, or a serial line through pyserial.

`tcp://host:port` and `socket://host:port` (a serial-to-Ethernet converter) are TCP
connections; a device path (`/dev/ttyUSB0`, a pty), `rfc2217://` or `loop://` is a
serial line opened through pyserial-asyncio-fast. One reader task hands every chunk
that arrives to the link's listeners: the sans-I/O protocols of the devices on it,
which turn bytes into replies and unsolicited reports (a matrix's front panel).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from daemon.errors import LinkDown, NoAnswer
from drivers.base import Driver

if TYPE_CHECKING:
    from daemon.config import BusConfig

log = logging.getLogger(__name__)

DataListener = Callable[[bytes], None]
ResetListener = Callable[[], None]
CloseListener = Callable[[str], None]
R = TypeVar("R")


class StreamLink:
    def __init__(self, url: str, serial: dict[str, Any] | None = None) -> None:
        self.url = url
        self.serial = serial or {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._data_listeners: list[DataListener] = []
        self._reset_listeners: list[ResetListener] = []
        self._close_listeners: list[CloseListener] = []
        self.broken: str | None = "not connected"

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 1.0, bus: BusConfig | None = None
    ) -> StreamLink:
        return cls(url, bus.serial_settings() if bus is not None else {"baudrate": 9600})

    def listen(
        self,
        on_data: DataListener,
        on_reset: ResetListener | None = None,
        on_close: CloseListener | None = None,
    ) -> None:
        """`on_data` gets every chunk read; `on_reset` is called on every (re)connect so
        a protocol drops half a frame left from the broken connection; `on_close` when
        the line breaks, so a request waiting for its reply fails at once."""
        self._data_listeners.append(on_data)
        if on_reset is not None:
            self._reset_listeners.append(on_reset)
        if on_close is not None:
            self._close_listeners.append(on_close)

    async def open(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme in ("tcp", "socket"):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        else:
            import serial_asyncio_fast  # only a serial hall pays for the import

            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=self.url, **self.serial
            )
        self._reader, self._writer = reader, writer
        self.broken = None
        for reset in self._reset_listeners:
            reset()
        self._task = asyncio.create_task(self._read(reader), name=f"read:{self.url}")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(4096):
                for listener in self._data_listeners:
                    try:
                        listener(data)
                    except Exception:  # a protocol bug must not stop the line
                        log.exception("%s: listener failed on %r", self.url, data[:64])
            self.broken = "closed by the peer"
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.broken = f"read failed: {exc}"
        for closed in self._close_listeners:
            closed(self.broken)

    async def write(self, data: bytes) -> None:
        if self.broken or self._writer is None:
            raise LinkDown(f"{self.url}: {self.broken or 'not connected'}")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            self.broken = f"write failed: {exc}"
            raise LinkDown(f"{self.url}: {self.broken}") from exc

    async def close(self) -> None:
        self.broken = self.broken or "closed"
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None


class Replies(Generic[R]):
    """Pairs a request with the reply its protocol parses next.

    A driver calls `expect()` before writing a request, feeds each reply its protocol
    parses to `resolve()` (False: nobody waits, so it is unsolicited), and awaits the
    future with `wait()`, which raises NoAnswer after the timeout or LinkDown if the
    line broke meanwhile.
    """

    def __init__(self) -> None:
        self._waiter: asyncio.Future[R] | None = None

    def expect(self) -> asyncio.Future[R]:
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def resolve(self, reply: R) -> bool:
        if self._waiter is None or self._waiter.done():
            return False
        self._waiter.set_result(reply)
        return True

    def discard(self, waiter: asyncio.Future[R]) -> None:
        """Forget `waiter` (its request ended without `wait`, e.g. the write failed), so
        it cannot take the next event, such as a greeting after the reconnect."""
        if self._waiter is waiter:
            self._waiter = None

    def fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    async def wait(self, waiter: asyncio.Future[R], timeout: float, link: StreamLink) -> R:
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            if link.broken:
                raise LinkDown(f"{link.url}: {link.broken}") from None
            raise NoAnswer(f"{link.url}: no answer in {timeout:.1f} s") from None
        finally:
            if self._waiter is waiter:
                self._waiter = None


class StreamDriver(Driver[StreamLink], Generic[R]):
    """A driver over a byte stream with a sans-I/O protocol.

    Subclasses implement `parse(data)` (bytes in, protocol events out, keeping partial
    frames), `reset_parser()`, `is_reply(event)` and `on_unsolicited(event)`. A request
    is one exchange on the bus: the frame written, the next reply awaited. A parser
    that meets bytes its protocol does not allow returns a `ProtocolError` instance as
    the event: a waiting request raises it (503), and the device is marked faulted.
    """

    link_type = StreamLink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replies: Replies[R] = Replies()
        if self._io is not None:
            self.io.bus.link.listen(self._on_data, self.reset_parser, self._on_close)

    # -- for subclasses ----------------------------------------------------------------
    def parse(self, data: bytes) -> list[R]:
        raise NotImplementedError

    def reset_parser(self) -> None:
        raise NotImplementedError

    def is_reply(self, event: R) -> bool:
        return True

    def on_unsolicited(self, event: R) -> None:
        log.debug("%s: unsolicited %r", self.config.id, event)

    def before_request(self, frame: bytes) -> None:
        """Called in the exchange, just before `frame` is written (drop stale input,
        note which reply to accept)."""

    def after_request(self) -> None:
        """Called in the exchange once the reply came, or did not."""

    # -- the plumbing ------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        for event in self.parse(data):
            if not (self.is_reply(event) and self.replies.resolve(event)):
                self.on_unsolicited(event)

    def _on_close(self, why: str) -> None:
        self.replies.fail(LinkDown(f"{self.io.bus.link.url}: {why}"))

    async def request(self, frame: bytes, timeout: float | None = None) -> R:
        """Write `frame` and return the protocol's next reply (NoAnswer after the timeout)."""
        wait_s = timeout if timeout is not None else self.io.bus.timeout_s

        async def run(link: StreamLink) -> R:
            self.before_request(frame)
            waiter = self.replies.expect()
            try:
                await link.write(frame)
                reply = await self.replies.wait(waiter, wait_s, link)
            finally:
                self.replies.discard(waiter)
                self.after_request()
            if isinstance(reply, BaseException):
                raise reply
            return reply

        return await self.io.exchange(run, timeout=wait_s)
