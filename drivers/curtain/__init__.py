"""Curtains on a pair of relay channels, with a travel time."""

from typing import Any

from drivers.curtain.driver import RelayCurtain

DRIVERS: list[Any] = [RelayCurtain]
EMULATORS: list[Any] = []
