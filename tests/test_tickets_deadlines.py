"""Deadline specs on China's calendar (make-up working days included), reminders'
leads, and a year nobody knows refused rather than guessed."""

from __future__ import annotations

import datetime as dt

import pytest

from daemon.calendar import Calendar, CalendarUnknown
from plugins.tickets.deadlines import Deadline, Lead
from tests.ticket_support import epoch, local

CAL = Calendar("Asia/Shanghai")


@pytest.mark.parametrize(
    "spec,start,due",
    [
        # DOMAIN.md's check: five working days after 2025-09-30 is 2025-10-14.
        ("5wd", "2025-09-30T10:00", "2025-10-14T17:30"),
        ("5wd", "2025-09-30T16:59", "2025-10-14T17:30"),  # the day's end, whatever the hour
        # Friday 2026-01-02 is a holiday; Sunday the 4th is worked in lieu (调休).
        ("1wd", "2026-01-02T09:00", "2026-01-04T17:30"),
        ("2h", "2026-01-02T23:00", "2026-01-03T01:00"),  # clock hours run through the night
        ("90m", "2026-01-05T09:00", "2026-01-05T10:30"),
        # 1.5 office hours on Friday the 9th, then 6.5 on Monday: 08:30-12:00, 13:30-16:30.
        ("8wh", "2026-01-09T16:00", "2026-01-12T16:30"),
        ("10-15wd", "2026-01-05T09:00", "2026-01-19T17:30"),  # the low end by default
    ],
)
def test_deadlines(spec: str, start: str, due: str) -> None:
    assert Deadline.parse(spec).after(local(start), CAL) == local(due)


def test_a_range_is_picked_within() -> None:
    hard = Deadline.parse("10-15wd")
    assert hard.after(local("2026-01-05T09:00"), CAL, 12) == local("2026-01-21T17:30")
    with pytest.raises(ValueError, match="16 working days is outside the deadline 10-15wd"):
        hard.after(local("2026-01-05T09:00"), CAL, 16)
    with pytest.raises(ValueError, match="outside the deadline 2h"):
        Deadline.parse("2h").pick(3)


@pytest.mark.parametrize("bad", ["5", "5days", "wd", "15-10wd", "1.5wd", "-2h", ""])
def test_bad_specs_say_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match="bad deadline"):
        Deadline.parse(bad)


def test_an_unknown_year_is_refused_not_guessed() -> None:
    with pytest.raises(CalendarUnknown, match="no calendar data for 2027"):
        Deadline.parse("5wd").after(local("2026-12-28T09:00"), CAL)
    # Clock time needs no calendar.
    assert Deadline.parse("2h").after(local("2027-06-01T09:00"), CAL) == local("2027-06-01T11:00")


def test_reminder_leads() -> None:
    start, due = epoch("2026-01-05T09:00"), epoch("2026-01-05T11:00")
    assert Lead.parse("20%").remind_at(start, due) == epoch("2026-01-05T10:36")
    assert Lead.parse("30m").remind_at(start, due) == epoch("2026-01-05T10:30")
    assert Lead.parse("3h").remind_at(start, due) == start  # never before the report
    for bad in ("150%", "soon", "2wd"):
        with pytest.raises(ValueError, match="bad reminder"):
            Lead.parse(bad)
    assert dt.timedelta(minutes=30) == Lead.parse("0.5h").before
