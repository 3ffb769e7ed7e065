"""The in-process event bus: state changes, availability, actions and plugin events.

Publishing never blocks: each subscriber has a bounded queue, and a subscriber that
falls behind loses its oldest events and is told how many (a `lagged` event), so a
stalled SSE client can never hold up a device.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
Observer = Callable[["Event"], "Awaitable[None] | None"]


@dataclass(frozen=True)
class Event:
    type: str  # "state", "availability", "action", or "<plugin>.<name>"
    source: str  # a device id, "bus:<id>", or a plugin name
    data: dict[str, Any]
    id: int = 0
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "at": self.at,
            "data": self.data,
        }


class Subscription:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        if self.dropped:
            lost, self.dropped = self.dropped, 0
            return Event("lagged", "events", {"dropped": lost})
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            yield await self.get()


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subs: set[Subscription] = set()
        self._ids = itertools.count(1)
        self.queue_size = queue_size

    def publish(self, type: str, source: str, data: dict[str, Any]) -> Event:
        event = Event(type, source, data, id=next(self._ids))
        for sub in self._subs:
            sub.offer(event)
        return event

    @asynccontextmanager
    async def subscribe(self, maxsize: int | None = None) -> AsyncIterator[Subscription]:
        sub = Subscription(maxsize or self.queue_size)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    async def observe(
        self, observer: Observer, ready: asyncio.Event, maxsize: int = 10_000
    ) -> None:
        """Hand every event to `observer` (sync or async), in order, from the calling
        task until it is cancelled; `ready` is set once subscribed, so the caller knows
        no event published after that is missed. An observer that raises is logged and
        gets the next event."""
        async with self.subscribe(maxsize=maxsize) as sub:
            ready.set()
            async for event in sub:
                try:
                    result = observer(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("an observer failed on event %s", event.type)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
