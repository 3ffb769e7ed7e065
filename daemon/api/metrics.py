"""`GET /metrics`: Prometheus's exposition of the daemon (docs/metrics.md).

At the root, where Prometheus looks by default, and behind a token like every other
route: a scraper sends a `viewer` token (`authorization: {credentials: ...}` in its
scrape config). The counts say how the hall is used, which is not for anyone on the
LAN.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from daemon.api.deps import HostDep, Viewer

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(
    host: HostDep, who: Viewer, accept: Annotated[str, Header(max_length=1024)] = ""
) -> Response:
    body, content_type = await host.metrics.scrape(accept)
    return Response(body, media_type=content_type)
