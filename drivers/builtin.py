"""The built-in drivers and emulators, registered as a plugin like any other.

Each protocol package exports `DRIVERS` and `EMULATORS`.
"""

from __future__ import annotations

import importlib
from typing import Any

from daemon.hookspecs import hookimpl

PACKAGES = (
    "drivers.modbus",
    "drivers.extron",
    "drivers.ihse",
    "drivers.pjlink",
    "drivers.samsung",
    "drivers.curtain",
    "drivers.mqtt",
)


def _collect(name: str) -> list[Any]:
    return [cls for pkg in PACKAGES for cls in getattr(importlib.import_module(pkg), name)]


@hookimpl
def gridhall_drivers() -> list[Any]:
    return _collect("DRIVERS")


@hookimpl
def gridhall_emulators() -> list[Any]:
    return _collect("EMULATORS")
