"""One owner per physical line.

A `Bus` owns a `Link` (a serial line, a TCP connection, a Modbus client) and is the only
thing that talks on it. Exchanges queue in one priority queue, commands ahead of polls,
and run one at a time with `gap_ms` of silence between them and a timeout each. When
the link fails the bus answers every waiting and new exchange with `LinkDown` at once
and reconnects with bounded exponential backoff, never faster than `backoff_min_s`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, Protocol, TypeVar

from daemon.errors import GridhallError, LinkDown, NoAnswer, ProtocolError

log = logging.getLogger(__name__)

T = TypeVar("T")
L = TypeVar("L", bound="Link")


class Link(Protocol):
    """A transport. `open` raises on failure; an exchange that finds the link broken
    raises `LinkDown` (or `ConnectionError`/`OSError`), a silent peer `NoAnswer`."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class Priority(IntEnum):
    COMMAND = 0
    POLL = 1


@dataclass
class Backoff:
    """Bounded exponential backoff: min, 2*min, 4*min ... max, then max forever."""

    min_s: float = 1.0
    max_s: float = 10.0
    _next: float = field(default=0.0, init=False)

    def reset(self) -> None:
        self._next = 0.0

    def next_delay(self) -> float:
        self._next = self.min_s if self._next == 0 else min(self._next * 2, self.max_s)
        return self._next


@dataclass
class BusStats:
    exchanges: int = 0
    errors: int = 0
    # Failed exchanges by the code of the error answered (timeout, link_down, ...).
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0
    connect_attempts: int = 0
    reconnects: int = 0
    last_error: str | None = None
    # How long the last command waited in the queue before reaching the wire (ms):
    # with commands ahead of polls, at most the rest of one exchange.
    command_wait_ms: float = 0.0

    def failed(self, kind: str) -> None:
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    fn: Callable[[Any], Awaitable[Any]] = field(compare=False)
    timeout: float = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    queued_at: float = field(compare=False, default=0.0)


UpListener = Callable[[bool], None]
WaitObserver = Callable[[int, float], None]  # (priority, seconds queued)


class Bus(Generic[L]):
    def __init__(
        self,
        bus_id: str,
        link: L,
        *,
        gap_ms: int = 0,
        timeout_s: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.id = bus_id
        self.link = link
        self.gap_s = gap_ms / 1000
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff()
        self.stats = BusStats()
        self.up = False
        self._up_event = asyncio.Event()
        self._queue: asyncio.PriorityQueue[_Job] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._listeners: list[UpListener] = []
        self._task: asyncio.Task[None] | None = None
        self._last_frame_end = 0.0
        self._first_failure_logged = False
        # Told how long each exchange waited in the queue (the daemon's metrics).
        self.on_wait: WaitObserver = lambda priority, seconds: None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"bus:{self.id}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._fail_pending(LinkDown(f"bus {self.id} stopped"))
        await self._close_link()

    def on_up_change(self, listener: UpListener) -> None:
        self._listeners.append(listener)

    async def wait_up(self) -> None:
        await self._up_event.wait()

    # -- exchanges -------------------------------------------------------------------
    async def exchange(
        self,
        fn: Callable[[L], Awaitable[T]],
        priority: Priority = Priority.COMMAND,
        timeout: float | None = None,
    ) -> T:
        """Run `fn(link)` as one exchange on the line and return its result."""
        if not self.up:
            raise LinkDown(f"bus {self.id} is down: {self.stats.last_error or 'connecting'}")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        job = _Job(
            int(priority),
            next(self._seq),
            fn,
            timeout if timeout is not None else self.timeout_s,
            future,
            time.monotonic(),
        )
        self._queue.put_nowait(job)
        return await future

    # -- the owner ---------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._connect()
            while self.up:
                job = await self._queue.get()
                if job.future.done():  # the caller gave up (cancelled)
                    continue
                await self._run_job(job)

    async def _connect(self) -> None:
        while True:
            self.stats.connect_attempts += 1
            try:
                await asyncio.wait_for(self.link.open(), timeout=max(self.timeout_s, 2.0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure to open is a reason to back off
                self._note_failure(f"connect failed: {str(exc) or type(exc).__name__}")
                await self._close_link()
                await asyncio.sleep(self.backoff.next_delay())
                continue
            if self.stats.connect_attempts > 1:
                self.stats.reconnects += 1
                log.warning("bus %s: connected again", self.id)
            # The backoff resets after the first good exchange, not here: a peer that
            # accepts and drops at once must not turn reconnects into a tight loop.
            self._first_failure_logged = False
            self._set_up(True)
            return

    async def _run_job(self, job: _Job) -> None:
        wait = self._last_frame_end + self.gap_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        waited = time.monotonic() - job.queued_at
        if job.priority == Priority.COMMAND:
            self.stats.command_wait_ms = waited * 1000
        self.on_wait(job.priority, waited)
        self.stats.exchanges += 1
        try:
            # The link's own timeout answers first; this is the safety net. (A timeout
            # block, not wait_for: no extra task, and this is every command's path.)
            async with asyncio.timeout(job.timeout + 0.5):
                result = await job.fn(self.link)
        except (TimeoutError, NoAnswer) as exc:
            self.stats.timeouts += 1
            self.stats.failed(NoAnswer.code)
            self._settle(job, exc if isinstance(exc, NoAnswer) else NoAnswer("no answer in time"))
        except (LinkDown, ConnectionError, OSError) as exc:
            self.stats.errors += 1
            self.stats.failed(LinkDown.code)
            self._note_failure(str(exc) or type(exc).__name__)
            self._settle(job, exc if isinstance(exc, LinkDown) else LinkDown(str(exc)))
            await self._lose_link()
        except GridhallError as exc:
            self.stats.errors += 1
            self.stats.failed(exc.code)
            self._settle(job, exc)
        except asyncio.CancelledError:
            self._settle(job, LinkDown(f"bus {self.id} stopped"))
            raise
        except Exception as exc:  # a driver bug or garbage the driver did not expect
            self.stats.errors += 1
            self.stats.failed(ProtocolError.code)
            log.exception("bus %s: exchange raised", self.id)
            self._settle(job, ProtocolError(f"{type(exc).__name__}: {exc}"))
        else:
            self.backoff.reset()
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._last_frame_end = time.monotonic()

    @staticmethod
    def _settle(job: _Job, exc: BaseException) -> None:
        if not job.future.done():
            job.future.set_exception(exc)

    async def _lose_link(self) -> None:
        self._set_up(False)
        self._fail_pending(LinkDown(f"bus {self.id} lost its link"))
        await self._close_link()
        await asyncio.sleep(self.backoff.next_delay())

    def _fail_pending(self, exc: GridhallError) -> None:
        while not self._queue.empty():
            self._settle(self._queue.get_nowait(), exc)

    async def _close_link(self) -> None:
        try:
            await self.link.close()
        except Exception:  # closing a broken link may fail; it is closed either way
            log.debug("bus %s: close failed", self.id, exc_info=True)

    def _set_up(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up:
            self._up_event.set()
        else:
            self._up_event.clear()
        for listener in self._listeners:
            listener(up)

    def _note_failure(self, message: str) -> None:
        self.stats.last_error = message
        # Loud once, quiet for the repeats: a dead line must not flood the journal.
        if not self._first_failure_logged:
            log.warning("bus %s: %s (retrying with backoff)", self.id, message)
            self._first_failure_logged = True
        else:
            log.debug("bus %s: %s", self.id, message)
