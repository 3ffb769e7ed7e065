"""China's working-day calendar: one service for schedules and ticket deadlines.

China moves working days around its holidays (调休): a Sunday can be a working day and
a Monday a holiday, and each year's plan is published only in November before it. So
a day's kind is looked up, never derived from the weekday alone, in this order:

1. a per-year override file, `<calendar dir>/<year>.toml` (the format is in
   `etc/calendar/README.md`): it wins, for that whole year, over any library;
2. the `chinese_calendar` library, which knows 2004-2026 and raises for other years;
3. nothing: a year no source knows raises `CalendarUnknown` naming the year. The
   `holidays` package is not used: from 2027 it answers without the make-up days,
   silently wrong, and a wrong deadline is worse than a flagged one.

Working-hours arithmetic (a deadline N working hours ahead) walks the configured
office hours of working days in the calendar's explicit time zone.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

from daemon.errors import GridhallError

# Years are searched at most this far when counting working days or hours: a request
# that finds no working day in ten years is a bug, not a long holiday.
_MAX_DAYS = 3660


class DayKind(StrEnum):
    WORKING_DAY = "working_day"  # an ordinary Monday to Friday
    REST_DAY = "rest_day"  # an ordinary Saturday or Sunday
    HOLIDAY = "holiday"  # a day of a public holiday's break, whatever its weekday
    MAKEUP_DAY = "makeup_day"  # a weekend day worked to make up for a holiday (调休)

    @property
    def working(self) -> bool:
        return self in (DayKind.WORKING_DAY, DayKind.MAKEUP_DAY)


class CalendarUnknown(GridhallError):
    """No source knows the year: answering would be a guess."""

    status = 503
    code = "calendar_unknown"

    def __init__(self, year: int, message: str) -> None:
        super().__init__(message)
        self.year = year


class CalendarFileError(GridhallError):
    """An override file that cannot be read or says something impossible."""

    status = 500
    code = "calendar_file"

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.detail = message


@dataclass(frozen=True)
class YearPlan:
    """One year's exceptions to the weekday rule, and where they came from."""

    year: int
    source: str
    holidays: dict[dt.date, str] = field(default_factory=dict)  # date -> holiday name
    makeup_days: dict[dt.date, str] = field(default_factory=dict)  # date -> for which holiday

    def kind(self, day: dt.date) -> DayKind:
        if day in self.makeup_days:
            return DayKind.MAKEUP_DAY
        if day in self.holidays:
            return DayKind.HOLIDAY
        return DayKind.REST_DAY if day.weekday() >= 5 else DayKind.WORKING_DAY


@dataclass(frozen=True)
class OfficeHours:
    """Intervals of a working day, e.g. 08:30-12:00 and 13:30-17:30, in order."""

    intervals: tuple[tuple[dt.time, dt.time], ...]

    @classmethod
    def parse(cls, specs: list[str]) -> OfficeHours:
        """From `["08:30-12:00", "13:30-17:30"]`; ValueError says what is wrong."""
        intervals: list[tuple[dt.time, dt.time]] = []
        for spec in specs:
            start_s, sep, end_s = spec.partition("-")
            try:
                start, end = (
                    dt.time.fromisoformat(start_s.strip()),
                    dt.time.fromisoformat(end_s.strip()),
                )
            except ValueError:
                sep = ""
            if not sep:
                raise ValueError(f"bad office hours {spec!r}: expected HH:MM-HH:MM")
            if end <= start:
                raise ValueError(f"bad office hours {spec!r}: the end is not after the start")
            if intervals and start < intervals[-1][1]:
                raise ValueError(f"office hours {spec!r} overlap or are out of order")
            intervals.append((start, end))
        if not intervals:
            raise ValueError("office hours are empty")
        return cls(tuple(intervals))


