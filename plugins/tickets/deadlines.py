"""Deadline specs and their arithmetic on the host's one calendar.

A spec is text, as a categories file or the config writes it:

| spec | means |
|---|---|
| `2h`, `0.5h`, `90m` | clock time: 2 hours after the start, nights and holidays included |
| `8wh` | working hours: office time on working days (`Calendar.add_working_hours`) |
| `5wd` | working days: the end of office hours on the 5th working day after the start's day |
| `10-15wd` | a range (any unit): the lead department picks within it; the low end by default |

A working-day deadline ends with the office day (17:30 by default), not at the hour
of the report: "closed within 5 working days" of 2025-09-30 is 2025-10-14 17:30
whether the report came at 09:00 or 16:00. A year the calendar does not know raises
`CalendarUnknown` (503 with the reason), never a guess.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Literal

from daemon.calendar import Calendar

Unit = Literal["m", "h", "wh", "wd"]
_SPEC = re.compile(r"^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?(m|h|wh|wd)$")
_NAMES = {"m": "minutes", "h": "hours", "wh": "working hours", "wd": "working days"}
EXAMPLES = '"2h" (hours), "90m", "8wh" (working hours), "5wd" (working days), "10-15wd"'


@dataclass(frozen=True)
class Deadline:
    low: float
    high: float
    unit: Unit
    text: str

    @classmethod
    def parse(cls, text: str) -> Deadline:
        """ValueError naming what is wrong and what is expected. Cached: every report
        parses its category's spec."""
        return _parse(text)

    @classmethod
    def _parse(cls, text: str) -> Deadline:
        m = _SPEC.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f"bad deadline {text!r}: expected {EXAMPLES}")
        low = float(m.group(1))
        high = float(m.group(2)) if m.group(2) else low
        unit: Unit = m.group(3)  # type: ignore[assignment]
        if high < low:
            raise ValueError(f"bad deadline {text!r}: the range runs backwards")
        if unit == "wd" and (low != int(low) or high != int(high)):
            raise ValueError(f"bad deadline {text!r}: working days are whole days")
        return cls(low, high, unit, text.strip())

    @property
    def ranged(self) -> bool:
        return self.high != self.low

    def pick(self, n: float | None) -> float:
        """`n` within the range (the low end when None); ValueError outside it."""
        if n is None:
            return self.low
        if not self.low <= n <= self.high:
            within = f"{_fmt(self.low)}-{_fmt(self.high)}" if self.ranged else _fmt(self.low)
            raise ValueError(
                f"{_fmt(n)} {_NAMES[self.unit]} is outside the deadline {self.text} ({within})"
            )
        if self.unit == "wd" and n != int(n):
            raise ValueError("working days are whole days")
        return n

    def after(self, start: dt.datetime, calendar: Calendar, n: float | None = None) -> dt.datetime:
        """The deadline for work that starts at `start` (aware), `n` picked in range."""
        amount = self.pick(n)
        if self.unit == "m":
            return start + dt.timedelta(minutes=amount)
        if self.unit == "h":
            return start + dt.timedelta(hours=amount)
        if self.unit == "wh":
            return calendar.add_working_hours(start, amount)
        day = calendar.add_working_days(calendar.local(start).date(), int(amount))
        close = calendar.office_hours.intervals[-1][1]
        return dt.datetime.combine(day, close, calendar.tz)


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Deadline:
    return Deadline._parse(text)


def _fmt(n: float) -> str:
    return str(int(n)) if n == int(n) else str(n)


@dataclass(frozen=True)
class Lead:
    """How long before its deadline a ticket is reminded: a share of the time it was
    given (`"20%"`), or clock time (`"2h"`, `"30m"`)."""

    share: float | None
    before: dt.timedelta | None
    text: str

    @classmethod
    def parse(cls, text: str) -> Lead:
        t = text.strip() if isinstance(text, str) else ""
        if m := re.fullmatch(r"(\d+(?:\.\d+)?)%", t):
            share = float(m.group(1)) / 100
            if share > 1:
                raise ValueError(f"bad reminder {text!r}: at most 100%")
            return cls(share, None, t)
        if m := re.fullmatch(r"(\d+(?:\.\d+)?)(m|h)", t):
            minutes = float(m.group(1)) * (60 if m.group(2) == "h" else 1)
            return cls(None, dt.timedelta(minutes=minutes), t)
        raise ValueError(f'bad reminder {text!r}: expected a share ("20%") or a time ("2h", "30m")')

    def remind_at(self, start: float, due: float) -> float:
        """Epoch seconds of the reminder, never before `start`."""
        if self.share is not None:
            return due - self.share * max(0.0, due - start)
        assert self.before is not None
        return max(start, due - self.before.total_seconds())
