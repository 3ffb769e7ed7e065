"""Seats: their consoles, layouts, logins and pushes (docs/seats.md).

`viewer` reads; `operator` routes a seat's consoles, recalls layouts, logs in and out,
pushes a computer to another seat or the wall, and keeps layouts of their own;
`facility` saves and deletes the seats' own layouts. A route outside the caller's
rights on a computer answers 403 with the reason and reaches no matrix.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi import Path as PathParam

from daemon.api.deps import Facility, HostDep, Operator, Viewer, error_responses
from daemon.seats.commands import (
    LoginCommand,
    PushCommand,
    RecallCommand,
    RouteCommand,
    SaveCommand,
)
from daemon.seats.layouts import SEAT

router = APIRouter(prefix="/seats", tags=["seats"])

LayoutId = Annotated[str, PathParam(pattern=r"^[a-z0-9_-]+$", max_length=64)]
Save = Annotated[SaveCommand | None, Body()]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        403: "outside the caller's rights on a computer, or not one of the seat's",
        404: "unknown seat, computer, layout or target",
        409: "refused: by the matrix (a private connection), an interlock, or nothing to save",
        422: "bad arguments: a console that is not the seat's, a bad mode",
        503: "the matrix is unavailable",
        504: "the matrix did not answer in time",
    }
    return error_responses(*codes, described=text)


_ACT = _errors(403, 404, 409, 422, 503, 504)


@router.get("")
async def list_seats(host: HostDep, who: Viewer) -> dict[str, Any]:
    """Every seat (its consoles, computers with the caller's rights, layouts, operator,
    watchers) and every wall with what its outputs show."""
    return host.seats.overview(who.name, who.role)


@router.get("/{seat_id}", responses=_errors(404))
async def get_seat(seat_id: str, host: HostDep, who: Viewer) -> dict[str, Any]:
    return host.seats.state(seat_id, who.name, who.role)


@router.post("/{seat_id}/route", responses=_ACT)
async def route(seat_id: str, cmd: RouteCommand, host: HostDep, who: Operator) -> dict[str, Any]:
    """One console of the seat to one of its computers (`computer` absent: none)."""
    return await host.seats.route(seat_id, cmd, who.name, who.role)


@router.get("/{seat_id}/layouts", responses=_errors(404))
async def list_layouts(seat_id: str, host: HostDep, who: Viewer) -> dict[str, Any]:
    """The seat's own layouts, and the caller's own at this seat."""
    host.seats.get(seat_id)
    return {
        "seat": [lay.to_dict() for lay in host.seats.layouts.of(seat_id)],
        "mine": [lay.to_dict() for lay in host.seats.layouts.of(seat_id, who.name)],
    }


@router.put("/{seat_id}/layouts/{layout_id}", responses=_errors(404, 409))
async def save_layout(
    seat_id: str, layout_id: LayoutId, host: HostDep, who: Facility, cmd: Save = None
) -> dict[str, Any]:
    """Save the consoles' current routes as one of the seat's layouts."""
    name = cmd.name if cmd else None
    return await host.seats.save(seat_id, layout_id, name, who.name, SEAT)


@router.delete("/{seat_id}/layouts/{layout_id}", status_code=204, responses=_errors(404, 409))
async def delete_layout(seat_id: str, layout_id: LayoutId, host: HostDep, who: Facility) -> None:
    """Drop a layout saved through the API (the config's version, if any, comes back)."""
    await host.seats.delete(seat_id, layout_id, who.name, SEAT)


@router.post("/{seat_id}/layouts/{layout_id}/recall", responses=_ACT)
async def recall_layout(
    seat_id: str, layout_id: LayoutId, host: HostDep, who: Operator
) -> dict[str, Any]:
    """Route every console of the layout at once; the seat's state and each console's
    result once the matrix confirmed them all."""
    cmd = RecallCommand(layout=layout_id)
    return await host.seats.recall(seat_id, cmd, who.name, who.role)


@router.put("/{seat_id}/my-layouts/{layout_id}", responses=_errors(404, 409))
async def save_my_layout(
    seat_id: str, layout_id: LayoutId, host: HostDep, who: Operator, cmd: Save = None
) -> dict[str, Any]:
    """Save the consoles' current routes as a layout of the caller's own
    (`profile` is the one restored at login)."""
    name = cmd.name if cmd else None
    return await host.seats.save(seat_id, layout_id, name, who.name, who.name)


@router.delete("/{seat_id}/my-layouts/{layout_id}", status_code=204, responses=_errors(404))
async def delete_my_layout(seat_id: str, layout_id: LayoutId, host: HostDep, who: Operator) -> None:
    await host.seats.delete(seat_id, layout_id, who.name, who.name)


@router.post("/{seat_id}/my-layouts/{layout_id}/recall", responses=_ACT)
async def recall_my_layout(
    seat_id: str, layout_id: LayoutId, host: HostDep, who: Operator
) -> dict[str, Any]:
    cmd = RecallCommand(layout=layout_id, mine=True)
    return await host.seats.recall(seat_id, cmd, who.name, who.role)


@router.post("/{seat_id}/login", responses=_errors(404))
async def login(
    seat_id: str,
    host: HostDep,
    who: Operator,
    cmd: Annotated[LoginCommand | None, Body()] = None,
) -> dict[str, Any]:
    """The caller sits down at the seat; their own layout is restored (`restore`)."""
    return await host.seats.login(seat_id, cmd or LoginCommand(), who.name, who.role)


@router.post("/{seat_id}/logout", responses=_errors(404, 409))
async def logout(seat_id: str, host: HostDep, who: Operator) -> dict[str, Any]:
    """The seated operator leaves; their consoles are kept as their `profile`."""
    return await host.seats.logout(seat_id, who.name, who.role)


@router.post("/{seat_id}/push", responses=_ACT)
async def push(seat_id: str, cmd: PushCommand, host: HostDep, who: Operator) -> dict[str, Any]:
    """Put one of the seat's computers on another seat's console or a wall output
    (`video` unless the caller's rights allow `full`); the seat's `watchers` show it."""
    return await host.seats.push(seat_id, cmd, who.name, who.role)
