"""Where a curtain is, from how long its motor has run: the curtain's pure part.

The motor reports nothing, so the position is estimated from run time at a constant
speed (`travel_s` for the whole way) and re-synchronised at the end stops: a run to an
end stop lasts the whole travel time plus a margin, whatever the estimate says, so a
drifted estimate still ends at the stop, where the position is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["opening", "closing"]
OPEN, CLOSED = 100.0, 0.0
# Closer than this the curtain is there already: the state shows whole percent.
TOLERANCE = 0.5


@dataclass(frozen=True)
class Run:
    """One run of the motor: which way, from where, since when, for how long."""

    direction: Direction
    start: float  # position when the motor started, 0..100
    started: float  # time.monotonic() when the board confirmed the motor on
    duration: float  # seconds the channel stays on
    target: float  # the position when the run completes

    @property
    def ends(self) -> float:
        return self.started + self.duration

    def position(self, now: float, travel_s: float) -> float:
        """Where the curtain is `now`: never past the run's target, where the motor is
        switched off (a late timer must not report 42 on the way to 40)."""
        moved = max(0.0, now - self.started) / travel_s * 100
        if self.direction == "opening":
            return min(self.start + moved, self.target, OPEN)
        return max(self.start - moved, self.target, CLOSED)


def heading(position: float, target: float) -> Direction | None:
    """The way to run for `target`; None when the curtain is there already. An end stop
    is always run to, even when the estimate says the curtain is there: that run is
    what re-synchronises the estimate."""
    if target >= OPEN:
        return "opening"
    if target <= CLOSED:
        return "closing"
    if abs(target - position) < TOLERANCE:
        return None
    return "opening" if target > position else "closing"


def run_toward(
    direction: Direction, start: float, target: float, now: float, travel_s: float, margin: float
) -> Run:
    """The run from `start` to `target`; to an end stop, `travel_s` plus `margin` (a
    fraction of it) from wherever the curtain is believed to be."""
    if target in (OPEN, CLOSED):
        duration = travel_s * (1 + margin)
    else:
        distance = target - start if direction == "opening" else start - target
        duration = max(0.0, distance) / 100 * travel_s
    return Run(direction, start, now, duration, target)
