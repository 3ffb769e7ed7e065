"""The config's `[[computer]]`, `[[seat]]` and `[[wall]]` tables, and their references.

A computer is a matrix input with a name and the rights that reach it; a seat is an
operator desk: the matrix outputs of its consoles (each feeding one or more screens),
the computers it offers, and its named layouts; a wall is outputs of a matrix that feed
the video wall. Pure: models and checks, used by the config loader (errors with their
line) and by the seat service.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.interlocks import ID
from daemon.kinds import Kind, matrix_size

Mode = Literal["full", "video", "private"]
ShareMode = Literal["full", "video"]
MODES: tuple[Mode, ...] = ("full", "video", "private")
SHARE_MODES: tuple[ShareMode, ...] = ("video", "full")
Number = Annotated[int, Field(ge=1, le=4096)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Right(Section):
    """One entry of a computer's `allow`: a role (and every role that includes it) or
    one operator (a token's name), the modes they may connect in, and the modes they
    may push the computer in to another seat or the wall."""

    role: str | None = None
    operator: Annotated[str, Field(min_length=1)] | None = None
    modes: Annotated[list[Mode], Field(min_length=1)] = list(MODES)
    share: list[ShareMode] = ["video"]

    @model_validator(mode="after")
    def _one_subject(self) -> Right:
        if (self.role is None) == (self.operator is None):
            raise ValueError("give either role or operator")
        return self

    def describe(self) -> str:
        return f"role {self.role}" if self.role is not None else f"operator {self.operator}"


class ComputerConfig(Section):
    id: ID
    name: str | None = None
    matrix: ID
    input: Number
    # A secure computer is reached by nobody but those its `allow` names (and admin);
    # any other computer by every operator unless its `allow` says otherwise.
    secure: bool = False
    allow: list[Right] | None = None

    def rights(self) -> list[Right]:
        if self.allow is not None:
            return self.allow
        return [] if self.secure else [Right(role="operator")]


class OutputConfig(Section):
    """A matrix output: a seat's console (its keyboard, mouse and screens) or one of
    the wall's inputs."""

    output: Number
    name: str | None = None
    screens: list[str] = []


class LayoutRoute(Section):
    console: Number  # the console's output number
    computer: ID | None = None  # none: the console is disconnected
    mode: Mode = "full"


class LayoutConfig(Section):
    id: ID
    name: str | None = None
    routes: Annotated[list[LayoutRoute], Field(min_length=1)]


class SeatConfig(Section):
    id: ID
    name: str | None = None
    matrix: ID
    consoles: Annotated[list[OutputConfig], Field(min_length=1)]
    computers: list[ID] = []
    layouts: list[LayoutConfig] = []
    default_layout: ID | None = None  # restored at a login when the operator has none

    def console(self, output: int) -> OutputConfig | None:
        return next((c for c in self.consoles if c.output == output), None)


class WallConfig(Section):
    id: ID
    name: str | None = None
    matrix: ID
    outputs: Annotated[list[OutputConfig], Field(min_length=1)]


def outputs_of(place: SeatConfig | WallConfig) -> list[OutputConfig]:
    """A seat's consoles, or a wall's outputs."""
    return place.consoles if isinstance(place, SeatConfig) else place.outputs


Add = Callable[[tuple[Any, ...], str], None]


def check_references(config: Any, roles: Collection[str], add: Add) -> None:
    """Every name a computer, seat or wall gives must exist: matrices, inputs and
    outputs within their size, computers, roles, consoles in layouts; an output
    belongs to one seat or wall; seat and wall ids are one namespace (push targets)."""
    devices = {d.id: d for d in config.device}

    def size(matrix: str, loc: tuple[Any, ...]) -> tuple[int, int] | None:
        dev = devices.get(matrix)
        if dev is None or dev.kind is not Kind.MATRIX:
            what = "does not exist" if dev is None else f"is a {dev.kind.value}, not a matrix"
            add(loc, f"matrix {matrix!r} {what}")
            return None
        return matrix_size(config.driver_options.get(matrix), None, {})

    computers: dict[str, ComputerConfig] = {}
    inputs: dict[tuple[str, int], str] = {}
    for i, comp in enumerate(config.computer):
        computers[comp.id] = comp
        found = size(comp.matrix, ("computer", i, "matrix"))
        if found and found[0] and comp.input > found[0]:
            add(("computer", i, "input"), f"input {comp.input}: {comp.matrix} has {found[0]}")
        if (other := inputs.setdefault((comp.matrix, comp.input), comp.id)) != comp.id:
            add(("computer", i, "input"), f"{comp.matrix} input {comp.input} is {other!r} too")
        for j, right in enumerate(comp.allow or []):
            if right.role is not None and right.role not in roles:
                known = ", ".join(sorted(roles))
                add(("computer", i, "allow", j, "role"), f"no role {right.role!r} ({known})")
            if set(right.share) - set(right.modes):
                add(("computer", i, "allow", j, "share"), "share: only modes in its modes")

    owners: dict[tuple[str, int], str] = {}
    targets: dict[str, str] = {}  # seat or wall id -> "seat" or "wall"

    def claim(matrix: str, outputs: list[OutputConfig], owner: str, loc: tuple[Any, ...]) -> None:
        found = size(matrix, loc + ("matrix",))
        if targets.setdefault(owner, loc[0]) != loc[0]:
            add(loc + ("id",), f"{owner!r} names both a seat and a wall")
        for j, out in enumerate(outputs):
            where = loc + (("consoles" if loc[0] == "seat" else "outputs"), j, "output")
            if found and found[1] and out.output > found[1]:
                add(where, f"output {out.output}: {matrix} has {found[1]}")
            if (other := owners.setdefault((matrix, out.output), owner)) != owner:
                add(where, f"{matrix} output {out.output} belongs to {other!r} already")
            elif [o.output for o in outputs].count(out.output) > 1:
                add(where, f"output {out.output} is listed twice")

    for i, seat in enumerate(config.seat):
        claim(seat.matrix, seat.consoles, seat.id, ("seat", i))
        for j, comp_id in enumerate(seat.computers):
            comp = computers.get(comp_id)
            if comp is None:
                add(("seat", i, "computers", j), f"no computer {comp_id!r}")
            elif comp.matrix != seat.matrix:
                add(
                    ("seat", i, "computers", j), f"{comp_id} is on {comp.matrix}, not {seat.matrix}"
                )
        _check_layouts(seat, i, add)
    for i, wall in enumerate(config.wall):
        claim(wall.matrix, wall.outputs, wall.id, ("wall", i))


def _check_layouts(seat: SeatConfig, i: int, add: Add) -> None:
    ids = [layout.id for layout in seat.layouts]
    for j, layout in enumerate(seat.layouts):
        if ids.index(layout.id) != j:
            add(("seat", i, "layouts", j, "id"), f"layout {layout.id!r} is defined twice")
        private = {r.computer: r.console for r in layout.routes if r.mode == "private"}
        for k, route in enumerate(layout.routes):
            loc = ("seat", i, "layouts", j, "routes", k)
            for problem in route_problems(seat, route.console, route.computer):
                add(loc, f"layout {layout.id}: {problem}")
            if [r.console for r in layout.routes].index(route.console) != k:
                add(loc, f"layout {layout.id}: console {route.console} is routed twice")
            held = private.get(route.computer)
            if route.computer is not None and held is not None and held != route.console:
                add(
                    loc,
                    f"layout {layout.id}: {route.computer} is private on console {held}, so "
                    f"the matrix would refuse it on console {route.console}",
                )
    if seat.default_layout is not None and seat.default_layout not in ids:
        add(("seat", i, "default_layout"), f"no layout {seat.default_layout!r} in this seat")


def route_problems(seat: SeatConfig, console: int, computer: str | None) -> list[str]:
    """What is wrong with routing `computer` to `console` at `seat` (config or API)."""
    found = []
    if seat.console(console) is None:
        found.append(f"console {console} is not one of {seat.id}'s")
    if computer is not None and computer not in seat.computers:
        found.append(f"computer {computer!r} is not one of {seat.id}'s")
    return found
