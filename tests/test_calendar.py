"""The calendar service on the DOMAIN.md fixtures: make-up days, holidays, deadlines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from daemon.calendar import (
    Calendar,
    CalendarFileError,
    CalendarUnknown,
    DayKind,
    OfficeHours,
)

D = dt.date
SH = dt.timezone(dt.timedelta(hours=8))
MAKEUP_2026 = ["01-04", "02-14", "02-28", "05-09", "09-20", "10-10"]
HOLIDAY_RANGES_2026 = [
    ("01-01", "01-03"),
    ("02-15", "02-23"),
    ("04-04", "04-06"),
    ("05-01", "05-05"),
    ("06-19", "06-21"),
    ("09-25", "09-27"),
    ("10-01", "10-07"),
]


def days_2026(first: str, last: str) -> list[dt.date]:
    a, b = D.fromisoformat(f"2026-{first}"), D.fromisoformat(f"2026-{last}")
    return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]


HOLIDAYS_2026 = [d for a, b in HOLIDAY_RANGES_2026 for d in days_2026(a, b)]


@pytest.fixture
def cal() -> Calendar:
    return Calendar("Asia/Shanghai")


def test_2026_fixtures(cal: Calendar) -> None:
    for md in MAKEUP_2026:
        day = D.fromisoformat(f"2026-{md}")
        assert cal.kind(day) is DayKind.MAKEUP_DAY, day
        assert cal.is_working_day(day)
        assert day.weekday() >= 5
    for day in HOLIDAYS_2026:
        assert cal.kind(day) is DayKind.HOLIDAY, day
        assert not cal.is_working_day(day)
    # Every other day of 2026 follows the weekday rule.
    special = set(HOLIDAYS_2026) | {D.fromisoformat(f"2026-{md}") for md in MAKEUP_2026}
    for day in days_2026("01-01", "12-31"):
        if day not in special:
            expected = DayKind.REST_DAY if day.weekday() >= 5 else DayKind.WORKING_DAY
            assert cal.kind(day) is expected, day


def test_named_days(cal: Calendar) -> None:
    assert cal.kind(D(2026, 1, 4)) is DayKind.MAKEUP_DAY  # a Sunday worked
    assert cal.kind(D(2026, 10, 5)) is DayKind.HOLIDAY  # a Monday off
    assert cal.describe(D(2026, 10, 5))["name"] == "National Day"
    assert cal.kind(D(2026, 1, 10)) is DayKind.REST_DAY
    assert cal.kind(D(2026, 1, 5)) is DayKind.WORKING_DAY


def test_add_working_days(cal: Calendar) -> None:
    assert cal.add_working_days(D(2025, 9, 30), 5) == D(2025, 10, 14)
    assert cal.add_working_days(D(2025, 10, 14), -5) == D(2025, 9, 30)
    assert cal.add_working_days(D(2026, 1, 2), 1) == D(2026, 1, 4)  # the make-up Sunday
    assert cal.add_working_days(D(2026, 2, 13), 1) == D(2026, 2, 14)
    assert cal.add_working_days(D(2026, 2, 14), 1) == D(2026, 2, 24)  # over Spring Festival
    assert cal.add_working_days(D(2026, 5, 5), 0) == D(2026, 5, 5)
    assert cal.working_days_between(D(2025, 9, 30), D(2025, 10, 14)) == 5


def test_unknown_year_is_an_error_naming_it(cal: Calendar) -> None:
    with pytest.raises(CalendarUnknown) as err:
        cal.is_working_day(D(2027, 1, 4))
    assert err.value.year == 2027 and "2027" in err.value.message
    # Counting into a year nobody knows fails rather than guessing the weekday rule.
    with pytest.raises(CalendarUnknown):
        cal.add_working_days(D(2026, 12, 30), 5)
    with pytest.raises(CalendarUnknown):
        Calendar(use_library=False).kind(D(2026, 1, 4))


OVERRIDE_2027 = """
source = "State Council notice (test)"
[[holiday]]
name = "New Year's Day"
from = 2027-01-01
to = 2027-01-03
[[holiday]]
name = "Test Day"
from = 2027-01-05
makeup = [2027-01-10]
"""


def test_override_file_comes_first(tmp_path: Path) -> None:
    (tmp_path / "2027.toml").write_text(OVERRIDE_2027)
    # 2026 overridden: the file wins for the whole year over the library.
    (tmp_path / "2026.toml").write_text(
        '[[holiday]]\nname = "Local"\nfrom = 2026-01-05\nmakeup = [2026-01-10]\n'
    )
    cal = Calendar("Asia/Shanghai", tmp_path)
    assert cal.kind(D(2027, 1, 5)) is DayKind.HOLIDAY
    assert cal.kind(D(2027, 1, 10)) is DayKind.MAKEUP_DAY
    assert cal.kind(D(2027, 1, 4)) is DayKind.WORKING_DAY
    assert cal.add_working_days(D(2027, 1, 4), 1) == D(2027, 1, 6)
    assert cal.kind(D(2026, 1, 5)) is DayKind.HOLIDAY
    assert cal.kind(D(2026, 1, 4)) is DayKind.REST_DAY  # the library's make-up day is gone
    assert "2026.toml" in cal.describe(D(2026, 1, 5))["source"]
    with pytest.raises(CalendarUnknown):
        cal.kind(D(2028, 1, 3))
    (tmp_path / "2028.toml").write_text("")
    cal.reload()
    assert cal.kind(D(2028, 1, 3)) is DayKind.WORKING_DAY


@pytest.mark.parametrize(
    "text,line,words",
    [
        ('[[holiday]]\nname = "X"\nfrom = 2027-01-01\nmakeup = [2027-01-04]\n', 4, "weekend"),
        ('[[holiday]]\nname = "X"\nfrom = 2027-01-05\nto = 2027-01-02\n', 4, "before"),
        ('\n[[holiday]]\nname = "X"\nfrom = 2026-12-31\n', 4, "not in 2027"),
        ('[[holiday]]\nname = "X"\nfrom = "2027-01-01"\n', 1, "TOML date"),
        ("holidays = []\n", 1, "unknown key"),
    ],
)
def test_bad_override_file_names_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    (tmp_path / "2027.toml").write_text(text)
    with pytest.raises(CalendarFileError) as err:
        Calendar("Asia/Shanghai", tmp_path)
    assert err.value.line == line and words in err.value.detail, err.value.message


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def test_add_working_hours(cal: Calendar) -> None:
    # 1.5 h on 30 September, the National Day week off, then 3.5 h + 3 h on 8 October.
    assert cal.add_working_hours(at("2026-09-30T16:00"), 8) == at("2026-10-08T16:30")
    # Ending exactly at the end of a morning is that end, not the afternoon's start.
    assert cal.add_working_hours(at("2026-01-05T08:30"), 3.5) == at("2026-01-05T12:00")
    # Before office hours on a make-up Sunday: counting starts at 08:30.
    assert cal.add_working_hours(at("2026-01-04T07:00"), 1) == at("2026-01-04T09:30")
    # At lunch: the afternoon counts.
    assert cal.add_working_hours(at("2026-01-05T12:30"), dt.timedelta(minutes=30)) == at(
        "2026-01-05T14:00"
    )
    # Another zone in, the calendar's zone out; the same instant.
    utc = dt.datetime(2026, 1, 5, 0, 30, tzinfo=dt.UTC)  # 08:30 in Shanghai
    assert cal.add_working_hours(utc, 1) == at("2026-01-05T09:30")
    assert cal.working_time_between(at("2026-09-30T16:00"), at("2026-10-08T16:30")) == (
        dt.timedelta(hours=8)
    )
    with pytest.raises(ValueError, match="naive"):
        cal.add_working_hours(dt.datetime(2026, 1, 5, 9), 1)


def test_office_hours_are_configurable() -> None:
    cal = Calendar("Asia/Shanghai", office_hours=OfficeHours.parse(["09:00-17:00"]))
    assert cal.add_working_hours(at("2026-01-05T16:00"), 2) == at("2026-01-06T10:00")
    for bad in (["9-17"], ["09:00-08:00"], ["08:00-12:00", "11:00-13:00"], []):
        with pytest.raises(ValueError):
            OfficeHours.parse(bad)


def test_documented_example_is_the_2026_plan(tmp_path: Path) -> None:
    """etc/calendar/README.md's example, as a file, says what chinese_calendar says."""
    readme = Path(__file__).parent.parent / "etc" / "calendar" / "README.md"
    example = readme.read_text().split("```toml\n")[1].split("```")[0]
    (tmp_path / "2026.toml").write_text(example)
    from_file = Calendar("Asia/Shanghai", tmp_path, use_library=False).plan(2026)
    library = Calendar("Asia/Shanghai").plan(2026)
    assert from_file.holidays.keys() == library.holidays.keys() == set(HOLIDAYS_2026)
    assert from_file.makeup_days.keys() == library.makeup_days.keys()


