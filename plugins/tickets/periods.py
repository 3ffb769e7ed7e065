"""The periods measures are taken over: a day, an ISO week, a month, or from/to.

A period is a run of whole local days, cut at midnight in the calendar's time zone
(`host.calendar.tz`): "March" in Shanghai starts at 2026-02-28 16:00 UTC. `previous()`
is the period of the same kind and length just before, which the ranking compares
with ("improving").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from daemon.errors import BadArguments

# A report over more than this is a query nobody reads and a scan nobody wants.
MAX_DAYS = 400

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    kind: str  # "day", "week", "month" or "range"
    first: dt.date
    last: dt.date  # inclusive

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.first.isoformat()
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def dates(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range(self.days)]

    def bounds(self, tz: ZoneInfo) -> tuple[float, float]:
        """[start, end) in epoch seconds: local midnight of `first` to the midnight
        after `last`."""
        start = dt.datetime.combine(self.first, dt.time(0), tz)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(0), tz)
        return start.timestamp(), end.timestamp()

    def previous(self) -> Period:
        if self.kind == "month":
            last = self.first - dt.timedelta(days=1)
            return month_of(last.year, last.month)
        span = dt.timedelta(days=self.days)
        return Period(self.kind, self.first - span, self.last - span)

    def to_dict(self, tz: ZoneInfo) -> dict[str, object]:
        start, end = self.bounds(tz)
        return {
            "kind": self.kind,
            "label": self.label,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "tz": str(tz),
            "start": start,
            "end": end,
        }


def month_of(year: int, month: int) -> Period:
    first = dt.date(year, month, 1)
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return Period("month", first, following - dt.timedelta(days=1))


def week_of(day: dt.date) -> Period:
    monday = day - dt.timedelta(days=day.weekday())
    return Period("week", monday, monday + dt.timedelta(days=6))


def parse_week(text: str) -> Period:
    m = _WEEK.match(text)
    if not m:
        raise BadArguments(f"week {text!r}: expected an ISO week such as 2026-W10")
    try:
        monday = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise BadArguments(f"week {text!r}: {m[1]} has no week {int(m[2])}") from None
    return week_of(monday)


def parse_month(text: str) -> Period:
    m = _MONTH.match(text)
    if not m or not 1 <= int(m[2]) <= 12:
        raise BadArguments(f"month {text!r}: expected a month such as 2026-03")
    return month_of(int(m[1]), int(m[2]))


def parse(
    day: dt.date | None = None,
    week: str | None = None,
    month: str | None = None,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> Period:
    """Exactly one of day, week, month, or from/to (both, inclusive); BadArguments
    (422) says what is wrong."""
    given = [
        name
        for name, value in (("day", day), ("week", week), ("month", month))
        if value is not None
    ]
    ranged = first is not None or last is not None
    if len(given) + ranged != 1:
        named = ", ".join(given + (["from/to"] if ranged else []))
        raise BadArguments(
            "give exactly one period: day=YYYY-MM-DD, week=YYYY-Www, month=YYYY-MM, or "
            "from=YYYY-MM-DD&to=YYYY-MM-DD" + (f" (got {named})" if named else "")
        )
    if day is not None:
        return Period("day", day, day)
    if week is not None:
        return parse_week(week)
    if month is not None:
        return parse_month(month)
    if first is None or last is None:
        raise BadArguments("a range needs both from and to (inclusive dates)")
    if last < first:
        raise BadArguments(f"to {last} is before from {first}")
    period = Period("range", first, last)
    if period.days > MAX_DAYS:
        raise BadArguments(f"from {first} to {last} is {period.days} days; at most {MAX_DAYS}")
    return period
