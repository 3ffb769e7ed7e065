"""`modbus-relay`: a relay board on Modbus (RTU or TCP), the hall's power sequencer.

Coils `first_coil .. first_coil+channels-1` are channels 1..n. Every write is read back
(FC01) before the action answers, so the state the API returns is the board's own.
The board has no sequencing of its own: `sequence_on` walks `sequence` in order,
pausing `delay_ms` after each step, and `sequence_off` walks it in reverse.

Devices that work through the board (a curtain on an open/close pair) switch channels
with `switch()` and may add a guard with `add_guard()` (the `RelayBoard` interface of
`drivers.relays`): every write that switches a channel on asks the guards first,
whoever asked for it (the API, a sequence, another device), so an interlock cannot be
bypassed by talking to the board directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from daemon.errors import BadArguments, DeviceError, Refused
from daemon.kinds import ChannelArgs, Kind, NoArgs, State
from drivers.base import Driver, Options
from drivers.modbus.link import ModbusLink
from drivers.relays import Guard, check_guards


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Annotated[int, Field(ge=1, le=256)]
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0


class RelayOptions(Options):
    channels: Annotated[int, Field(ge=1, le=256)] = 8
    first_coil: Annotated[int, Field(ge=0, le=65535)] = 0
    sequence: list[Step] = []
    verify: bool = True

    @field_validator("sequence")
    @classmethod
    def _steps_in_range(cls, sequence: list[Step], info: ValidationInfo) -> list[Step]:
        channels = info.data.get("channels", 8)
        for step in sequence:
            if step.channel > channels:
                raise ValueError(f"sequence names channel {step.channel}, the board has {channels}")
        return sequence

    def steps(self) -> list[Step]:
        return self.sequence or [Step(channel=n) for n in range(1, self.channels + 1)]


class ModbusRelay(Driver[ModbusLink]):
    name: ClassVar[str] = "modbus-relay"
    kind: ClassVar[Kind] = Kind.POWER
    Options = RelayOptions
    link_type = ModbusLink
    options: RelayOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sequencing = False
        self.channels: dict[str, bool] = {}
        self._guards: list[Guard] = []
        # Guard check, write and read-back run as one step, so no other writer (an
        # action, a sequence, a curtain) can slip between a guard's answer and the write.
        self._writing = asyncio.Lock()

    @property
    def unit(self) -> int:
        return self.config.unit if self.config.unit is not None else 1

    def _state(self) -> State:
        return {"channels": dict(self.channels), "sequencing": self.sequencing}

    async def _read(self) -> dict[str, bool]:
        o = self.options
        bits = await self.io.exchange(
            lambda link: link.read_coils(self.unit, o.first_coil, o.channels)
        )
        self.channels = {str(n): bool(b) for n, b in enumerate(bits, start=1)}
        return self.channels

    async def read_state(self) -> State:
        await self._read()
        return self._state()

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

    async def switch(self, channel: int, on: bool) -> None:
        """Switch one channel, verified, and publish the board's new state: how devices
        that work through the board (a curtain) drive it. Guards apply; a running
        sequence does not refuse it (a curtain must stop whatever the board is doing)."""
        if not 1 <= channel <= self.options.channels:
            raise BadArguments(f"channel {channel}: the board has {self.options.channels}")
        await self._write([channel], on)
        self.report(self._state())

    async def _write(self, channels: Iterable[int], value: bool) -> None:
        chans = sorted(set(channels))
        o = self.options
        async with self._writing:
            if value:
                self._check_guards(chans)
            if len(chans) == 1:
                coil = o.first_coil + chans[0] - 1
                await self.io.exchange(lambda link: link.write_coil(self.unit, coil, value))
            else:
                # All channels of the board: one FC15 frame.
                await self.io.exchange(
                    lambda link: link.write_coils(self.unit, o.first_coil, [value] * o.channels)
                )
            if o.verify:
                read = await self._read()
                wrong = [n for n in chans if read[str(n)] != value]
                if wrong:
                    raise DeviceError(
                        f"read back: channels {wrong} did not switch {'on' if value else 'off'}"
                    )
            else:
                self.channels.update({str(n): value for n in chans})

    def _check_channel(self, args: ChannelArgs) -> list[int]:
        if self.sequencing:
            raise Refused("a power sequence is running")
        if args.channel is None:
            return list(range(1, self.options.channels + 1))
        if args.channel > self.options.channels:
            raise BadArguments(f"channel {args.channel}: the board has {self.options.channels}")
        return [args.channel]

    async def do_on(self, args: ChannelArgs) -> State:
        await self._write(self._check_channel(args), True)
        return self._state()

    async def do_off(self, args: ChannelArgs) -> State:
        await self._write(self._check_channel(args), False)
        return self._state()

    async def do_sequence_on(self, args: NoArgs) -> State:
        return await self._sequence(self.options.steps(), True)

    async def do_sequence_off(self, args: NoArgs) -> State:
        return await self._sequence(list(reversed(self.options.steps())), False)

    async def _sequence(self, steps: list[Step], value: bool) -> State:
        if self.sequencing:
            raise Refused("a power sequence is running")
        if value:
            # Refused before the first step, not halfway through the hall's power-up.
            self._check_guards(step.channel for step in steps)
        self.sequencing = True
        self.report(self._state())
        try:
            for i, step in enumerate(steps):
                await self._write([step.channel], value)
                self.report(self._state())
                if step.delay_ms and i < len(steps) - 1:
                    await asyncio.sleep(step.delay_ms / 1000)
        finally:
            self.sequencing = False
        return self._state()
