"""IHSE Draco tera KVM matrices (TCP and RS-232)."""

from typing import Any

from drivers.ihse.driver import IhseDraco
from drivers.ihse.emulator import DracoEmulator

DRIVERS: list[Any] = [IhseDraco]
EMULATORS: list[Any] = [DracoEmulator]
