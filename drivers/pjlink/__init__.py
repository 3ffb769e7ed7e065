"""PJLink class 1 projectors and displays (TCP 4352).

`protocol` is the sans-I/O protocol, `link` the connection a bus owns (reopened when
the device drops an idle one), `driver` the `pjlink` screen driver and `emulator` a
projector on loopback for the demo and the tests.
"""

from typing import Any

from drivers.pjlink.driver import PJLink
from drivers.pjlink.emulator import PJLinkEmulator

DRIVERS: list[Any] = [PJLink]
EMULATORS: list[Any] = [PJLinkEmulator]
