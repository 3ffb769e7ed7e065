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

from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from daemon.errors import DeviceError
from daemon.kinds import Kind, State
from drivers.base import Driver, Options
from drivers.modbus.link import ModbusLink
from drivers.relays import RelayChannels, Step


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


class ModbusRelay(RelayChannels, Driver[ModbusLink]):
    name: ClassVar[str] = "modbus-relay"
    kind: ClassVar[Kind] = Kind.POWER
    Options = RelayOptions
    link_type = ModbusLink
    options: RelayOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_relays()

    @property
    def unit(self) -> int:
        return self.config.unit if self.config.unit is not None else 1

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

    async def _write_channels(self, channels: list[int], on: bool) -> None:
        o = self.options
        if len(channels) == 1:
            coil = o.first_coil + channels[0] - 1
            await self.io.exchange(lambda link: link.write_coil(self.unit, coil, on))
        else:
            # All channels of the board: one FC15 frame.
            await self.io.exchange(
                lambda link: link.write_coils(self.unit, o.first_coil, [on] * o.channels)
            )
        if o.verify:
            read = await self._read()
            wrong = [n for n in channels if read[str(n)] != on]
            if wrong:
                raise DeviceError(
                    f"read back: channels {wrong} did not switch {'on' if on else 'off'}"
                )
        else:
            self.channels.update({str(n): on for n in channels})
