"""The daemon: builds the host from a config, runs it, serves the API, stops cleanly.

Start order: emulators (demo only), store and migrations, buses and devices, plugins'
startup, the API; then READY=1. Stop is the reverse, after STOPPING=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from daemon.api.app import create_app
from daemon.auth import Roles
from daemon.backup import held_by_daemon
from daemon.config import Config
from daemon.devices import Devices
from daemon.events import Event, EventBus
from daemon.host import Host
from daemon.mqtt.bridge import MqttBridge
from daemon.pluginhost import PluginHost
from daemon.sdnotify import Notifier
from daemon.store import CORE_MIGRATIONS, Store

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config, plugins: PluginHost) -> None:
        self.config = config
        events = EventBus()
        store = Store(config.db_path, synchronous=config.storage.synchronous)
        devices = Devices(config, plugins.drivers(), events, store)
        self.host = Host(config, plugins, store, events, devices, Roles(plugins.roles()))
        emulator_types = plugins.emulators()
        self.emulators = []
        for emu in config.emulator:
            cls = emulator_types[emu.type]
            address, _, port = emu.listen.rpartition(":")
            self.emulators.append(cls(address, int(port), cls.Options.model_validate(emu.options)))
        self.app: FastAPI = create_app(self.host, lifespan=self.lifespan)
        # MQTT starts last and stops first: it carries what the rest of the hall says.
        self.mqtt = MqttBridge(self.host) if config.mqtt is not None else None
        if self.mqtt is not None:
            self.host.metrics.hall.mqtt = self.mqtt.client
        self._dispatcher: asyncio.Task[None] | None = None
        self._dispatching = asyncio.Event()
        self._reload_tasks: set[asyncio.Task[bool]] = set()
        self._lock = contextlib.ExitStack()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        host = self.host
        # Held while we run: a second daemon on the same store, or a restore, is refused.
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(held_by_daemon(self.config.db_path))
        for emulator in self.emulators:
            await emulator.start()
        await host.store.open()
        await host.store.migrate(CORE_MIGRATIONS + host.plugins.migrations())
        host.devices.start()
        await host.scenes.seed(host.config)
        await host.seats.start()
        self._dispatcher = asyncio.create_task(self._dispatch_events(), name="plugin-events")
        await self._dispatching.wait()
        await host.plugins.startup(host)
        await host.schedules.start()  # catch-up runs through the devices, scenes, vetoes
        if self.mqtt is not None:
            await self.mqtt.start()

    async def stop(self) -> None:
        host = self.host
        await _bounded("schedules", host.schedules.stop())
        if self.mqtt is not None:
            await _bounded("mqtt", self.mqtt.stop())
        await _bounded("plugins", host.plugins.shutdown(host))
        await _bounded("scenes", host.scenes.stop(), timeout=5.0)
        await _bounded("seats", host.seats.stop())
        if self._dispatcher:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        await _bounded("devices", host.devices.stop())
        await host.store.close()  # never cut short: it commits what was acknowledged
        for emulator in self.emulators:
            await _bounded("emulator", emulator.stop())
        self._lock.close()

    async def _dispatch_events(self) -> None:
        """Hand every event to the plugins, in order, from one task."""

        async def dispatch(event: Event) -> None:
            await self.host.plugins.event(event, self.host)

        await self.host.events.observe(dispatch, self._dispatching)

    async def serve(self) -> int:
        """Run until SIGTERM or SIGINT, telling systemd where we are; the exit code.

        The daemon starts before uvicorn (not in its lifespan), so a start that fails
        (a store that cannot be written) ends the process with its reason, not a
        traceback inside the server's task."""
        await self.start()
        try:
            return await self._serve_api()
        finally:
            await self.stop()

    async def _serve_api(self) -> int:
        host, _, port = self.config.api.listen.rpartition(":")
        server = _Server(
            uvicorn.Config(
                self.app,
                host=host,
                port=int(port),
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=1,
                access_log=False,
            )
        )
        notifier = Notifier()
        loop = asyncio.get_running_loop()

        def stop(signame: str) -> None:
            log.info("%s: stopping", signame)
            notifier.notify("STOPPING=1")
            server.should_exit = True

        loop.add_signal_handler(signal.SIGTERM, stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        watchdog: asyncio.Task[None] | None = None
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            log.info("gridhall ready on http://%s", self.config.api.listen)
            notifier.notify("READY=1")
            if notifier.watchdog_interval:
                watchdog = asyncio.create_task(_watchdog(notifier, notifier.watchdog_interval))
        try:
            await serving
        except SystemExit as exc:  # uvicorn exits when it cannot bind its socket
            log.error("the API could not listen on %s", self.config.api.listen)
            return int(exc.code or 1)
        finally:
            if watchdog:
                watchdog.cancel()
        return 0

    def reload(self) -> None:
        """SIGHUP: read the config once; scenes and interlocks, the seats (computers'
        rights, seats, walls, layouts), then schedules (which name scenes), take its
        new version. A file with errors changes nothing."""
        log.info("SIGHUP: reloading")
        self._reload_tasks.add(task := asyncio.create_task(self.reload_config()))
        task.add_done_callback(self._reload_tasks.discard)

    async def reload_config(self) -> bool:
        from daemon.config import ConfigError, load

        try:
            config = load(self.config.file, self.host.plugins)
        except ConfigError as exc:
            log.error("reload: the config has errors; nothing changed:\n%s", exc)
            return False
        await self.reload_scenes(config)
        await self.host.seats.reload(config)
        return await self.host.schedules.reload(config)

    async def reload_scenes(self, config: Config | None = None) -> bool:
        """Scenes, sequences and interlocks take the config's new version (read again
        unless given). A file with errors changes nothing and says why."""
        from daemon.config import ConfigError, load

        if config is None:
            try:
                config = load(self.config.file, self.host.plugins)
            except ConfigError as exc:
                log.error("reload: the config has errors; scenes unchanged:\n%s", exc)
                return False
        await self.host.scenes.seed(config)
        self.host.interlocks.replace(config.interlock)
        log.info(
            "reload: %d scenes, %d interlocks in force",
            len(self.host.scenes.scenes),
            len(self.host.interlocks.rules),
        )
        return True


async def _bounded(what: str, step: Any, timeout: float = 2.0) -> None:
    """One step of the stop, cut short if it hangs: SIGTERM must end the daemon."""
    try:
        await asyncio.wait_for(step, timeout)
    except TimeoutError:
        log.error("stopping %s took longer than %.0f s; going on", what, timeout)
    except Exception:
        log.exception("stopping %s failed; going on", what)


async def _watchdog(notifier: Notifier, interval: float) -> None:
    # From the event loop itself: a stuck loop stops the pings and systemd restarts us.
    while True:
        notifier.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


class _Server(uvicorn.Server):
    """uvicorn, without its signal handlers: the daemon owns SIGTERM and exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
