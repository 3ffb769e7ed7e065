"""Clocks for the scheduler: the system's, and one that tests move by hand.

The scheduler never calls `datetime.now()` or `asyncio.sleep` itself; it asks its
clock. So a test can stand on Sunday 2026-01-04 at 08:29, step one minute, and know
the step is over (the scheduler has run what fell due and sleeps again) without
waiting through real minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, time-zone aware."""
        ...

    async def sleep_until(self, when: dt.datetime | None, wake: asyncio.Event) -> None:
        """Return at `when` (never, when None) or as soon as `wake` is set."""
        ...


class SystemClock:
    """Wall-clock time. Sleeps in slices of at most a minute and re-reads the clock,
    so an NTP step or a suspended board does not leave a schedule sleeping past its
    time by the size of the jump."""

    max_slice_s = 60.0

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    async def sleep_until(self, when: dt.datetime | None, wake: asyncio.Event) -> None:
        while not wake.is_set():
            left = self.max_slice_s if when is None else (when - self.now()).total_seconds()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(left, self.max_slice_s))


class ManualClock:
    """A clock that moves only when told. `advance`/`move_to` return once every task that
    the move woke is asleep again on this clock (or finished): what was due has run."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._sleepers: dict[asyncio.Task[object], tuple[dt.datetime | None, asyncio.Event]] = {}
        self._moved = asyncio.Event()
        self._known: set[asyncio.Task[object]] = set()

    def now(self) -> dt.datetime:
        return self._now

    @property
    def sleeping(self) -> int:
        """How many tasks sleep on this clock now (a test waits for the scheduler's)."""
        return len(self._sleepers)

    async def sleep_until(self, when: dt.datetime | None, wake: asyncio.Event) -> None:
        task = asyncio.current_task()
        assert task is not None
        if when is not None and when <= self._now:
            await asyncio.sleep(0)
            return
        self._sleepers[task] = (when, wake)
        self._known.add(task)
        try:
            while not wake.is_set() and (when is None or when > self._now):
                moved = asyncio.ensure_future(self._moved.wait())
                woken = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait({moved, woken}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    moved.cancel()
                    woken.cancel()
        finally:
            self._sleepers.pop(task, None)

    async def move_to(self, when: dt.datetime, timeout: float = 10.0) -> None:
        if when < self._now:
            raise ValueError("a ManualClock does not go back")
        self._now = when
        due = {
            task
            for task, (until, wake) in self._sleepers.items()
            if (until is not None and until <= when) or wake.is_set()
        }
        self._moved.set()
        self._moved = asyncio.Event()
        await self.settle(due, timeout)

    async def advance(self, delta: dt.timedelta, timeout: float = 10.0) -> None:
        await self.move_to(self._now + delta, timeout)

    async def settle(
        self, tasks: set[asyncio.Task[object]] | None = None, timeout: float = 10.0
    ) -> None:
        """Wait until `tasks` (default: every task that ever slept on this clock) sleep
        again on a future time, or have finished: e.g. after a schedule was edited."""
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0)
        while True:
            pool = self._known if tasks is None else tasks
            waiting = [t for t in pool if not t.done() and not self._asleep(t)]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} task(s) did not go back to sleep")
            await asyncio.sleep(0.001)

    def _asleep(self, task: asyncio.Task[object]) -> bool:
        entry = self._sleepers.get(task)
        if entry is None:
            return False
        until, wake = entry
        return not wake.is_set() and (until is None or until > self._now)
