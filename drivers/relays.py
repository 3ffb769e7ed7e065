"""What a relay board offers to devices that work through it (a curtain on a pair).

A curtain does not care how a relay is reached (a Modbus coil, a Tasmota on MQTT):
it needs to switch one channel, verified, and to put a guard on the board so that no
writer, whoever asks, can switch on a combination it forbids. Any `power` driver with
these methods can carry a curtain (`ModbusRelay`, `MqttRelay`).

Availability is not part of the interface: it is the board device's own (`Device.
available` and its events), which the device runtime keeps for every driver alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from daemon.kinds import State

Guard = Callable[[set[int], set[int]], str | None]
"""Asked before channels are switched on, with (the channels being switched on, every
channel that would then be on): a reason to refuse, or None. Switching off is never
refused: off is always the safe way."""


def check_guards(guards: list[Guard], switching_on: set[int], on_now: set[int]) -> str | None:
    """The first guard's reason to refuse switching `switching_on` on, or None."""
    after = switching_on | on_now
    for guard in guards:
        if (reason := guard(switching_on, after)) is not None:
            return reason
    return None


@runtime_checkable
class RelayBoard(Protocol):
    """Methods only, so `issubclass(driver_class, RelayBoard)` works on a driver class
    at config time, before any device exists."""

    @classmethod
    def relay_channels(cls, options: Any) -> int:
        """How many channels a board with these (validated) options has."""
        ...

    async def switch(self, channel: int, on: bool) -> None:
        """Switch one channel, verified, guards applying, and publish the new state."""
        ...

    def add_guard(self, guard: Guard) -> None:
        """An interlock on the board's channels, owned by another device."""
        ...

    async def read_state(self) -> State:
        """The board's state, read from it: `{"channels": {"1": bool, ...}, ...}`."""
        ...
