"""The time bank meets the real ticket plugin, through hooks only.

Tickets go round the loop through the ticket API (report, register, dispatch, accept,
report back, verify), on the test district with a member on duty in each grid and the
host's clock on a working Monday. The time bank's API is only read here, never asked
to pay: what is paid, the hooks paid. tests/test_timebank_feed.py covers deliveries the
real plugin does not make on purpose (twice, out of order); tests/test_timebank_crash.py
a call lost to a kill -9.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.clock import ManualClock
from daemon.hookspecs import TICKET_FIELDS
from tests.support import ROOT, Running
from tests.ticket_support import G2, local, report
from tests.timebank_support import (
    TB,
    balance,
    close,
    entries,
    hall_with_tickets,
    organiser,
    transition,
)

MONDAY = "2026-01-05T09:00"  # an ordinary working Monday; a simple case is due at 11:00


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[Running]:
    async with hall_with_tickets(tmp_path, ManualClock(local(MONDAY))) as h:
        yield h


async def filed(hall: Running, **fields: Any) -> int:
    """A report through the ticket API (at a point of grid 01: member M1 on duty)."""
    r = await report(hall, **fields)
    assert r.status_code == 201, r.text
    ticket: int = r.json()["id"]
    return ticket


async def member_accounts(hall: Running) -> dict[str, int]:
    r = await hall.client.get(f"{TB}/accounts?kind=member", headers=hall.as_role("viewer"))
    assert r.status_code == 200, r.text
    return {a["id"]: a["balance"] for a in r.json()}


async def test_a_ticket_closed_on_time_pays_its_handler_through_hooks_only(
    hall: Running,
) -> None:
    writes: list[str] = []  # every request to the time bank that is not a read

    async def spy(request: httpx.Request) -> None:
        if request.url.path.startswith(TB) and request.method != "GET":
            writes.append(f"{request.method} {request.url.path}")

    hall.client.event_hooks["request"].append(spy)
    ticket = await filed(hall, channel="resident", reporter="R-3")
    registered = await transition(hall, ticket, "register")
    await transition(hall, ticket, "dispatch")  # a simple case: to the grid member
    await transition(hall, ticket, "accept")
    await transition(hall, ticket, "report")
    verified = await transition(hall, ticket, "verify")

    # What the rules read, as the real plugin writes it.
    closed_ticket = verified["ticket"]
    assert set(closed_ticket) == set(TICKET_FIELDS)
    assert closed_ticket["handler"] == closed_ticket["member"] == "M1"
    assert closed_ticket["on_time"] is True
    assert (registered["ticket"]["channel"], registered["ticket"]["reporter"]) == (
        "resident",
        "R-3",
    )

    assert await balance(hall, "member:M1") == 60
    assert await balance(hall, "resident:R-3") == 30  # the report was real
    assert await balance(hall, "pool:community") == -90
    report_award, close_award = await entries(hall)
    assert report_award["source"] == f"ticket:{ticket}:report-verified:{registered['seq']}"
    assert report_award["to"] == "resident:R-3" and report_award["role"] == "reporter"
    assert close_award["source"] == f"ticket:{ticket}:closed-on-time:{verified['seq']}"
    assert close_award["to"] == "member:M1" and close_award["role"] == "grid_member"
    assert close_award["actor"] == "tickets:test-dispatcher"
    assert close_award["memo"] == f"ticket {ticket} verify"
    # Dated on the host's clock, the one the ticket was closed on: January's board.
    assert close_award["at"] == verified["at"]
    r = await hall.client.get(f"{TB}/leaderboard?period=2026-01", headers=hall.as_role("viewer"))
    [top] = r.json()["boards"]["grid_member"]
    assert (top["account"], top["earned"]) == ("member:M1", 60)
    assert writes == []


async def test_a_late_close_pays_nothing(hall: Running) -> None:
    ticket = await filed(hall)  # no reporter: nobody to pay for the report
    await transition(hall, ticket, "register")
    await transition(hall, ticket, "dispatch")
    await transition(hall, ticket, "accept")
    await transition(hall, ticket, "report")
    await hall.host.clock.advance(dt.timedelta(hours=2, minutes=1))  # past 11:00
    verified = await transition(hall, ticket, "verify")
    assert verified["ticket"]["on_time"] is False
    assert await balance(hall, "member:M1") is None
    assert await entries(hall) == []


async def test_a_reopen_takes_the_award_back_and_a_second_close_pays_again(
    hall: Running,
) -> None:
    ticket = await filed(hall)
    first = await close(hall, ticket)
    assert await balance(hall, "member:M1") == 60
    reopened = await transition(hall, ticket, "reopen", reason="the litter is back")
    assert await balance(hall, "member:M1") == 0
    await transition(hall, ticket, "accept")
    await transition(hall, ticket, "report")
    second = await transition(hall, ticket, "verify")
    assert await balance(hall, "member:M1") == 60
    paid, back, paid_again = await entries(hall)
    assert back["kind"] == "reversal" and back["reversal_of"] == paid["id"]
    assert back["memo"] == f"ticket {ticket} reopen: the litter is back"
    assert paid["reversed_by"] == back["id"] and paid_again["reversed_by"] is None
    assert [e["source"] for e in (paid, back, paid_again)] == [
        f"ticket:{ticket}:closed-on-time:{c['seq']}" for c in (first, reopened, second)
    ]


async def test_an_invalid_report_takes_the_reporters_award_back(hall: Running) -> None:
    ticket = await filed(hall, channel="hotline", reporter="R-3")
    await transition(hall, ticket, "register")
    assert await balance(hall, "resident:R-3") == 30
    await transition(hall, ticket, "invalidate", reason="staged photo")
    assert await balance(hall, "resident:R-3") == 0
    award, back = await entries(hall)
    assert back["reversal_of"] == award["id"] and back["from"] == "resident:R-3"
    assert back["memo"] == f"ticket {ticket} invalidate: staged photo"


async def test_a_members_own_report_through_the_app_is_not_rewarded(hall: Running) -> None:
    own = await filed(hall, channel="grid_app", reporter="M1")
    theirs = await filed(hall, channel="hotline", reporter="R-2")
    await transition(hall, own, "register")
    await transition(hall, theirs, "register")
    assert [e["to"] for e in await entries(hall)] == ["resident:R-2"]


async def test_only_the_tickets_own_grid_member_earns_a_close(hall: Running) -> None:
    """A department handles coordination cases and is judged by the measures: it earns
    no credits, and no `member:<department>` account is opened for it."""
    parking = await filed(hall, category="city.parking")  # coordination: police
    verified = await close(hall, parking)
    assert verified["ticket"]["handler"] == "police" and verified["ticket"]["on_time"]
    litter = await filed(hall)  # simple, but the desk sends it to sanitation
    assert (await close(hall, litter, handler="sanitation"))["ticket"]["on_time"]
    covered = await filed(hall)  # G1's case handled by G2's member: not his own grid's
    assert (await close(hall, covered, handler="M2"))["ticket"]["on_time"]
    assert await member_accounts(hall) == {}
    # The grid member handling a coordination case himself closed it: he earns it.
    own = await filed(hall, category="city.parking")
    await close(hall, own, handler="M1")
    at_g2 = await filed(hall, grid=G2, lon=None, lat=None)
    await close(hall, at_g2)
    assert await member_accounts(hall) == {"member:M1": 60, "member:M2": 60}
    r = await hall.client.get(f"{TB}/rules", headers=hall.as_role("viewer"))
    [rule] = [x for x in r.json() if x["id"] == "closed-on-time"]
    assert rule["same"] == ["handler", "member"] and rule["pay"] == "handler"


BLOCKED = """
[timebank.limits.member]
max = 60
policy = "block"
"""


async def test_an_award_a_limit_blocks_is_kept_out_and_shown(tmp_path: Path) -> None:
    """Nobody is there to answer 409 to: the refused award is recorded with its
    reason in the audit, a `timebank.refused` event goes out, and the feed goes on."""
    async with hall_with_tickets(tmp_path, ManualClock(local(MONDAY)), BLOCKED) as hall:
        async with hall.host.events.subscribe() as sub:
            await close(hall, await filed(hall))
            second = await filed(hall)
            verified = await close(hall, second)
            event = await anext(e async for e in sub if e.type == "timebank.refused")
        assert event.data["source"] == f"ticket:{second}:closed-on-time:{verified['seq']}"
        assert await balance(hall, "member:M1") == 60
        r = await hall.client.get(f"{TB}/audit", headers=organiser(hall))
        [refused] = r.json()["refused"]
        assert refused["account"] == "member:M1" and refused["amount"] == 60
        assert refused["reason"] == "member:M1 would have 120 minutes, above its limit 60"
        third = await filed(hall, channel="resident", reporter="R-9")
        await transition(hall, third, "register")
        assert await balance(hall, "resident:R-9") == 30


def test_the_time_bank_imports_nothing_of_the_ticket_plugin() -> None:
    """The plugins meet only through hooks: a third party's time bank would not have
    our ticket package, so ours does not import it either (a fresh interpreter, so no
    other test's imports count)."""
    code = (
        "import sys, plugins.timebank, plugins.timebank.api\n"
        "print(sorted(m for m in sys.modules if m.startswith('plugins.tickets')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
