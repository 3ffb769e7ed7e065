"""`modbus-fan`: a fan on a variable-frequency drive, over Modbus (RTU or TCP).

Register maps differ by vendor, so the map is configuration, never code: the run
command is `run_value` (or `stop_value`) written to `run_register`, the speed is a
setpoint in `speed_register` scaled so that `speed_max` is 100 %. A Delta drive, for
example: control word 0x2000 (2 run, 1 stop), frequency 0x2001 in 0.01 Hz with
`speed_max = 5000` (50.00 Hz), output frequency read back at 0x2103.

Every write is read back (FC03) before the action answers, and the state is read from
the drive: `on` is whether `run_register` holds `run_value`; `percent` is how fast the
fan turns now, which is the drive's own output in `feedback_register` when given (on
the same scale as the setpoint, `speed_max` = 100 %, so it shows the ramp and the run
down after a stop), and otherwise the setpoint while running and 0 while stopped.

`set_speed` behaves as a speed control does (and as Home Assistant's fans do): a percent
above 0 writes the setpoint, then the run command, so the fan never starts at the old
speed; 0 is `off`, and the setpoint is kept, so the next `on` runs at the last speed.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Annotated, Any, ClassVar

from pydantic import Field, model_validator

from daemon.errors import DeviceRejected
from daemon.kinds import Kind, NoArgs, SpeedArgs, State
from drivers.base import Driver, Options
from drivers.modbus.link import ModbusLink

Register = Annotated[int, Field(ge=0, le=65535)]


class FanOptions(Options):
    run_register: Register
    run_value: Register
    stop_value: Register
    speed_register: Register
    speed_max: Annotated[int, Field(ge=1, le=65535)]
    feedback_register: Register | None = None
    # Many fans stall or overheat below a minimum speed: a set_speed under it (but
    # above 0) runs the fan at it.
    speed_min_percent: Annotated[int, Field(ge=0, le=100)] = 0

    @model_validator(mode="after")
    def _distinct(self) -> FanOptions:
        if self.run_value == self.stop_value:
            raise ValueError("run_value and stop_value are equal: on and off would be one command")
        if self.run_register == self.speed_register:
            raise ValueError("run_register and speed_register are the same register")
        return self


def contiguous_blocks(addresses: Iterable[int]) -> list[tuple[int, int]]:
    """(start, count) runs of consecutive registers: one FC03 frame per run (a Delta's
    0x2000 and 0x2001 in one), and never a register the map does not name, which a
    drive may answer with 'illegal data address'."""
    blocks: list[tuple[int, int]] = []
    for address in sorted(set(addresses)):
        if blocks and blocks[-1][0] + blocks[-1][1] == address:
            blocks[-1] = (blocks[-1][0], blocks[-1][1] + 1)
        else:
            blocks.append((address, 1))
    return blocks


class ModbusFan(Driver[ModbusLink]):
    name: ClassVar[str] = "modbus-fan"
    kind: ClassVar[Kind] = Kind.FAN
    Options = FanOptions
    link_type = ModbusLink
    options: FanOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        watched = [o.run_register, o.speed_register]
        if o.feedback_register is not None:
            watched.append(o.feedback_register)
        self._blocks = contiguous_blocks(watched)

    @property
    def unit(self) -> int:
        return self.config.unit if self.config.unit is not None else 1

    def _percent(self, value: int) -> int:
        return max(0, min(100, round(value * 100 / self.options.speed_max)))

    async def _read(self) -> dict[int, int]:
        values: dict[int, int] = {}
        for start, count in self._blocks:
            regs = await self.io.exchange(partial(self._read_block, start=start, count=count))
            values.update(zip(range(start, start + count), regs, strict=True))
        return values

    async def _read_block(self, link: ModbusLink, *, start: int, count: int) -> list[int]:
        return await link.read_holding(self.unit, start, count)

    async def read_state(self) -> State:
        o = self.options
        regs = await self._read()
        on = regs[o.run_register] == o.run_value
        if o.feedback_register is not None:
            percent = self._percent(regs[o.feedback_register])
        else:
            percent = self._percent(regs[o.speed_register]) if on else 0
        return {"on": on, "percent": percent}

    async def _write(self, register: int, value: int) -> None:
        await self.io.exchange(lambda link: link.write_register(self.unit, register, value))
        [held] = await self.io.exchange(lambda link: link.read_holding(self.unit, register, 1))
        if held != value:
            # The drive answered but did not take the value (keypad/local mode, a
            # write-protect parameter): it is alive, so rejected, not unavailable.
            raise DeviceRejected(
                f"read back: register {register:#06x} holds {held}, {value} was written"
            )

    async def do_on(self, args: NoArgs) -> State:
        await self._write(self.options.run_register, self.options.run_value)
        return await self.read_state()

    async def do_off(self, args: NoArgs) -> State:
        await self._write(self.options.run_register, self.options.stop_value)
        return await self.read_state()

    async def do_set_speed(self, args: SpeedArgs) -> State:
        o = self.options
        if args.percent == 0:
            return await self.do_off(NoArgs())
        percent = max(args.percent, o.speed_min_percent)
        await self._write(o.speed_register, round(percent * o.speed_max / 100))
        await self._write(o.run_register, o.run_value)
        return await self.read_state()
