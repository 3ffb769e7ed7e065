"""The built-in drivers and emulators, registered as a plugin like any other."""

from __future__ import annotations

from typing import Any

from daemon.hookspecs import hookimpl
from drivers.emulators.modbus import ModbusEmulator
from drivers.modbus.relay import ModbusRelay


@hookimpl
def gridhall_drivers() -> list[Any]:
    return [ModbusRelay]


@hookimpl
def gridhall_emulators() -> list[Any]:
    return [ModbusEmulator]
