"""The time bank's ticket feed under deliveries the real ticket plugin does not make
on purpose: a change heard twice, heard out of order, or never heard.

The ticket side is `TicketDesk` (tests/timebank_support.py), a throwaway plugin that
walks tickets through the real workflow and speaks the two documented hooks, so it can
deliver a change late or drop it. tests/test_timebank_tickets.py meets the real ticket
plugin; tests/test_timebank_crash.py loses a call to a kill -9.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from daemon.pluginhost import PluginHost
from plugins.timebank import earning, feed
from tests.support import Running
from tests.timebank_support import TicketDesk, balance, entries, timebank


@pytest.fixture
def desk() -> TicketDesk:
    return TicketDesk()


@pytest.fixture
def plugins(desk: TicketDesk) -> Iterator[PluginHost]:
    host = PluginHost()
    host.load(entry_points=False)
    host.register(desk, name="ticket-desk")
    yield host
    host.unregister("ticket-desk")


@pytest.fixture
async def hall(tmp_path: Path, plugins: PluginHost) -> AsyncIterator[Running]:
    async with timebank(tmp_path, plugins=plugins) as r:
        yield r


async def close(desk: TicketDesk, hall: Running, ticket: int) -> None:
    """register -> dispatch -> accept -> report -> verify on time, each delivered."""
    await desk.change(hall.host, ticket, "register")
    await desk.change(hall.host, ticket, "dispatch", handler="m-7")
    await desk.change(hall.host, ticket, "accept")
    await desk.change(hall.host, ticket, "report")
    await desk.change(hall.host, ticket, "verify", on_time=True)


async def test_a_change_heard_twice_pays_once(hall: Running, desk: TicketDesk) -> None:
    await close(desk, hall, 1)
    for change in desk.history:
        await desk.deliver(hall.host, change)
    assert await balance(hall, "member:m-7") == 60
    assert len(await entries(hall)) == 1


async def test_changes_heard_out_of_order_are_all_applied(hall: Running, desk: TicketDesk) -> None:
    """Two commits close together may be heard in the other order: the later one
    must not move the cursor past the earlier."""
    await desk.change(hall.host, 1, "collect", reporter="r-1")
    first = await desk.change(hall.host, 1, "register", deliver=False)
    await desk.change(hall.host, 2, "collect", reporter="r-2")  # heard first: a gap
    await desk.deliver(hall.host, first)  # heard late: applied already, by the catch-up
    assert await balance(hall, "resident:r-1") == 30
    await desk.change(hall.host, 2, "register")
    assert await balance(hall, "resident:r-2") == 30
    assert len(await entries(hall)) == 2


async def test_a_lost_call_is_caught_up_by_the_next_change(hall: Running, desk: TicketDesk) -> None:
    await desk.change(hall.host, 1, "collect", reporter="r-1")
    await desk.change(hall.host, 1, "register", deliver=False)  # the call is lost
    assert await balance(hall, "resident:r-1") is None
    answered = desk.answered
    await desk.change(hall.host, 1, "dispatch", handler="m-1")
    assert desk.answered > answered  # the gap made the time bank ask for the changes
    assert await balance(hall, "resident:r-1") == 30


async def stored_cursor(hall: Running) -> int:
    cursor: int = await hall.host.store.read(earning.cursor)
    return cursor


async def test_changes_no_rule_listens_to_are_let_through_without_a_write(
    tmp_path: Path, plugins: PluginHost, desk: TicketDesk
) -> None:
    """A creation, a merge, a dispatch, an acceptance: no rule pays on them, so the feed writes
    nothing (the ticket plugin waits for its listeners before it answers). The stored
    cursor stays behind until a change that pays moves it past them, and a restart in
    between replays them to no effect."""
    async with timebank(tmp_path, plugins=plugins) as hall:
        for ticket in (1, 2, 3):
            await desk.change(hall.host, ticket, "collect", reporter=f"r-{ticket}")
        await desk.change(hall.host, 3, "merge", data={"into": 1})
        assert await stored_cursor(hall) == 0
        assert feed.heard(hall.host).seq == 4
    async with timebank(tmp_path, plugins=plugins) as hall:  # the start's catch-up
        assert await entries(hall) == []
        assert await stored_cursor(hall) == 4  # moved past them, once, by the catch-up
        await desk.change(hall.host, 2, "register")
        assert await stored_cursor(hall) == 5
        assert await balance(hall, "resident:r-2") == 30
        await desk.change(hall.host, 2, "dispatch", handler="m-7")
        await desk.change(hall.host, 2, "accept")
        await desk.change(hall.host, 2, "report")
        await desk.change(hall.host, 2, "verify", on_time=True)  # writes: past all four
        assert await stored_cursor(hall) == 9
        assert await balance(hall, "member:m-7") == 60
