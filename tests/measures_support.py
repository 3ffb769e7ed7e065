"""Ticket rows for the measures tests, written to a running daemon's store.

Until the ticket core's create path is in, the tests fill `tickets` with rows as its
workflow leaves them (plugins/tickets/synthetic.py keeps every step in order), in one
transaction through `Store.write`, the way the core writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plugins.tickets import synthetic
from plugins.tickets.synthetic import Fate
from tests.grid_support import grid_config
from tests.support import Running, running

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = {
    "urban-mgmt": "城市管理委员会",
    "sanitation": "环卫所",
    "market": "市场监管所",
    "police": "派出所",
}
CATEGORIES = {
    "city.litter": ("暴露垃圾", "sanitation"),
    "city.stall": ("占道经营", "urban-mgmt"),
    "safety.fire": ("消防隐患", "police"),
}


def local(
    y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, tz: Any = SHANGHAI
) -> float:
    """Epoch seconds of a local time (Shanghai unless told)."""
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=tz).timestamp()


def config(tmp_path: Path, extra: str = "") -> Path:
    return grid_config(tmp_path, extra)


async def reference(hall: Running) -> None:
    await hall.host.store.write(lambda conn: synthetic.reference(conn, DEPARTMENTS, CATEGORIES))


@asynccontextmanager
async def measured(tmp_path: Path, extra: str = "") -> AsyncIterator[Running]:
    """The daemon (no devices) with the departments and categories in its store."""
    async with running(config(tmp_path, extra)) as hall:
        await reference(hall)
        yield hall


@pytest.fixture
async def ticket_hall(tmp_path: Path) -> AsyncIterator[Running]:
    async with measured(tmp_path) as hall:
        yield hall


async def add(hall: Running, fates: list[Fate]) -> None:
    await hall.host.store.write(lambda conn: synthetic.insert(conn, fates))


async def get(hall: Running, url: str, role: str = "viewer") -> Any:
    r = await hall.client.get(url, headers=hall.as_role(role))
    assert r.status_code == 200, (url, r.status_code, r.text)
    return r.json()


def units(body: dict[str, Any], dim: str) -> dict[Any, dict[str, Any]]:
    return {u["key"]: u for u in body[dim]}
