"""Extron SIS matrix switchers (RS-232 and telnet)."""

from typing import Any

from drivers.extron.driver import ExtronSIS
from drivers.extron.emulator import ExtronEmulator

DRIVERS: list[Any] = [ExtronSIS]
EMULATORS: list[Any] = [ExtronEmulator]
