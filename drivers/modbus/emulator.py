"""A Modbus TCP gateway with relay boards and VFDs behind it: pymodbus's own server.

Each unit has `coils` coils and `registers` holding registers, all starting at 0 or at
the values given. Tests read and write the device's side with `coils()`, `set_coils()`,
`registers()` and `set_registers()`, stop and restart it to cut the line, and make it
answer odd frames with `mangle` (a function from each answer to what is sent instead).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, cast

from pydantic import Field
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.emulators.base import Emulator, EmulatorOptions

COILS, HOLDING = 1, 3  # pymodbus function codes used to address its datastore
WRITE_LOCAL = 23  # read/write multiple registers: how the device's side writes


class ModbusOptions(EmulatorOptions):
    units: list[Annotated[int, Field(ge=1, le=247)]] = [1]
    coils: Annotated[int, Field(ge=1, le=2000)] = 16
    registers: Annotated[int, Field(ge=1, le=10000)] = 16


class ModbusEmulator(Emulator):
    type = "modbus"
    Options = ModbusOptions
    options: ModbusOptions

    def __init__(self, host: str, port: int, options: ModbusOptions | None = None) -> None:
        super().__init__(host, port, options or ModbusOptions())
        self.server: ModbusTcpServer | ModbusSerialServer | None = None
        self.rtu = False  # RTU framing: on a serial line, or RTU over TCP (socket://)
        # Fault injection: units that never answer (a dead board on a live gateway).
        self.silent_units: set[int] = set()
        # Fault injection: (unit, register) pairs whose writes are acknowledged and then
        # dropped, as a drive in keypad (local) mode does with remote commands.
        self.ignored_writes: set[tuple[int, int]] = set()
        # Fault injection: every answer goes through it (bits flipped, cut short...).
        self.mangle: Callable[[bytes], bytes] | None = None
        self.connections = 0
        # (time.time(), unit, address, values) of the latest coil writes, for tests and
        # benches that check when a command reached the board; bounded for the demo.
        self.coil_writes: deque[tuple[float, int, int, list[Any]]] = deque(maxlen=10_000)

    def _trace_packet(self, sending: bool, packet: bytes) -> bytes:
        # The unit: byte 0 of an RTU frame; after the MBAP header (transaction(2)
        # protocol(2) length(2)) in Modbus TCP.
        at = 0 if self.rtu else 6
        if sending and len(packet) > at and packet[at] in self.silent_units:
            return b""
        if sending and self.mangle is not None:
            return self.mangle(packet)
        return packet

    def _trace_connect(self, connected: bool) -> None:
        self.connections += connected

    async def _on_access(
        self,
        unit: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        """pymodbus asks this before every access (twice for a write, once without its
        values). Coil writes are logged with when they arrived; an ignored register
        write keeps the old value."""
        if function_code in (5, 15) and set_values:
            self.coil_writes.append((time.time(), unit, address, list(set_values)))
        if function_code not in (6, 16) or not set_values:
            return
        written = cast(list[int], set_values)  # FC06 and FC16 write registers
        for i in range(count):
            if (unit, address + i) in self.ignored_writes:
                written[i] = current[address + i - start_address]

    def _devices(self) -> list[SimDevice]:
        o = self.options
        return [
            SimDevice(
                unit,
                action=partial(self._on_access, unit),
                simdata=(
                    [SimData(0, count=o.coils, values=False, datatype=DataType.BITS)],
                    [SimData(0, count=1, values=False, datatype=DataType.BITS)],
                    [SimData(0, count=o.registers, values=0, datatype=DataType.REGISTERS)],
                    [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
                ),
            )
            for unit in o.units
        ]

    async def start(self) -> None:
        # A fresh server each start: a restart models a device that lost power, and the
        # driver must read its real state back.
        self.server = ModbusTcpServer(
            self._devices(),
            address=(self.host, self.port),
            framer=FramerType.RTU if self.rtu else FramerType.SOCKET,
            trace_packet=self._trace_packet,
            trace_connect=self._trace_connect,
        )
        await self.server.serve_forever(background=True)

    async def start_serial(self, port: str, baudrate: int = 9600) -> None:
        """RTU on a serial line (a pty end in tests): the boards on an RS-485 bus."""
        self.rtu = True
        self.server = ModbusSerialServer(
            self._devices(),
            port=port,
            baudrate=baudrate,
            framer=FramerType.RTU,
            trace_packet=self._trace_packet,
        )
        await self.server.serve_forever(background=True)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()  # type: ignore[no-untyped-call]
            self.server = None

    def _require(self) -> ModbusTcpServer | ModbusSerialServer:
        if self.server is None:
            raise RuntimeError("emulator is stopped")
        return self.server

    async def coils(self, unit: int, address: int = 0, count: int | None = None) -> list[bool]:
        n = count if count is not None else self.options.coils - address
        return [bool(v) for v in await self._require().async_getValues(unit, COILS, address, n)]

    async def set_coils(self, unit: int, address: int, values: list[bool]) -> None:
        await self._require().async_setValues(unit, 5 if len(values) == 1 else 15, address, values)

    async def registers(self, unit: int, address: int = 0, count: int = 1) -> list[int]:
        return [
            int(v) for v in await self._require().async_getValues(unit, HOLDING, address, count)
        ]

    async def set_registers(self, unit: int, address: int, values: list[int]) -> None:
        """Change holding registers from the device's side (a drive's own read-back).

        Written as FC23, which no driver sends, so `ignored_writes` (FC06/FC16 from the
        wire) never drops the device's own changes."""
        await self._require().async_setValues(unit, WRITE_LOCAL, address, values)
