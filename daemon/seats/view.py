"""What a seat shows, derived from its matrix's state: each console's computer and mode,
the layout the consoles match, and who is watching the seat's computers.

Pure: config, the matrix's `routes` and `modes`, the pushes made, who sits where, in;
dicts out. Derived, not remembered, so a switch made at the matrix's front panel or by
another controller shows here as soon as the matrix echoes it, and a console the matrix
has not reported since a reconnect shows as unknown (`known: false`), never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from daemon.seats.config import (
    ComputerConfig,
    OutputConfig,
    SeatConfig,
    WallConfig,
    outputs_of,
)
from daemon.seats.layouts import Layout, Seated

ComputerAt = Callable[[str, "int | None"], "ComputerConfig | None"]


@dataclass(frozen=True)
class Share:
    """A seat's computer pushed to an output of another seat or the wall."""

    seat: str
    computer: str
    input: int
    mode: str
    by: str
    at: float


@dataclass(frozen=True)
class Matrix:
    """One matrix's connections as its driver reports them (None: unknown)."""

    id: str
    routes: Mapping[str, int | None]
    modes: Mapping[str, str | None]

    @classmethod
    def of(cls, device_id: str, state: Mapping[str, Any]) -> Matrix:
        return cls(device_id, state.get("routes") or {}, state.get("modes") or {})

    def input(self, output: int) -> int | None:
        return self.routes.get(str(output))

    def mode(self, output: int) -> str | None:
        return self.modes.get(str(output)) if self.input(output) else None


def output_dict(out: OutputConfig, matrix: Matrix, computer_at: ComputerAt) -> dict[str, Any]:
    input_ = matrix.input(out.output)
    computer = computer_at(matrix.id, input_)
    return {
        "console": out.output,
        "name": out.name or f"console {out.output}",
        "screens": out.screens,
        "known": input_ is not None,
        "input": input_,
        "computer": computer.id if computer else None,
        "mode": matrix.mode(out.output),
    }


def matching_layout(layouts: Iterable[Layout], consoles: list[dict[str, Any]]) -> str | None:
    """The first layout every route of which the consoles show now, or None."""
    now = {c["console"]: c for c in consoles if c["known"]}
    for layout in layouts:
        if all(
            (shown := now.get(r.console)) is not None
            and shown["computer"] == r.computer
            and (r.computer is None or shown["mode"] == r.mode)
            and (r.computer is not None or shown["input"] == 0)
            for r in layout.routes
        ):
            return layout.id
    return None


def watchers(
    seat: SeatConfig,
    matrix: Matrix,
    others: Iterable[SeatConfig | WallConfig],
    computer_at: ComputerAt,
    shares: Mapping[tuple[str, int], Share],
    seated: Mapping[str, Seated],
) -> list[dict[str, Any]]:
    """Every other output of the matrix that shows a computer this seat shows now or
    pushed there: the seat's console or wall it belongs to, who sits there, the mode."""
    mine = {c.output for c in seat.consoles}
    shown = {i for o in mine if (i := matrix.input(o))}
    owner: dict[int, SeatConfig | WallConfig] = {}
    for other in others:
        if other.matrix == matrix.id and other.id != seat.id:
            for out in outputs_of(other):
                owner[out.output] = other
    found = []
    for key, input_ in sorted(matrix.routes.items(), key=lambda kv: int(kv[0])):
        output = int(key)
        if output in mine or not input_:
            continue
        share = shares.get((matrix.id, output))
        pushed = share is not None and share.seat == seat.id and share.input == input_
        if input_ not in shown and not pushed:
            continue
        where = owner.get(output)
        computer = computer_at(matrix.id, input_)
        is_seat = isinstance(where, SeatConfig)
        sitting = seated.get(where.id) if is_seat and where else None
        found.append(
            {
                "computer": computer.id if computer else None,
                "input": input_,
                "mode": matrix.mode(output),
                "output": output,
                "seat": where.id if is_seat and where else None,
                "wall": where.id if not is_seat and where else None,
                "operator": sitting.operator if sitting else None,
                "pushed_by": share.by if pushed and share else None,
            }
        )
    return found
