"""What a schedule is and when it runs: the `[[schedule]]` model and its run times.

A schedule is a cron expression, a calendar condition and what to run: a device
action, or a scene. The cron expression alone cannot say "on working days" in China,
where a Sunday may be worked and a Monday may be a holiday, so each time the cron
expression yields is kept only if its day, in the schedule's own time zone, meets the
condition on the calendar service. When the calendar does not know the year, the run
times stop there with `CalendarUnknown`: the schedule is flagged, never guessed.

Pure (no I/O): the config loader (errors with lines), the API and the scheduler share it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.bounds import ActionArgs, Name, Short
from daemon.calendar import Calendar, DayKind

ID = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=64)]
Days = Literal["any", "working_day", "rest_day", "holiday", "makeup_day"]

# A search for run times gives up after this many days: a schedule whose condition
# never holds (makeup_day on 29 February) must not spin the loop.
HORIZON_DAYS = 800


class ScheduleConfig(BaseModel):
    """One `[[schedule]]` table, and the body of the API's POST and PUT."""

    model_config = ConfigDict(extra="forbid")

    id: ID
    name: Name | None = None
    cron: Annotated[str, Field(max_length=100)]  # five fields, minute first: "30 8 * * *"
    # working_day: every working day, make-up days included; rest_day: every day off,
    # holidays included; holiday: days of a public holiday's break; makeup_day: only
    # the weekend days worked in lieu (调休); any: whatever the calendar says.
    days: Days = "any"
    tz: Short | None = None  # default: the calendar's time zone
    device: ID | None = None
    action: Short | None = None
    args: ActionArgs = {}
    scene: ID | None = None
    # Schedules that set the same thing (open 08:30 / close 18:00) share a group: at
    # start the latest transition of the group is run if it was missed.
    group: ID | None = None
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        v = " ".join(v.split())
        if len(v.split()) != 5:
            raise ValueError(f"bad cron expression {v!r}: expected 5 fields, minute first")
        try:
            CronSim(v, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        except CronSimError as exc:
            raise ValueError(f"bad cron expression {v!r}: {exc}") from None
        return v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            check_tz(v)
        return v

    @model_validator(mode="after")
    def _target(self) -> ScheduleConfig:
        if self.scene is not None:
            if self.device is not None or self.action is not None or self.args:
                raise ValueError("give either a scene or a device action, not both")
        elif self.device is None or self.action is None:
            raise ValueError("needs a device and an action, or a scene")
        return self

    @property
    def target(self) -> str:
        return f"scene {self.scene}" if self.scene else f"{self.device} {self.action}"


def check_tz(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None


def day_matches(days: Days, kind: DayKind) -> bool:
    if days == "any":
        return True
    if days == "working_day":
        return kind.working
    if days == "rest_day":
        return not kind.working
    return kind.value == days


class Timing:
    """When one schedule runs: its cron expression filtered by the calendar."""

    def __init__(self, spec: ScheduleConfig, calendar: Calendar) -> None:
        self.spec = spec
        self.calendar = calendar
        self.tz = ZoneInfo(spec.tz) if spec.tz else calendar.tz

    def _ok(self, day: dt.date) -> bool:
        # Raises CalendarUnknown for a year nobody knows, unless no condition is set.
        return self.spec.days == "any" or day_matches(self.spec.days, self.calendar.kind(day))

    def after(self, when: dt.datetime) -> Iterator[dt.datetime]:
        """Run times strictly after `when`, in order (aware, in the schedule's zone)."""
        start = when.astimezone(self.tz)
        horizon = start + dt.timedelta(days=HORIZON_DAYS)
        cursor = start
        while cursor < horizon:
            skipped = False
            for t in CronSim(self.spec.cron, cursor):
                if t > horizon:
                    return
                if self._ok(t.date()):
                    yield t
                    continue
                # The whole day fails the condition: restart the cron at its end,
                # instead of walking every minute of a holiday.
                nxt = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), self.tz)
                cursor = nxt - dt.timedelta(seconds=1)
                skipped = True
                break
            if not skipped:
                return

    def before(self, when: dt.datetime, horizon_days: int = 45) -> Iterator[dt.datetime]:
        """Run times at or before `when`, newest first, back to `horizon_days` ago."""
        end = when.astimezone(self.tz)
        horizon = end - dt.timedelta(days=horizon_days)
        cursor = end + dt.timedelta(seconds=1)  # the reverse walk excludes its start
        while cursor > horizon:
            skipped = False
            for t in CronSim(self.spec.cron, cursor, reverse=True):
                if t < horizon:
                    return
                if t > end:
                    continue
                if self._ok(t.date()):
                    yield t
                    continue
                cursor = dt.datetime.combine(t.date(), dt.time(), self.tz)
                skipped = True
                break
            if not skipped:
                return

    def next_runs(self, when: dt.datetime, count: int) -> list[dt.datetime]:
        runs: list[dt.datetime] = []
        for t in self.after(when):
            runs.append(t)
            if len(runs) >= count:
                break
        return runs
