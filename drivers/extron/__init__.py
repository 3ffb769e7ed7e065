"""Extron SIS matrix switchers (RS-232 and telnet)."""

from typing import Any

DRIVERS: list[Any] = []
EMULATORS: list[Any] = []