def test_schedule_days_are_counted_in_the_schedules_zone(cal: Calendar) -> None:
    from daemon.schedules import ScheduleConfig, Timing

    def timing(tz: str | None) -> Timing:
        spec = ScheduleConfig(
            id="t", cron="30 23 * * *", days="working_day", tz=tz, device="d", action="on"
        )
        return Timing(spec, cal)

    start = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)
    # In UTC, 23:30 on Saturday 01-03 is a holiday; Sunday 01-04 is worked.
    assert timing("UTC").next_runs(start, 2) == [
        dt.datetime(2026, 1, 4, 23, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 5, 23, 30, tzinfo=dt.UTC),
    ]
    # In the calendar's zone (the default), Friday 01-02 is still a holiday.
    assert [t.isoformat() for t in timing(None).next_runs(start, 1)] == [
        "2026-01-04T23:30:00+08:00"
    ]
    # Newest first, back in time, across the Spring Festival break.
    back = timing(None).before(at("2026-02-24T23:45"))
    assert [next(back).date(), next(back).date(), next(back).date()] == [
        D(2026, 2, 24),
        D(2026, 2, 14),
        D(2026, 2, 13),
    ]


async def test_manual_clock_returns_once_the_sleeper_slept_again() -> None:
    import asyncio

    from daemon.clock import ManualClock

    clock = ManualClock(at("2026-01-05T08:00"))
    woke: list[dt.datetime] = []
    wake = asyncio.Event()

    async def sleeper() -> None:
        for when in (at("2026-01-05T08:30"), at("2026-01-05T09:00")):
            await clock.sleep_until(when, wake)
            await asyncio.sleep(0.01)  # work that takes real time after waking
            woke.append(clock.now())
        await clock.sleep_until(None, wake)

    task = asyncio.create_task(sleeper())
    while clock.sleeping == 0:
        await asyncio.sleep(0)
    await clock.advance(dt.timedelta(minutes=29))
    assert woke == []
    await clock.advance(dt.timedelta(minutes=1))
    assert woke == [at("2026-01-05T08:30")]
    await clock.move_to(at("2026-01-05T12:00"))
    assert woke == [at("2026-01-05T08:30"), at("2026-01-05T12:00")]
    wake.set()
    await task
