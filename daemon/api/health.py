"""`GET /api/v1/health`: no token needed; says whether every device is reachable."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from daemon import __version__
from daemon.api.deps import HostDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(host: HostDep) -> dict[str, Any]:
    devices = list(host.devices)
    down = [d.id for d in devices if not d.available]
    return {
        "status": "degraded" if down else "ok",
        "version": __version__,
        "uptime_s": round(time.time() - host.started_at, 1),
        "devices": {"total": len(devices), "unavailable": down},
        "buses": {bus.id: {"up": bus.up, **vars(bus.stats)} for bus in host.devices.buses.values()},
        "plugins": host.plugins.names(),
    }
