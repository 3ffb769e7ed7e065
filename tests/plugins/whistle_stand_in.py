"""Stands in for the ticket plugin's whistle watcher (吹哨报到: a whistle the departments
did not report in to), which is being written beside the panel's alert strip, in the
strip's browser test. Asked over HTTP, it publishes on the host's event bus what that
module will: a `tickets.whistle_unanswered` alert in the shape docs/tickets.md gives
every alert, `{"kind", "level", "ticket", "whistle", "message", "at"}`, and the end of
a whistle, `tickets.whistle` `{"what": "answered" | "closed", "whistle"}`. Loaded through
an entry point, as pip would install it. Drop it once whistles have landed and the
test can blow a real one."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from daemon.api.deps import HostDep, Operator
from daemon.hookspecs import hookimpl
from daemon.host import Host


class Unanswered(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["community", "street", "district"]
    ticket: int | None = None
    whistle: int
    message: str


class Ended(BaseModel):
    model_config = ConfigDict(extra="forbid")
    what: Literal["answered", "closed"]
    whistle: int


@hookimpl
def gridhall_api_routers(host: Host) -> list[Any]:
    router = APIRouter(tags=["whistle_stand_in"])

    @router.post("/unanswered", status_code=202)
    async def unanswered(alert: Unanswered, host: HostDep, who: Operator) -> dict[str, str]:
        data = {"kind": "whistle_unanswered", **alert.model_dump(), "at": time.time()}
        host.publish("tickets", "whistle_unanswered", data)
        return {"status": "published"}

    @router.post("/ended", status_code=202)
    async def ended(end: Ended, host: HostDep, who: Operator) -> dict[str, str]:
        whistle = {"id": end.whistle, "state": end.what}
        host.publish("tickets", "whistle", {"what": end.what, "whistle": whistle})
        return {"status": "published"}

    return [router]
