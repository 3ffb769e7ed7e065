"""What a driver is: a thin class joining a protocol to the bus that owns its link.

A driver never opens a connection or sleeps on a line itself. It is given a `DeviceIO`
and runs each exchange through it; the bus decides when the exchange reaches the wire
(commands ahead of polls, the gap, the timeout). Whether an exchange is a command or a
poll follows from the task that runs it, so drivers do not pass priorities around.
"""

from __future__ import annotations

import contextvars
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from daemon.bus import Bus, Priority
from daemon.errors import NotFound
from daemon.kinds import ACTIONS, Args, Kind, State

if TYPE_CHECKING:
    from daemon.config import BusConfig, Config, DeviceConfig
    from daemon.store import Store

T = TypeVar("T")
L = TypeVar("L")

# The priority of the exchanges the current task runs; set by the device runtime.
current_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "current_priority", default=Priority.COMMAND
)


class Options(BaseModel):
    """Base of a driver's `[device.options]`: unknown options are errors."""

    model_config = ConfigDict(extra="forbid")


class DeviceIO(Generic[L]):
    """A device's handle on its bus."""

    def __init__(self, bus: Bus[Any], unit: int | None) -> None:
        self.bus = bus
        self.unit = unit

    async def exchange(self, fn: Callable[[L], Awaitable[T]], timeout: float | None = None) -> T:
        return await self.bus.exchange(fn, current_priority.get(), timeout)


class Memory:
    """A driver's small persistent state: one JSON object per device in the store.
    Save only on change: a Pi's SD card wears with every write."""

    def __init__(self, store: Store | None, device_id: str) -> None:
        self.store = store
        self.device_id = device_id

    async def load(self) -> dict[str, Any]:
        if self.store is None:
            return {}
        rows = await self.store.fetchall(
            "SELECT data FROM device_memory WHERE device = ?", (self.device_id,)
        )
        return dict(json.loads(rows[0]["data"])) if rows else {}

    async def save(self, data: dict[str, Any]) -> None:
        if self.store is None:
            return
        text = json.dumps(data, sort_keys=True)

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO device_memory (device, data, at) VALUES (?, ?, ?) "
                "ON CONFLICT(device) DO UPDATE SET data = excluded.data, at = excluded.at",
                (self.device_id, text, time.time()),
            )

        await self.store.write(upsert)


class Driver(Generic[L]):
    """Subclass per protocol. Set the class attributes, implement `read_state` and one
    `do_<action>` coroutine per action of the kind (and any extra actions)."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    # Every kind the driver serves, `{kind}` unless a driver sets it. A device's `kind`
    # picks among them (an MQTT relay drives a power channel or a fan), so such a
    # driver reads `self.config.kind` where they differ.
    kinds: ClassVar[frozenset[Kind]]
    Options: ClassVar[type[BaseModel]] = Options
    extra_actions: ClassVar[dict[str, type[Args]]] = {}
    # A matrix's `mode`s for `route` (a KVM's access modes), shown to control panels.
    route_modes: ClassVar[tuple[str, ...]] = ()
    # The class that builds the link a bus owns: `link_type.from_config(url, bus, device)`.
    # None for a driver that works through other devices (a curtain on a relay board).
    link_type: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kinds" not in cls.__dict__ and "kind" in cls.__dict__:
            cls.kinds = frozenset({cls.kind})

    def __init__(self, config: DeviceConfig, options: Any, io: DeviceIO[L] | None) -> None:
        self.config = config
        self.options = options
        self._io = io
        # Set by the device runtime: publishes a state reached mid-action (a sequence's
        # progress) before the action answers.
        self.report: Callable[[State], None] = lambda state: None
        # Set by the device runtime: what the driver must keep across restarts (a
        # curtain's estimated position), in the store.
        self.memory: Memory = Memory(None, config.id)

    def bind(self, devices: Any) -> None:
        """Called once every device exists: a driver that works through other devices
        (a curtain on a relay board) looks them up here (`devices.get(id)`)."""

    @property
    def io(self) -> DeviceIO[L]:
        if self._io is None:
            raise RuntimeError(f"driver {self.name} has no link")
        return self._io

    @classmethod
    def actions(cls, kind: Kind | None = None) -> dict[str, type[Args]]:
        """The actions of a device of `kind` (the driver's `kind` when not given)."""
        return {**ACTIONS[kind or cls.kind], **cls.extra_actions}

    @classmethod
    def check_device(
        cls, device: DeviceConfig, options: Any, config: Config
    ) -> Iterable[tuple[tuple[Any, ...], str]]:
        """Problems a driver sees in its device beyond its options' own validation (a
        unit it cannot address, a reference to another device): ((path in the device's
        table, e.g. ("options", "relay") or ("unit",)), message)."""
        return ()

    @classmethod
    def make_link(cls, url: str, bus: BusConfig | None, timeout: float) -> Any:
        """The link a bus owns for this driver: `link_type.from_url(url, ...)`."""
        return cls.link_type.from_url(url, timeout=timeout, bus=bus)

    async def read_state(self) -> State:
        """Read the device's whole state from the device itself."""
        raise NotImplementedError

    async def poll(self) -> State:
        """Read what may have changed; by default the whole state."""
        return await self.read_state()

    async def act(self, action: str, args: Args) -> State:
        method = getattr(self, f"do_{action}", None)
        if method is None:
            raise NotFound(f"{self.name} has no action {action!r}")
        result: State = await method(args)
        return result

    async def close(self) -> None:
        """Release anything the driver holds (not the link: the bus owns that)."""
