"""The panel's views: the core's and the plugins' (`gridhall_panel_views`).

A view is an ES module the page imports and mounts, in a tab of its own (`slot =
"view"`) or as a band across the top of every tab (`"strip"`: the ticket plugin's
alerts). Its folder is served under `/panel/<build>/plugins/<id>/`, so the module may
import files beside it; what it needs of the page comes in the `ctx` it is mounted
with (docs/panel.md), never by importing the page's own modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from daemon.host import Host

STATIC = Path(__file__).parent / "static"
VIEW_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class PanelViewError(ValueError):
    """A plugin's view the page could not serve (a bad id, a missing module)."""


@dataclass(frozen=True)
class PanelView:
    id: str  # [a-z0-9-]+, unique on the page; the tab's address (`#/<id>`)
    folder: Path  # the view's files: its module and whatever that imports
    module: str  # the module to import, relative to `folder`, e.g. "alerts.js"
    title: dict[str, str]  # by language: {"en": "Tickets", "zh": "事件"}
    slot: Literal["view", "strip"] = "view"
    role: str = "viewer"  # the least role shown it (the API still checks every call)
    # Shown only when the hall has a device of one of these kinds (the core's views).
    kinds: tuple[str, ...] = field(default=())
    # Shown only when this says so of the running hall (the seats view: a hall with
    # seats); asked at each `GET /api/v1/panel`, so a SIGHUP that adds seats shows it.
    when: Callable[[Host], bool] | None = field(default=None, compare=False)

    def check(self) -> None:
        if not VIEW_ID.match(self.id):
            raise PanelViewError(f"panel view id {self.id!r}: use [a-z0-9-], at most 40")
        if not (self.folder / self.module).is_file():
            raise PanelViewError(f"panel view {self.id!r}: no module {self.folder / self.module}")
        if "en" not in self.title:
            raise PanelViewError(f"panel view {self.id!r}: title needs at least 'en'")


def _core(
    id: str, en: str, zh: str, *kinds: str, when: Callable[[Host], bool] | None = None
) -> PanelView:
    title = {"en": en, "zh": zh}
    return PanelView(id, STATIC / "views", f"{id}.js", title, kinds=kinds, when=when)


def _has_seats(host: Host) -> bool:
    return bool(host.seats.seats)


CORE_VIEWS = (
    _core("matrix", "Matrix", "矩阵切换", "matrix"),
    _core("seats", "Seats", "坐席", when=_has_seats),
    _core("screens", "Screens", "显示屏", "screen"),
    _core("power", "Power", "电源时序", "power"),
    _core("climate", "Curtains & fans", "窗帘风机", "curtain", "fan"),
    _core("scenes", "Scenes", "场景"),
    _core("schedules", "Schedules", "定时任务"),
)


def collect(host: Host) -> list[tuple[str | None, PanelView]]:
    """(plugin name or None for the core, view) for every view, core first; a plugin's
    bad view or an id used twice stops the start, as a bad config does."""
    found: list[tuple[str | None, PanelView]] = [(None, v) for v in CORE_VIEWS]
    seen = {v.id for v in CORE_VIEWS}
    for plugin, view in host.plugins.panel_views(host):
        view.check()
        if view.id in seen:
            raise PanelViewError(f"plugin {plugin}: panel view id {view.id!r} is taken")
        seen.add(view.id)
        found.append((plugin, view))
    return found
