"""The ticket feed: changes heard through `gridhall_ticket_changed`, and caught up
through `gridhall_ticket_changes`, so the time bank never calls the ticket plugin.

Delivery of the hook is at most once, and two changes committed close together may
be heard out of order. So a change is applied at once only when it is the cursor's
next one; anything else first asks the ticket plugin for every change after the
cursor. The cursor lives in the store with the entries (`earning.apply_changes`).
At startup the feed catches up, which recovers a call lost to a crash between the
ticket's commit and the award.

Most changes are ones no rule listens to (a creation, a dispatch, an acceptance):
those are let through without a write, as the cursor's next, and only the feed's
memory of the last seq moves. The ticket plugin waits for its listeners before it
answers, so a commit per change would cap the rate tickets are created at the rate
the time bank can commit. The stored cursor stays behind until the next change that
writes moves it past them; a restart's catch-up replays them, to no effect again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from daemon.host import Host
from plugins.timebank import earning
from plugins.timebank.config import TimebankConfig
from plugins.timebank.tables import NAME

log = logging.getLogger(__name__)

BATCH = 500  # changes per catch-up call (and per transaction)


def config_of(host: Host) -> TimebankConfig:
    section: TimebankConfig = host.config.sections.get(NAME) or TimebankConfig()
    return section


def now(host: Host) -> float:
    """When an entry is written: the host's one clock, the one tickets are closed on
    (a test's ManualClock, or the system's), so periods and leaderboards agree."""
    return host.clock.now().timestamp()


@dataclass
class Heard:
    """The last seq known applied: the stored cursor, or past it by changes no rule
    listens to. None until the start's catch-up has read the cursor."""

    seq: int | None = None

    def advance(self, seq: int) -> None:
        self.seq = max(self.seq or 0, seq)


HEARD = "timebank.heard"  # its key in the host's plugin_data


def heard(host: Host) -> Heard:
    found: Heard | None = host.plugin_data.get(HEARD)
    if found is None:
        found = host.plugin_data[HEARD] = Heard()
    return found


def forget(host: Host) -> None:
    host.plugin_data.pop(HEARD, None)


async def on_change(host: Host, change: dict[str, Any]) -> None:
    config, state = config_of(host), heard(host)
    seq, after = int(change["seq"]), state.seq
    if after is not None:
        if seq <= after:
            return  # applied already, or let through
        if seq == after + 1 and not config.listens_to(change.get("transition")):
            state.advance(seq)  # nothing to pay or take back, whatever the ticket
            return
    applied = await host.store.write(
        lambda conn: earning.apply_changes(
            conn, config, [change], contiguous=True, now=now(host), after=after
        )
    )
    state.advance(applied.cursor)
    announce(host, applied)
    if applied.gap:
        await catch_up(host)
        # A change the ticket plugin could not give back (its history is gone) is still
        # applied; the cursor then moves past whatever it could not see.
        applied = await host.store.write(
            lambda conn: earning.apply_changes(
                conn, config, [change], contiguous=False, now=now(host), after=state.seq
            )
        )
        state.advance(applied.cursor)
        announce(host, applied)


async def catch_up(host: Host) -> int:
    """Apply every change after the cursor; the number of changes applied."""
    config, state, total = config_of(host), heard(host), 0
    while True:
        state.advance(await host.store.read(earning.cursor))
        after = state.seq or 0
        changes = host.plugins.ticket_changes(after, BATCH, host)
        if not changes:
            break

        def apply(
            conn: Any, batch: list[dict[str, Any]] = changes, known: int = after
        ) -> earning.Applied:
            return earning.apply_changes(
                conn, config, batch, contiguous=False, now=now(host), after=known
            )

        applied = await host.store.write(apply)
        state.advance(applied.cursor)
        announce(host, applied)
        total += applied.changes
        if len(changes) < BATCH or not applied.changes:
            break
    if total:
        log.info("time bank: caught up %d ticket change(s)", total)
    return total


def announce(host: Host, applied: earning.Applied) -> None:
    for entry in applied.posted:
        publish_entry(host, entry)
    for refused in applied.refused:
        host.publish(NAME, "refused", refused)


def publish_entry(host: Host, entry: dict[str, Any]) -> None:
    """`timebank.posted` for every new entry, and `timebank.flagged` for a flagged one."""
    data = {k: entry[k] for k in ("id", "kind", "amount", "from", "to", "rule", "source")}
    host.publish(NAME, "posted", data)
    if entry["flagged"]:
        host.publish(NAME, "flagged", {**data, "reason": entry["flagged"]})
