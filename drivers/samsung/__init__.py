"""Samsung MDC displays (TCP 1515 or RS-232)."""

from typing import Any

DRIVERS: list[Any] = []
EMULATORS: list[Any] = []
