"""A small categories file, a district with members on duty, and a daemon on a clock
for the ticket tests.

The district is the grid tests' two-by-two community (tests/grid_support.py) with a
full-time member in each grid, imported through the CLI as an operator would. The
daemon runs in-process through its lifespan with a ManualClock as `host.clock`, so a
test stands on a chosen minute of China's calendar and moves time by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from daemon import auth, cli
from daemon.clock import ManualClock
from daemon.config import load
from daemon.events import Event
from daemon.hookspecs import hookimpl
from daemon.pluginhost import PluginHost
from daemon.runtime import Daemon
from tests.grid_support import COMMUNITY, at, grid_config, write_csv
from tests.support import Running, wait_for
from tests.test_grid_import import good_district

SHANGHAI = ZoneInfo("Asia/Shanghai")
G1, G2, G3, G4 = (COMMUNITY + s for s in ("01", "02", "03", "04"))
ROLES = ("viewer", "reporter", "dispatcher", "handler", "operator", "facility", "admin")

CATALOG = """\
[[department]]
id = "police"
name = "区公安分局"
[[department]]
id = "urban"
name = "区城管委"
competent = true
[[department]]
id = "sanitation"
name = "区环卫中心"
[[department]]
id = "law"
name = "区委政法委"
competent = true

[[group]]
code = "city"
name = "市容环境"
competent = "urban"
[[group]]
code = "security"
name = "社会治安"
competent = "law"
major = true

[[category]]
code = "city.litter"
name = "暴露垃圾"
group = "city"
tier = "simple"
department = "sanitation"
[[category]]
code = "city.parking"
name = "乱停乱放"
group = "city"
tier = "coordination"
department = "police"
[[category]]
code = "city.manhole"
name = "井盖缺失"
group = "city"
tier = "coordination"
department = "urban"
deadline = "8wh"
[[category]]
code = "city.building"
name = "违法建设"
group = "city"
tier = "hard"
department = "urban"
[[category]]
code = "security.fight"
name = "打架斗殴"
group = "security"
tier = "coordination"
department = "police"
deadline = "2h"
"""


def local(text: str) -> dt.datetime:
    """An ISO local time in Shanghai, e.g. "2026-01-05T09:00"."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def epoch(text: str) -> float:
    return local(text).timestamp()


POINT = dict(zip(("lon", "lat"), at(0.5, 0.5), strict=True))  # inside G1


def tickets_config(tmp_path: Path, extra: str = "", catalog: str = CATALOG) -> Path:
    (tmp_path / "categories.toml").write_text(catalog, encoding="utf-8")
    return grid_config(
        tmp_path, '[tickets]\ncategories = "categories.toml"\n' + textwrap.dedent(extra)
    )


async def import_district(tmp_path: Path, config: Path) -> None:
    """The two-by-two district, member Mn on duty in grid 0n, by `gridhall grid import`."""
    d = good_district(tmp_path / "district")
    rows = [
        f"M{i},网格员{i},,1380000000{i},{COMMUNITY}0{i},member,,2024-01-01" for i in range(1, 5)
    ]
    write_csv(d / "members.csv", "person,name,id_number,phone,grid,role,helper_kind,since", *rows)
    code = await asyncio.to_thread(cli.main, ["grid", "import", "-c", str(config), str(d)])
    assert code == 0


def plugin_host(*extra: tuple[object, str]) -> PluginHost:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    for plugin, name in extra:
        plugins.register(plugin, name=name)
    return plugins


@asynccontextmanager
async def tickets_at(
    config: Path, clock: ManualClock, plugins: PluginHost | None = None
) -> AsyncIterator[Running]:
    """The daemon on `config` with `clock` as the host's clock; a token per role."""
    plugins = plugins or plugin_host()
    daemon = Daemon(load(config, plugins), plugins)
    daemon.host.clock = clock
    daemon.host.schedules.clock = clock
    async with daemon.lifespan():
        tokens = {
            role: await auth.create_token(daemon.host.store, f"test-{role}", role) for role in ROLES
        }
        transport = httpx.ASGITransport(app=daemon.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gridhall") as client:
            hall = Running(daemon, client, tokens)
            await wait_for(lambda: clock.sleeping > 0)  # the watcher waits for its time
            await clock.settle()
            yield hall


async def report(hall: Running, role: str = "reporter", **fields: Any) -> httpx.Response:
    body = {"category": "city.litter", **POINT, **fields}
    return await hall.client.post("/api/v1/tickets", json=body, headers=hall.as_role(role))


async def step(
    hall: Running, ticket: int, transition: str, role: str = "dispatcher", **args: Any
) -> httpx.Response:
    return await hall.client.post(
        f"/api/v1/tickets/{ticket}/{transition}", json=args or None, headers=hall.as_role(role)
    )


class Listening:
    """Every event on the bus whose type `wanted` accepts, as an SSE client gets them."""

    def __init__(self, hall: Running, wanted: Callable[[str], bool]) -> None:
        self.hall, self.wanted = hall, wanted
        self.events: list[Event] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listening:
        ready = asyncio.Event()

        async def listen() -> None:
            async with self.hall.host.events.subscribe() as sub:
                ready.set()
                async for event in sub:
                    if self.wanted(event.type):
                        self.events.append(event)

        self._task = asyncio.create_task(listen())
        await ready.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Heard:
    """A throwaway plugin that keeps every ticket change and alert it hears."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []

    @hookimpl
    def gridhall_ticket_changed(self, change: dict[str, Any]) -> None:
        self.changes.append(change)

    @hookimpl
    async def gridhall_ticket_alert(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)
