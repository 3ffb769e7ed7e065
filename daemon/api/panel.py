"""`GET /api/v1/panel`: what the signed-in page may show, and where its views are.

The page at `/` holds no token and knows nothing of the hall until a token is typed
in; it then asks this once: who the token is, what its role may do, and the views to
draw: the core's (only for kinds of equipment the hall has) and those plugins add
(`gridhall_panel_views`), each an ES module to import.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from daemon.api.deps import HostDep, Viewer
from daemon.panel.site import Site
from daemon.panel.views import PanelView

router = APIRouter(tags=["panel"])


class ViewOut(BaseModel):
    id: str
    slot: Literal["view", "strip"]
    title: dict[str, str]
    module: str  # the URL of the ES module to import
    plugin: str | None  # None: one of the core's


class PanelOut(BaseModel):
    who: dict[str, str]  # name, role
    may: dict[str, bool]  # operate (actions, scenes), edit (schedules, scenes)
    views: list[ViewOut]


@router.get("/panel")
async def panel(request: Request, host: HostDep, who: Viewer) -> PanelOut:
    site: Site = request.app.state.panel
    views: list[tuple[str | None, PanelView]] = request.app.state.panel_views
    kinds = {d.config.kind.value for d in host.devices}

    def shown(view: PanelView) -> bool:
        return (
            host.roles.grants(who.role, view.role)
            and (not view.kinds or bool(kinds.intersection(view.kinds)))
            and (view.when is None or view.when(host))
        )

    may: dict[str, Any] = {
        "operate": host.roles.grants(who.role, "operator"),
        "edit": host.roles.grants(who.role, "facility"),
    }
    return PanelOut(
        who={"name": who.name, "role": who.role},
        may=may,
        views=[
            ViewOut(
                id=v.id,
                slot=v.slot,
                title=v.title,
                module=site.module_url(plugin, v),
                plugin=plugin,
            )
            for plugin, v in views
            if shown(v)
        ],
    )
