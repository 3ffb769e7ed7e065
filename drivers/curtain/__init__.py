"""Curtains on a pair of relay channels, with a travel time."""

from typing import Any

DRIVERS: list[Any] = []
EMULATORS: list[Any] = []
