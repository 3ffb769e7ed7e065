"""The deadline watcher: reminders, overdue, and supervision level by level (督办).

One task per daemon, on the host's clock (`host.clock`, a ManualClock in tests). It
sleeps until the smallest `next_alert_at` of the open tickets (a partial index), and
is woken early when a ticket gets an earlier one. When it wakes it takes the tickets
that are due, decides their alerts (`alerts.Ladder.plan`), and writes what it said
into each row (`reminded_at`, `escalation`, the next `next_alert_at`) in one
transaction; only then does it tell: the event `tickets.<kind>` (SSE, MQTT
`<base>/tickets/alerts/<kind>`), the `gridhall_ticket_alert` hook, and the
`[[tickets.on_alert]]` scenes. An alert is therefore said at most once; a crash
between the commit and the telling loses the telling, never repeats it.

It watches open whistles the same way (`whistles.escalate_due`, their partial index on
`next_alert_at`): one nobody answered by its deadline is told as `whistle_unanswered`
on the same path, and goes a level up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import sqlite3
from typing import TYPE_CHECKING, Any

from daemon.calendar import CalendarUnknown
from daemon.errors import GridhallError
from plugins.tickets import whistles
from plugins.tickets.alerts import Ladder

if TYPE_CHECKING:
    from daemon.host import Host
    from plugins.tickets.live import Live

log = logging.getLogger(__name__)

NAME = "tickets"
BATCH = 500  # tickets planned per transaction; more are taken at once after it
RETRY_S = 3600.0  # a ticket whose next step the calendar cannot place is looked at again
_COLUMNS = (
    "id, created_at, due_at, reminded_at, escalation, major, category, grid, street, "
    "department, handler"
)


class Watcher:
    def __init__(self, host: Host, live: Live) -> None:
        self.host, self.live = host, live
        self.ladder: Ladder = live.ladder
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._until: float | None = None  # what it sleeps until (None: no ticket); inf: planning
        self._asked: float | None = None  # the earliest alert asked for while it planned

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tickets-deadlines")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake_for(self, at: float) -> None:
        if self._until == math.inf:
            # Planning: it sleeps no later than this when done. Not a new plan at once:
            # with reports arriving all the time, that planned again and again, a
            # read and two writes each time between the reports' own commits.
            self._asked = at if self._asked is None else min(self._asked, at)
        elif self._until is None or at < self._until:
            self._wake.set()

    async def _run(self) -> None:
        clock = self.host.clock
        while True:
            self._until, self._asked = math.inf, None
            self._wake.clear()
            try:
                more = await self.tick(clock.now().timestamp())
                if more:
                    continue
                nxt = await self.host.store.read(_next_alert)
            except Exception:
                log.exception("tickets: the deadline watcher failed; trying again in a minute")
                nxt = clock.now().timestamp() + 60
            if self._asked is not None:  # a ticket changed meanwhile, maybe after the read
                nxt = self._asked if nxt is None else min(nxt, self._asked)
            self._until = nxt
            when = None if nxt is None else dt.datetime.fromtimestamp(nxt, dt.UTC)
            await clock.sleep_until(when, self._wake)

    async def tick(self, now: float) -> bool:
        """Say what is due at `now`; True when more tickets may be due than one batch."""
        ladder, tz = self.ladder, self.host.calendar.tz

        def plan(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
            cur = conn.execute(
                f"SELECT {_COLUMNS} FROM tickets INDEXED BY tickets_next_alert "
                "WHERE done_at IS NULL AND next_alert_at IS NOT NULL AND next_alert_at <= ? "
                "ORDER BY next_alert_at LIMIT ?",
                (now, BATCH),
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            said: list[dict[str, Any]] = []
            updates: list[tuple[Any, ...]] = []
            blocked: dict[int, CalendarUnknown] = {}
            for row in rows:
                p = ladder.plan(row, now)
                next_at = p.next_at
                if p.blocked is not None:
                    blocked[row["id"]] = p.blocked
                    next_at = now + RETRY_S
                reminded = now if p.reminded else row["reminded_at"]
                updates.append((reminded, p.escalation, next_at, row["id"]))
                said += [_alert(row, due.kind, due.level, now, tz) for due in p.alerts]
            if blocked:
                first = next(iter(blocked.values()))
                log.error(
                    "tickets: the next supervision step of %d ticket(s) (%s) cannot be placed; "
                    "looked at again in an hour: %s",
                    len(blocked),
                    ", ".join(map(str, list(blocked)[:10])),
                    first.message,
                )
            conn.executemany(
                "UPDATE tickets SET reminded_at = ?, escalation = ?, next_alert_at = ? "
                "WHERE id = ?",
                updates,
            )
            return said, len(rows)

        said, taken = await self.host.store.write(plan)
        calendar = self.host.calendar
        blown, escalated = await self.host.store.write(
            lambda conn: whistles.escalate_due(conn, now, calendar, BATCH)
        )
        for alert in said + blown:
            await self.tell(alert)
        return taken == BATCH or escalated == BATCH

    async def tell(self, alert: dict[str, Any]) -> None:
        """Out to everyone who listens; one listener's failure stops none of the others."""
        host = self.host
        host.publish(NAME, alert["kind"], alert)
        await host.plugins.ticket_alert(alert, host)
        mqtt = self.live.mqtt
        if mqtt is not None:
            try:
                mqtt.publish(f"{mqtt.base_topic}/{NAME}/alerts/{alert['kind']}", alert)
            except Exception:
                log.exception("tickets: publishing an alert on MQTT failed")
        for rule in self.live.config.on_alert:
            if alert["kind"] not in rule.kinds:
                continue
            if rule.major_only and not alert["major"]:
                continue
            if rule.level is not None and rule.level != alert["level"]:
                continue
            try:
                await host.run_scene(
                    rule.scene, who=NAME, cause=f"ticket:{alert['ticket']}:{alert['kind']}"
                )
            except GridhallError as exc:
                log.warning(
                    "tickets: scene %s for ticket %s not run: %s",
                    rule.scene,
                    alert["ticket"],
                    exc.message,
                )


def _next_alert(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT min(next_alert_at) FROM tickets INDEXED BY tickets_next_alert "
        "WHERE done_at IS NULL AND next_alert_at IS NOT NULL"
    ).fetchone()
    times = [float(row[0])] if row is not None and row[0] is not None else []
    if (whistle := whistles.next_alert(conn)) is not None:
        times.append(whistle)
    return min(times, default=None)


_MESSAGES = {
    "reminder": "ticket {id} ({category}) is due {due}",
    "overdue": "ticket {id} ({category}) is overdue since {due}; supervised by the {level}",
    "escalated": "ticket {id} ({category}), overdue since {due}, escalated to the {level}",
}


def _alert(
    row: dict[str, Any], kind: str, level: str | None, now: float, tz: dt.tzinfo
) -> dict[str, Any]:
    due = dt.datetime.fromtimestamp(row["due_at"], tz).isoformat(timespec="minutes")
    return {
        "kind": kind,
        "level": level,
        "ticket": row["id"],
        "whistle": None,
        "message": _MESSAGES[kind].format(
            id=row["id"], category=row["category"], due=due, level=level
        ),
        "at": now,
        # Beyond the hook's documented keys, what a listener acts on without a read.
        "major": bool(row["major"]),
        "category": row["category"],
        "due_at": row["due_at"],
        "grid": row["grid"],
        "street": row["street"],
        "department": row["department"],
        "handler": row["handler"],
    }
