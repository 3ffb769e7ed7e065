"""`GET /api/v1/events`: Server-Sent Events of everything on the event bus.

The stream opens with a `snapshot` of every device, so a panel needs no second call
to draw itself, then carries each event as it happens (`event:` is its type).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from daemon.api.deps import HostDep, Viewer

router = APIRouter(tags=["events"])


@router.get("/events", response_class=EventSourceResponse)
async def events(host: HostDep, who: Viewer) -> EventSourceResponse:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        async with host.events.subscribe() as sub:
            snapshot = [d.to_dict() for d in host.devices]
            yield {"event": "snapshot", "data": json.dumps({"devices": snapshot})}
            async for event in sub:
                yield {
                    "event": event.type,
                    "id": str(event.id),
                    "data": json.dumps(event.to_dict()),
                }

    return EventSourceResponse(stream(), ping=15)
