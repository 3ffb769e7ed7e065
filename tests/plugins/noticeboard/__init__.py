"""A notice board for the hall: operators post a notice, every panel shows it at once.

A third-party plugin with a panel view, written the way the ticket plugin's alert
strip is meant to be (docs/panel.md): the plugin publishes its own events
(`noticeboard.notice`), and its strip, an ES module in this package, shows them as
they come over the page's event stream. The browser tests load it through an entry
point, as pip would install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from daemon.api.deps import HostDep, Operator
from daemon.hookspecs import hookimpl
from daemon.host import Host
from daemon.panel.views import PanelView

NAME = "noticeboard"


class Notice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=200)]


@hookimpl
def gridhall_api_routers(host: Host) -> list[Any]:
    router = APIRouter(tags=[NAME])

    @router.post("/notices", status_code=202)
    async def post_notice(notice: Notice, host: HostDep, who: Operator) -> dict[str, str]:
        host.publish(NAME, "notice", {"text": notice.text, "by": who.name})
        return {"status": "published"}

    return [router]


@hookimpl
def gridhall_panel_views(host: Host) -> list[PanelView]:
    return [
        PanelView(
            id=NAME,
            folder=Path(__file__).parent / "panel",
            module="strip.js",
            title={"en": "Notices", "zh": "通知"},
            slot="strip",
        )
    ]
