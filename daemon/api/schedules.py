"""Schedules: read by anyone with a token, edited by the facility role.

Each schedule is shown with its next runs as the calendar places them, its state (a
year the calendar does not know shows as `calendar_unknown` with the reason), a run
it still owes a device that is down, and an operator's override, if any.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from daemon.api.deps import Facility, HostDep, Viewer, error_responses
from daemon.errors import BadArguments
from daemon.schedules import ScheduleConfig

router = APIRouter(prefix="/schedules", tags=["schedules"])


class ScheduleOut(ScheduleConfig):
    """A schedule as stored, with what the scheduler knows of it now."""

    tz: str  # resolved: the calendar's zone when the schedule names none
    origin: Literal["config", "api"]
    state: Literal["ok", "waiting", "failed", "calendar_unknown", "disabled"]
    message: str | None
    next_run: str | None  # the contract's "next run": next_runs[0]
    next_runs: list[str]  # ISO 8601 in the schedule's zone; short when the calendar ends
    pending: str | None  # a run owed to a device that was down
    override: dict[str, Any] | None  # device, by, action, at, until
    last_run: dict[str, Any] | None  # due, at, result, detail


Runs = Annotated[int, Query(ge=1, le=50, description="how many next runs to show")]
_ERRORS = error_responses(
    404,
    409,
    422,
    described={
        404: "no such schedule",
        409: "a schedule with this id exists",
        422: "a bad schedule (the message names it)",
    },
)


@router.get("")
async def list_schedules(host: HostDep, who: Viewer, runs: Runs = 5) -> list[ScheduleOut]:
    sched = host.schedules
    return [ScheduleOut(**sched.describe(e, runs)) for e in sched.entries.values()]


@router.get("/{schedule_id}", responses={404: _ERRORS[404]})
async def get_schedule(schedule_id: str, host: HostDep, who: Viewer, runs: Runs = 5) -> ScheduleOut:
    return ScheduleOut(**host.schedules.describe(host.schedules.get(schedule_id), runs))


@router.post("", status_code=201, responses=_ERRORS)
async def create_schedule(spec: ScheduleConfig, host: HostDep, who: Facility) -> ScheduleOut:
    entry = await host.schedules.create(spec, who.name)
    return ScheduleOut(**host.schedules.describe(entry))


@router.put("/{schedule_id}", responses=_ERRORS)
async def replace_schedule(
    schedule_id: str, spec: ScheduleConfig, host: HostDep, who: Facility
) -> ScheduleOut:
    if spec.id != schedule_id:
        raise BadArguments(f"id {spec.id!r} in the body is not {schedule_id!r} in the path")
    entry = await host.schedules.update(spec, who.name)
    return ScheduleOut(**host.schedules.describe(entry))


@router.delete("/{schedule_id}", status_code=204, responses={404: _ERRORS[404]})
async def delete_schedule(schedule_id: str, host: HostDep, who: Facility) -> Response:
    await host.schedules.delete(schedule_id, who.name)
    return Response(status_code=204)
