"""Modbus RTU and TCP devices, through pymodbus: relay boards and VFD fans."""

from typing import Any

from drivers.modbus.emulator import ModbusEmulator
from drivers.modbus.fan import ModbusFan
from drivers.modbus.relay import ModbusRelay

DRIVERS: list[Any] = [ModbusRelay, ModbusFan]
EMULATORS: list[Any] = [ModbusEmulator]
