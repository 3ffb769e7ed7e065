"""Where a ticket goes: by its point to a grid and the member on duty there (the grid
plugin's hooks), by its category to a department; a coordination case also to the
district's competent department, at the same moment (seed 002: "同步推送").

Pure decisions from what the caller looked up, so the intake and the workflow decide
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.host import Host

# CJ/T 213 code widths: county 6 + street 3 + community 3, then the grid's sequence.
_STREET, _COMMUNITY = 9, 12


@dataclass(frozen=True)
class Place:
    grid: str | None = None
    community: str | None = None
    street: str | None = None
    member: str | None = None  # the full-time grid member on duty there now


def place_of(host: Host, lon: float | None, lat: float | None, grid: str | None = None) -> Place:
    """The grid of the point (or the grid given, when there is no point), its
    community and street, and the member on duty there."""
    if lon is not None and lat is not None:
        found = host.plugins.grid_for_point(lon, lat, host)
        if found is not None:
            path = list(found.get("path") or [])
            grid = str(found["code"])
            street = path[1] if len(path) > 1 else grid[:_STREET]
            community = path[2] if len(path) > 2 else grid[:_COMMUNITY]
            return Place(grid, community, street, _member(host, grid))
    if grid is None:
        return Place()
    return Place(grid, grid[:_COMMUNITY], grid[:_STREET], _member(host, grid))


def _member(host: Host, grid: str) -> str | None:
    on_duty = host.plugins.member_on_duty(grid, host)
    return None if on_duty is None else str(on_duty["person"])


def default_handler(
    tier: str, member: str | None, department: str | None, lead: str | None
) -> str | None:
    """Who a dispatch sends the ticket to when the dispatcher names nobody: a simple
    case to the grid member (who closes it in 2 hours), a hard one to its lead
    department, everything else to the category's department."""
    if tier == "simple":
        return member or department
    if tier == "hard":
        return lead or department
    return department or member


def parties(
    tier: str,
    handler: str,
    *,
    member: str | None,
    competent: str | None,
    co: list[str],
) -> list[tuple[str, str]]:
    """(party, role) for a dispatch, all told at once."""
    found = [(handler, "handler")]
    if member is not None:
        found.append((member, "member"))
    if tier == "coordination" and competent is not None:
        found.append((competent, "competent"))
    found.extend((dept, "co") for dept in co)
    return found
