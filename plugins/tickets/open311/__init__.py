"""Open311 GeoReport v2 at /open311/v2/ (docs/open311.md): the international standard
for reporting non-emergency problems, served from the ticket plugin's categories and
tickets. A report filed here is a ticket like any other (channel `open311`), made by
the core's one create path; its `expected_datetime` is the ticket's deadline.

- `document`: one answer as JSON (the Spark convention) or XML;
- `errors`: the spec's error format and statuses for every failure;
- `services`: categories as services, definitions, the check of attributes;
- `service_requests`: a POST into a report; tickets as requests;
- `keys`: api_keys, stored hashed; `api`: the routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon.host import Mount

if TYPE_CHECKING:
    from daemon.host import Host

PREFIX = "/open311/v2"


def mount(host: Host) -> Mount:
    from plugins.tickets.open311.api import build_router

    return Mount(build_router(host), PREFIX)