class CalendarConfig(BaseModel):
    """The `[calendar]` section."""

    model_config = ConfigDict(extra="forbid")

    tz: str = "Asia/Shanghai"  # the zone days are counted in; schedules default to it
    overrides: str = "calendar"  # folder of <year>.toml files, relative to the config
    office_hours: list[str] = ["08:30-12:00", "13:30-17:30"]  # for working-hour deadlines

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Shanghai)") from None
        return v

    @field_validator("office_hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        OfficeHours.parse(v)
        return v


def _library_plan(year: int) -> YearPlan | None:
    """The year from `chinese_calendar`, or None when the library does not know it."""
    import chinese_calendar

    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))  # raises for unknown years
    except NotImplementedError:
        return None
    holidays = {
        d: str(getattr(name, "value", name))
        for d, name in chinese_calendar.holidays.items()
        if d.year == year
    }
    makeup = {
        d: str(getattr(name, "value", name))
        for d, name in chinese_calendar.workdays.items()
        if d.year == year and d.weekday() >= 5
    }
    version = getattr(chinese_calendar, "__version__", "")
    return YearPlan(year, f"chinese_calendar {version}".strip(), holidays, makeup)


def _date(value: Any, path: Path, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ValueError(f"{where}: expected a TOML date such as 2027-01-01, got {value!r}")


def parse_override(path: Path) -> YearPlan:
    """Read `<year>.toml`; CalendarFileError with the line of the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except OSError as exc:
        raise CalendarFileError(path, 0, f"cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CalendarFileError(path, 1, str(exc)) from exc
    from daemon.tomllines import LineMap

    lines = LineMap(text)

    def fail(loc: tuple[Any, ...], message: str) -> CalendarFileError:
        return CalendarFileError(path, lines.line_of(loc), message)

    try:
        year = int(path.stem)
    except ValueError:
        raise fail((), "the file name must be the year, e.g. 2027.toml") from None
    unknown = set(raw) - {"year", "source", "holiday"}
    if unknown:
        raise fail((sorted(unknown)[0],), f"unknown key {sorted(unknown)[0]!r}")
    if raw.get("year", year) != year:
        raise fail(("year",), f"year = {raw['year']!r} in the file for {year}")
    plan = YearPlan(year, f"{path} ({raw.get('source', 'local override')})")
    items = raw.get("holiday", [])
    if not isinstance(items, list):
        raise fail(("holiday",), "use [[holiday]] tables")
    for i, item in enumerate(items):
        loc = ("holiday", i)
        extra = set(item) - {"name", "from", "to", "makeup"}
        if extra:
            raise fail(loc + (sorted(extra)[0],), f"unknown key {sorted(extra)[0]!r}")
        try:
            name = str(item["name"])
            first = _date(item["from"], path, "from")
            last = _date(item.get("to", first), path, "to")
            makeup = [_date(d, path, "makeup") for d in item.get("makeup", [])]
        except KeyError as exc:
            raise fail(loc, f"holiday needs {exc.args[0]!r}") from None
        except ValueError as exc:
            raise fail(loc, str(exc)) from None
        if last < first:
            raise fail(loc + ("to",), f"{name}: 'to' {last} is before 'from' {first}")
        for day in _days(first, last):
            if day.year != year:
                raise fail(loc + ("from",), f"{name}: {day} is not in {year}")
            plan.holidays[day] = name
        for day in makeup:
            if day.year != year:
                raise fail(loc + ("makeup",), f"{name}: make-up day {day} is not in {year}")
            if day.weekday() < 5:
                raise fail(loc + ("makeup",), f"{name}: make-up day {day} is not a weekend day")
            plan.makeup_days[day] = name
    both = sorted(set(plan.holidays) & set(plan.makeup_days))
    if both:
        raise fail(("holiday",), f"{both[0]} is both a holiday and a make-up day")
    return plan


def load_overrides(folder: Path) -> dict[int, YearPlan]:
    """Every `<year>.toml` in the folder (none when the folder does not exist)."""
    if not folder.is_dir():
        return {}
    plans = [parse_override(p) for p in sorted(folder.glob("*.toml"))]
    return {plan.year: plan for plan in plans}


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


class Calendar:
    """Working days, day kinds and working hours on China's calendar.

    Thread-safe for reads; `reload()` swaps the override files in at once, so a
    holder of this object (the ticket plugin) always sees the current plan."""

    def __init__(
        self,
        tz: str | ZoneInfo = "Asia/Shanghai",
        overrides: Path | None = None,
        office_hours: OfficeHours | None = None,
        *,
        use_library: bool = True,
    ) -> None:
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.overrides_dir = overrides
        self.office_hours = office_hours or OfficeHours.parse(["08:30-12:00", "13:30-17:30"])
        self.use_library = use_library
        self._overrides: dict[int, YearPlan] = {}
        self._library: dict[int, YearPlan | None] = {}
        self.reload()

    @classmethod
    def from_config(cls, section: CalendarConfig, overrides: Path) -> Calendar:
        return cls(section.tz, overrides, OfficeHours.parse(section.office_hours))

    def reload(self) -> None:
        """Re-read the override files (after a new year's plan was dropped in)."""
        self._overrides = load_overrides(self.overrides_dir) if self.overrides_dir else {}

    # -- days -------------------------------------------------------------------------
    def plan(self, year: int) -> YearPlan:
        """The year's plan from the first source that knows it, or CalendarUnknown."""
        if (plan := self._overrides.get(year)) is not None:
            return plan
        if self.use_library:
            if year not in self._library:
                self._library[year] = _library_plan(year)
            if (found := self._library[year]) is not None:
                return found
        where = f"{self.overrides_dir}/{year}.toml" if self.overrides_dir else f"{year}.toml"
        raise CalendarUnknown(
            year,
            f"no calendar data for {year}: neither an override file ({where}) nor "
            f"chinese_calendar knows its holidays and make-up days; add {where} once the "
            "State Council publishes the plan",
        )

    def kind(self, day: dt.date) -> DayKind:
        return self.plan(day.year).kind(day)

    def is_working_day(self, day: dt.date) -> bool:
        return self.kind(day).working

    def describe(self, day: dt.date) -> dict[str, Any]:
        """A day as the API shows it: its kind, the holiday it belongs to, the source."""
        plan = self.plan(day.year)
        return {
            "date": day.isoformat(),
            "kind": plan.kind(day).value,
            "name": plan.holidays.get(day) or plan.makeup_days.get(day),
            "source": plan.source,
        }

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after `start` (before it when n < 0); `start` itself
        does not count, so a ticket registered on a holiday still gets n full days."""
        step = 1 if n >= 0 else -1
        day, left = start, abs(n)
        for _ in range(_MAX_DAYS):
            if left == 0:
                return day
            day += dt.timedelta(days=step)
            if self.is_working_day(day):
                left -= 1
        raise ValueError(f"no {abs(n)} working days within {_MAX_DAYS} days of {start}")

    def working_days_between(self, first: dt.date, last: dt.date) -> int:
        """Working days in (first, last]: 0 when last <= first."""
        return sum(1 for d in _days(first + dt.timedelta(days=1), last) if self.is_working_day(d))

    # -- hours ------------------------------------------------------------------------
    def local(self, when: dt.datetime) -> dt.datetime:
        if when.tzinfo is None:
            raise ValueError("a naive datetime is ambiguous: give it a time zone")
        return when.astimezone(self.tz)

    def _office(self, day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        if self.is_working_day(day):
            for start, end in self.office_hours.intervals:
                yield (
                    dt.datetime.combine(day, start, self.tz),
                    dt.datetime.combine(day, end, self.tz),
                )

    def add_working_hours(self, start: dt.datetime, hours: float | dt.timedelta) -> dt.datetime:
        """The moment `hours` of office time after `start`, in the calendar's zone.

        Time outside office hours and on non-working days does not count; a deadline
        that ends exactly at the end of an interval is that end (12:00, not 13:30)."""
        left = hours if isinstance(hours, dt.timedelta) else dt.timedelta(hours=hours)
        if left < dt.timedelta(0):
            raise ValueError("working hours to add must not be negative")
        now = self.local(start)
        day = now.date()
        for _ in range(_MAX_DAYS):
            for begin, end in self._office(day):
                begin = max(begin, now)
                if begin >= end:
                    continue
                if left <= end - begin:
                    return begin + left
                left -= end - begin
            day += dt.timedelta(days=1)
        raise ValueError(f"no office hours within {_MAX_DAYS} days of {start}")

    def working_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Office time elapsed from `start` to `end` (zero when end <= start)."""
        a, b = self.local(start), self.local(end)
        total = dt.timedelta(0)
        for day in _days(a.date(), b.date()):
            for begin, stop in self._office(day):
                lo, hi = max(begin, a), min(stop, b)
                if hi > lo:
                    total += hi - lo
        return total
