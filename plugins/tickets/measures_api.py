"""The measures under /api/v1/tickets/: measures, ranking, reports and hot spots.

Every route reads (viewer). A period is `day`, `week`, `month` or `from`/`to`
(plugins/tickets/periods.py), cut in the calendar's time zone; a bad one is a 422
saying what is wrong.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from daemon.api.deps import Viewer
from daemon.errors import BadArguments
from daemon.host import Host
from plugins.tickets import hotspots, live, periods, reports
from plugins.tickets.measures import DIMS
from plugins.tickets.measures_config import HotspotRule
from plugins.tickets.measures_service import MeasureService
from plugins.tickets.periods import Period
from plugins.tickets.ranking import rank

Format = Literal["json", "csv", "html"]
# A report answers in the format asked for (`format`): the OpenAPI says so.
REPORT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report: JSON, CSV (UTF-8 with a BOM, for Excel) or printable HTML",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}
UNITS = ("department", "street", "member")


def period_query(
    day: dt.date | None = None,
    week: Annotated[str | None, Query(description="ISO week, e.g. 2026-W10")] = None,
    month: Annotated[str | None, Query(description="e.g. 2026-03")] = None,
    first: Annotated[dt.date | None, Query(alias="from")] = None,
    last: Annotated[dt.date | None, Query(alias="to", description="inclusive")] = None,
) -> Period:
    return periods.parse(day, week, month, first, last)


PeriodDep = Annotated[Period, Depends(period_query)]


def dims_query(
    by: Annotated[str, Query(description="comma-separated: department, street, member")] = (
        "department,street,member"
    ),
) -> tuple[str, ...]:
    asked = tuple(d.strip() for d in by.split(",") if d.strip())
    unknown = [d for d in asked if d not in UNITS]
    if unknown or not asked:
        raise BadArguments(f"by={by!r}: give one or more of {', '.join(UNITS)}")
    return ("district", *asked)


def build_router(host: Host) -> APIRouter:
    router = APIRouter(tags=["tickets"])
    config = live.get(host).config.measures
    service = MeasureService(host, config)

    def today() -> dt.date:
        # The host's clock, the one tickets are filed and closed on (a test's
        # ManualClock too), so "today" is the day the tickets were counted in.
        return host.clock.now().astimezone(host.calendar.tz).date()

    async def ranking(period: Period, dims: tuple[str, ...]) -> dict[str, Any]:
        now, before = await service.take(period, dims), await service.take(period.previous(), dims)
        return {
            "measures": now,
            "ranking": {
                d: rank(now[d], before[d], config.ranking) for d in dims if d != "district"
            },
            "previous": before["period"],
        }

    async def spots(until: dt.date, rule: HotspotRule, category: str | None) -> dict[str, Any]:
        window = hotspots.window(until, rule.days)
        bounds = window.bounds(host.calendar.tz)
        found = await host.store.read(lambda conn: hotspots.find(conn, bounds, rule, category))
        return {
            "window": window.to_dict(host.calendar.tz),
            "rule": rule.model_dump(),
            "spots": found,
        }

    async def report(period: Period, fmt: Format) -> Any:
        ranked = await ranking(period, DIMS)
        found = await spots(period.last, config.hotspots, None)
        body = reports.compose(ranked["measures"], ranked["ranking"], found, host.calendar.tz)
        name = f"tickets-{period.kind}-{period.label.replace('..', '_')}"
        if fmt == "csv":
            return Response(
                reports.to_csv(body),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        if fmt == "html":
            return HTMLResponse(reports.to_html(body))
        return body

    @router.get("/measures")
    async def measures(
        who: Viewer,
        period: PeriodDep,
        dims: Annotated[tuple[str, ...], Depends(dims_query)],
        direct: Annotated[
            bool, Query(description="count from the tickets, not the rollup (slow; a check)")
        ] = False,
    ) -> dict[str, Any]:
        """The three rates, closure and on-time closure with their counts, for the
        district and each unit; definitions in docs/tickets-measures.md."""
        return await service.take(period, dims, direct=direct)

    @router.get("/measures/ranking")
    async def ranking_route(
        who: Viewer,
        period: PeriodDep,
        by: Literal["department", "street", "member"] = "department",
    ) -> dict[str, Any]:
        """The four classes (先进, 进步, 整改, 治理) of one kind of unit."""
        ranked = await ranking(period, ("district", by))
        return {
            "period": ranked["measures"]["period"],
            "previous": ranked["previous"],
            "by": by,
            "rule": config.ranking.model_dump(),
            "units": ranked["ranking"][by],
        }

    @router.get("/reports", response_model=None, responses=REPORT)
    async def any_report(who: Viewer, period: PeriodDep, format: Format = "json") -> Any:
        """A report over any period (专报): measures, classes and hot spots."""
        return await report(period, format)

    @router.get("/reports/daily", response_model=None, responses=REPORT)
    async def daily(who: Viewer, date: dt.date | None = None, format: Format = "json") -> Any:
        """The day's report (日报); yesterday when no date is given."""
        day = date or today() - dt.timedelta(days=1)
        return await report(Period("day", day, day), format)

    @router.get("/reports/weekly", response_model=None, responses=REPORT)
    async def weekly(who: Viewer, week: str | None = None, format: Format = "json") -> Any:
        """The ISO week's report (周报); the last whole week when none is given."""
        period = periods.parse_week(week) if week else periods.week_of(today()).previous()
        return await report(period, format)

    @router.get("/hotspots")
    async def hotspot_route(
        who: Viewer,
        until: dt.date | None = None,
        days: Annotated[int | None, Query(ge=1, le=366)] = None,
        min_count: Annotated[int | None, Query(ge=2)] = None,
        by: Literal["grid", "distance"] | None = None,
        radius_m: Annotated[float | None, Query(gt=0, le=5000)] = None,
        category: str | None = None,
    ) -> dict[str, Any]:
        """Problem boxes: one category at one place at least `min_count` times in the
        `days` days up to `until` (today); unset parameters come from the config."""
        asked = {"days": days, "min_count": min_count, "by": by, "radius_m": radius_m}
        rule = config.hotspots.model_copy(update={k: v for k, v in asked.items() if v is not None})
        return await spots(until or today(), rule, category)

    return router
