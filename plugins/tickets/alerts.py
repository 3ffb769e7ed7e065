"""When an open ticket is owed an alert, and which: pure, on the calendar it is given.

- `reminder`: once, at the reminder time before the deadline (临期提醒), unless the
  deadline has already passed;
- `overdue`: once, at the first supervision step (by default at the deadline itself),
  at that step's level;
- `escalated`: once per further step, each `after` the previous one (督办: community,
  then street, then district); `level` is the level reached.

A step that falls in a year no calendar source knows (a deadline at the end of
December, a working-day interval into January) is not guessed: what is known is
said, and the plan says it is `blocked`, to be looked at again later.

A watcher that was away (a restart, a suspended board) says once what it missed:
`overdue` if it was never said, then `escalated` at the highest level reached, not
every level in between. What was said is the row's `reminded_at` and `escalation`,
so every alert goes out once, and `next_alert_at` is when the next one is owed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from daemon.calendar import Calendar, CalendarUnknown
from plugins.tickets.config import Step
from plugins.tickets.deadlines import Deadline, Lead

UTC = dt.UTC


@dataclass(frozen=True)
class Due:
    """One alert owed now."""

    kind: str
    level: str | None


@dataclass(frozen=True)
class Plan:
    """What the watcher writes back for one ticket."""

    alerts: list[Due]
    reminded: bool  # the reminder went out now
    escalation: int
    next_at: float | None
    blocked: CalendarUnknown | None = None  # the next step lies in a year nobody knows


class Ladder:
    """The supervision steps with their intervals, and the reminder lead."""

    def __init__(self, steps: list[Step], lead: Lead, calendar: Calendar) -> None:
        self.steps = [(s.level, Deadline.parse(s.after)) for s in steps]
        self.lead = lead
        self.calendar = calendar

    def level(self, escalation: int) -> str | None:
        return self.steps[escalation - 1][0] if 0 < escalation <= len(self.steps) else None

    def step_at(self, due: float, index: int) -> float:
        """When step `index` (1-based) comes: each step after the one before it.
        CalendarUnknown when a working-day interval crosses into an unknown year."""
        at = dt.datetime.fromtimestamp(due, UTC)
        for _, after in self.steps[:index]:
            at = after.after(at, self.calendar)
        return at.timestamp()

    def first_alert(self, created: float, due: float) -> float:
        """`next_alert_at` of a ticket whose deadline was just set."""
        return min(self.lead.remind_at(created, due), due)

    def plan(self, row: dict[str, Any], now: float) -> Plan:
        created, due = row["created_at"], row["due_at"]
        escalation = int(row["escalation"])
        reached, blocked = escalation, None
        try:
            while reached < len(self.steps) and self.step_at(due, reached + 1) <= now:
                reached += 1
        except CalendarUnknown as exc:
            blocked = exc  # what is known is still said; the rest waits for the calendar
        alerts: list[Due] = []
        if escalation == 0 and reached >= 1:
            alerts.append(Due("overdue", self.level(1)))
        if reached >= 2 and reached > escalation:
            alerts.append(Due("escalated", self.level(reached)))
        reminded = False
        remind_at = self.lead.remind_at(created, due)
        if reached == 0 and row["reminded_at"] is None and remind_at <= now:
            alerts.append(Due("reminder", None))
            reminded = True
        next_at: float | None = None
        if reached == 0 and row["reminded_at"] is None and not reminded:
            next_at = remind_at
        elif reached < len(self.steps) and blocked is None:
            try:
                next_at = self.step_at(due, reached + 1)
            except CalendarUnknown as exc:
                blocked = exc
        return Plan(alerts, reminded, reached, next_at, blocked)
