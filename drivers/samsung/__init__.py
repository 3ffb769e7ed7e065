"""Samsung MDC displays (TCP 1515 or RS-232)."""

from typing import Any

from drivers.samsung.driver import SamsungMDC
from drivers.samsung.emulator import MDCEmulator

DRIVERS: list[Any] = [SamsungMDC]
EMULATORS: list[Any] = [MDCEmulator]
