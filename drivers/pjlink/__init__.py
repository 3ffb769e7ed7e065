"""PJLink class 1 projectors and displays (TCP 4352)."""

from typing import Any

DRIVERS: list[Any] = []
EMULATORS: list[Any] = []
