"""The host: what the API and the plugins are given to work with.

It also holds the one path every device action takes, whatever its source (the API,
a seat, a scene, a schedule, MQTT): arguments checked, the caller's rights on the
computers of a matrix checked (403), plugins' vetoes asked, the action run, its audit
row committed, and only then the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from daemon import audit
from daemon.auth import Roles, TokenCache
from daemon.calendar import Calendar
from daemon.clock import Clock, SystemClock
from daemon.config import Config
from daemon.devices import Devices
from daemon.errors import Forbidden, GridhallError, Refused
from daemon.events import EventBus
from daemon.interlocks import Interlocks
from daemon.kinds import State
from daemon.metrics import Metrics
from daemon.pluginhost import PluginHost
from daemon.scene_library import SceneLibrary
from daemon.scene_runs import Run
from daemon.scheduler import Scheduler
from daemon.seats.rights import Rights
from daemon.seats.service import SeatService
from daemon.store import Store


@dataclass
class Mount:
    """A plugin router mounted at a prefix of its own choosing (e.g. `/open311/v2`)."""

    router: Any
    prefix: str


@dataclass
class Host:
    config: Config
    plugins: PluginHost
    store: Store
    events: EventBus
    devices: Devices
    roles: Roles
    started_at: float = field(default_factory=time.time)
    # The time schedules and plugins' deadlines run on; tests put a ManualClock here
    # before the daemon starts.
    clock: Clock = field(default_factory=SystemClock)
    tokens: TokenCache = field(init=False)
    interlocks: Interlocks = field(init=False)
    scenes: SceneLibrary = field(init=False)
    calendar: Calendar = field(init=False)  # working days and hours (also for plugins)
    schedules: Scheduler = field(init=False)
    rights: Rights = field(init=False)  # who may reach which computer of a matrix
    seats: SeatService = field(init=False)
    metrics: Metrics = field(init=False)  # `GET /metrics`: the core's and the plugins'
    # What each plugin keeps for this daemon, under its name: built-in plugins are
    # modules, which hold no state, and several daemons run in one test process.
    plugin_data: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = TokenCache(self.store)
        self.interlocks = Interlocks(self.config.interlock)
        self.scenes = SceneLibrary(self)
        self.calendar = Calendar.from_config(
            self.config.calendar, self.config.resolve(self.config.calendar.overrides)
        )
        self.schedules = Scheduler(self, self.clock)
        self.rights = Rights(self.config.computer, self.roles)
        self.seats = SeatService(self)
        self.metrics = Metrics(self.devices)
        self.metrics.add(self.plugins.metrics(self))

    async def act(
        self,
        device_id: str,
        action: str,
        raw_args: dict[str, Any],
        *,
        who: str,
        cause: str,
        role: str | None = None,
    ) -> State:
        """Run an action. `who` is the caller's name, `role` its token's role (None: a
        source no token stands behind, MQTT or a schedule, which acts as `operator`)."""
        device = self.devices.get(device_id)
        args = device.parse_args(action, raw_args)
        plain = args.model_dump(exclude_none=True)
        started = time.perf_counter()
        try:
            if forbidden := self.rights.check(device_id, action, plain, who, role):
                raise Forbidden(forbidden)
            # A running sequence, then the config's interlocks, then the plugins' vetoes.
            reason = (
                self.scenes.claimed(device_id, cause)
                or self.interlocks.check(device_id, action, plain, self._device_state)
                or await self.plugins.check_action(device_id, action, plain, self)
            )
            if reason:
                raise Refused(reason)
            state = await device.act(action, args)
        except GridhallError as exc:
            await audit.record(
                self.store,
                who=who,
                what=action,
                target=device_id,
                args=plain,
                cause=cause,
                result=exc.code,
                detail=exc.message,
            )
            self._took(device_id, action, exc.code, started)
            raise
        await audit.record(
            self.store, who=who, what=action, target=device_id, args=plain, cause=cause, result="ok"
        )
        self._took(device_id, action, "ok", started)
        self.events.publish(
            "action", device_id, {"action": action, "args": plain, "who": who, "cause": cause}
        )
        return state

    def _took(self, device_id: str, action: str, result: str, started: float) -> None:
        seconds = time.perf_counter() - started
        self.metrics.actions.labels(device_id, action, result).observe(seconds)

    def _device_state(self, device_id: str) -> tuple[bool, dict[str, Any]] | None:
        device = self.devices.devices.get(device_id)
        return None if device is None else (device.available, device.state)

    async def run_scene(
        self, scene_id: str, *, who: str, cause: str, role: str | None = None
    ) -> Run:
        """Start a scene (API, MQTT, schedules all come here); returns once it started.
        409 (Refused) when it or a sequence on its devices is running; `await
        run.wait()` for its end, `run.to_dict()` for its outcome step by step. Its
        actions act with `role`'s rights (see `act`)."""
        return await self.scenes.run(scene_id, who=who, cause=cause, role=role)

    def publish(self, plugin: str, name: str, data: dict[str, Any]) -> None:
        """Plugins publish their own events as `<plugin>.<name>`."""
        self.events.publish(f"{plugin}.{name}", plugin, data)
