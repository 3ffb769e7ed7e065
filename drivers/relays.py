"""What a relay board offers to devices that work through it (a curtain on a pair).

A curtain does not care how a relay is reached (a Modbus coil, a Tasmota on MQTT):
it needs to switch one channel, verified, and to put a guard on the board so that no
writer, whoever asks, can switch on a combination it forbids. Any `power` driver with
these methods can carry a curtain (`ModbusRelay`, `MqttRelay`).

Availability is not part of the interface: it is the board device's own (`Device.
available` and its events), which the device runtime keeps for every driver alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from daemon.errors import BadArguments, Refused
from daemon.kinds import Args, ChannelArgs, NoArgs, State

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


class Step(BaseModel):
    """One step of a board's `sequence`: a channel, and the pause after it."""

    model_config = ConfigDict(extra="forbid")
    channel: Annotated[int, Field(ge=1, le=256)]
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0


class RelayChannels:
    """What every relay board does the same way, whatever reaches its relays: channels
    1..n, guards asked before anything switches on, `on`/`off` (one channel or all),
    `sequence_on` in order with pauses and `sequence_off` in reverse, and `switch()`
    for the devices that work through the board.

    A driver mixes it in before `Driver`, calls `_init_relays()`, and implements
    `_write_channels(channels, on)`: the write itself, verified. Its options have
    `channels` and `sequence`.
    """

    options: Any
    report: Callable[[State], None]

    def _init_relays(self) -> None:
        self.channels: dict[str, bool] = {}
        self.sequencing = False
        self._guards: list[Guard] = []
        # Guard check and write run as one step, so no other writer (an action, a
        # sequence, a curtain) can slip between a guard's answer and the write.
        self._writing = asyncio.Lock()

    async def _write_channels(self, channels: list[int], on: bool) -> None:
        raise NotImplementedError

    def _state(self) -> State:
        return {"channels": dict(self.channels), "sequencing": self.sequencing}

    @classmethod
    def relay_channels(cls, options: Any) -> int:
        return int(options.channels)

    def add_guard(self, guard: Guard) -> None:
        """An interlock on this board's channels, owned by another device."""
        self._guards.append(guard)

    def _check_guards(self, switching_on: Iterable[int]) -> None:
        on_now = {int(n) for n, on in self.channels.items() if on}
        if (reason := check_guards(self._guards, set(switching_on), on_now)) is not None:
            raise Refused(reason)

    async def _write(self, channels: Iterable[int], on: bool) -> None:
        chans = sorted(set(channels))
        async with self._writing:
            if on:
                self._check_guards(chans)  # all of them before the first is written
            await self._write_channels(chans, on)

    async def switch(self, channel: int, on: bool) -> None:
        """Switch one channel, verified, and publish the board's new state: how devices
        that work through the board (a curtain) drive it. Guards apply; a running
        sequence does not refuse it (a curtain must stop whatever the board is doing)."""
        if not 1 <= channel <= self.options.channels:
            raise BadArguments(f"channel {channel}: the board has {self.options.channels}")
        await self._write([channel], on)
        self.report(self._state())

    def _check_channel(self, args: Args) -> list[int]:
        if self.sequencing:
            raise Refused("a power sequence is running")
        channel = args.channel if isinstance(args, ChannelArgs) else None
        if channel is None:
            return list(range(1, self.options.channels + 1))
        if channel > self.options.channels:
            raise BadArguments(f"channel {channel}: the board has {self.options.channels}")
        return [channel]

    async def do_on(self, args: Args) -> State:
        await self._write(self._check_channel(args), True)
        return self._state()

    async def do_off(self, args: Args) -> State:
        await self._write(self._check_channel(args), False)
        return self._state()

    def _steps(self) -> list[Step]:
        o = self.options
        steps: list[Step] = o.sequence or [Step(channel=n) for n in range(1, o.channels + 1)]
        return steps

    async def do_sequence_on(self, args: NoArgs) -> State:
        return await self._sequence(self._steps(), True)

    async def do_sequence_off(self, args: NoArgs) -> State:
        return await self._sequence(list(reversed(self._steps())), False)

    async def _sequence(self, steps: list[Step], on: bool) -> State:
        if self.sequencing:
            raise Refused("a power sequence is running")
        if on:
            # Refused before the first step, not halfway through the hall's power-up.
            self._check_guards(step.channel for step in steps)
        self.sequencing = True
        self.report(self._state())
        try:
            for i, step in enumerate(steps):
                await self._write([step.channel], on)
                self.report(self._state())
                if step.delay_ms and i < len(steps) - 1:
                    await asyncio.sleep(step.delay_ms / 1000)
        finally:
            self.sequencing = False
        return self._state()
