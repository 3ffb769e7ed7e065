"""Shared test fixtures: free ports, configs on disk, real emulators, a running daemon.

The daemon runs in-process through its own lifespan (store, buses, devices, plugins)
and is reached with httpx over ASGI; tests that need a process (signals, kill -9)
start `gridhall run` as a subprocess with `spawn_daemon`.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import auth
from daemon.config import load
from daemon.pluginhost import PluginHost
from daemon.runtime import Daemon
from drivers.emulators.base import Emulator
from drivers.modbus.emulator import ModbusEmulator, ModbusOptions

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_copy(tmp_path: Path) -> tuple[Path, int, int]:
    """The demo config with free ports and a store of its own, otherwise unchanged."""
    api, modbus = free_port(), free_port()
    text = (ROOT / "etc" / "gridhall.toml").read_text()
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{api}")
    text = text.replace("127.0.0.1:15020", f"127.0.0.1:{modbus}")
    # Every other emulator of the demo gets a free port too, wherever it is named.
    for port in sorted(set(re.findall(r"127\.0\.0\.1:(150\d\d)", text))):
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    text = re.sub(r'^path = ".*"', 'path = "demo.db"', text, flags=re.M)
    # The files the demo names beside itself stay where they are.
    text = re.sub(
        r'^categories = "(.*)"',
        lambda m: f'categories = "{ROOT / "etc" / m.group(1)}"',
        text,
        flags=re.M,
    )
    path = tmp_path / "gridhall.toml"
    path.write_text(text)
    return path, api, modbus


def relay_config(
    tmp_path: Path, modbus_port: int, api_port: int | None = None, extra: str = ""
) -> Path:
    """A config with one Modbus TCP bus and an 8-channel relay board (unit 1)."""
    text = f"""
    [api]
    listen = "127.0.0.1:{api_port or free_port()}"
    [storage]
    path = "gridhall.db"
    [[bus]]
    id = "gw"
    url = "tcp://127.0.0.1:{modbus_port}"
    timeout_ms = 300
    reconnect_min_ms = 1000
    reconnect_max_ms = 2000
    [[device]]
    id = "relay"
    kind = "power"
    driver = "modbus-relay"
    bus = "gw"
    unit = 1
    poll_ms = 200
    [device.options]
    channels = 8
    sequence = [
      {{ channel = 1, delay_ms = 50 }},
      {{ channel = 2, delay_ms = 50 }},
      {{ channel = 3 }},
    ]
    """
    path = tmp_path / "gridhall.toml"
    path.write_text(textwrap.dedent(text) + textwrap.dedent(extra))
    return path


# A second board behind the same gateway (unit 2), for `relay_config(extra=...)`.
SECOND_BOARD = """
[[device]]
id = "relay-2"
kind = "power"
driver = "modbus-relay"
bus = "gw"
unit = 2
poll_ms = 200
[device.options]
channels = 4
"""


def bare_config(tmp_path: Path, extra: str = "") -> Path:
    """A config with no buses and no devices (plugins' tests), plus `extra`."""
    text = f"""
    [api]
    listen = "127.0.0.1:{free_port()}"
    [storage]
    path = "gridhall.db"
    """
    path = tmp_path / "gridhall.toml"
    path.write_text(textwrap.dedent(text) + textwrap.dedent(extra))
    return path


def device_on_a_line(
    tmp_path: Path,
    url: str,
    device: str,
    *,
    poll_ms: int = 200,
    timeout_ms: int = 300,
    reconnect_max_ms: int = 2000,
    options: str = "",
) -> Path:
    """A config with one bus `line` at `url` and one device on it. `device` is the
    device table's own lines (id, kind, driver, name...); `options` the lines of its
    `[device.options]`."""
    text = textwrap.dedent(
        f"""
        [api]
        listen = "127.0.0.1:{free_port()}"
        [storage]
        path = "gridhall.db"
        [[bus]]
        id = "line"
        url = "{url}"
        timeout_ms = {timeout_ms}
        reconnect_min_ms = 1000
        reconnect_max_ms = {reconnect_max_ms}
        [[device]]
        bus = "line"
        poll_ms = {poll_ms}
        """
    )
    text += textwrap.dedent(device) + "[device.options]\n" + textwrap.dedent(options)
    path = tmp_path / "gridhall.toml"
    path.write_text(text)
    return path


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        await asyncio.sleep(step)


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> None:
    """`wait_for` for sync tests (a browser's, a process's)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        time.sleep(step)


@pytest.fixture
async def modbus() -> AsyncIterator[ModbusEmulator]:
    emu = ModbusEmulator("127.0.0.1", free_port(), ModbusOptions(units=[1, 2], coils=16))
    await emu.start()
    yield emu
    await emu.stop()


class ThreadedEmulator:
    """An emulator on its own event loop in a thread, for tests that block (sync tests
    driving a daemon process), so the device keeps answering while the test waits."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.emulator.port

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def __enter__(self) -> ThreadedEmulator:
        self.thread.start()
        self.call(self.emulator.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.emulator.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def modbus_thread() -> Iterator[ThreadedEmulator]:
    emu = ModbusEmulator("127.0.0.1", free_port(), ModbusOptions(units=[1, 2], coils=16))
    with ThreadedEmulator(emu) as threaded:
        yield threaded


@dataclass
class Running:
    daemon: Daemon
    client: httpx.AsyncClient
    tokens: dict[str, str]

    @property
    def host(self) -> Any:
        return self.daemon.host

    def as_role(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@asynccontextmanager
async def running(config_path: Path, plugins: PluginHost | None = None) -> AsyncIterator[Running]:
    if plugins is None:
        plugins = PluginHost()
        plugins.load(entry_points=False)
    config = load(config_path, plugins)
    daemon = Daemon(config, plugins)
    async with daemon.lifespan():
        tokens = {
            role: await auth.create_token(daemon.host.store, f"test-{role}", role)
            for role in ("viewer", "operator", "facility", "admin")
        }
        transport = httpx.ASGITransport(app=daemon.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gridhall") as client:
            yield Running(daemon, client, tokens)


@pytest.fixture
async def hall(tmp_path: Path, modbus: ModbusEmulator) -> AsyncIterator[Running]:
    """The daemon on a relay board behind the Modbus emulator, devices available."""
    async with running(relay_config(tmp_path, modbus.port)) as r:
        await wait_for(lambda: all(d.available for d in r.host.devices))
        yield r


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    config: Path
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def spawn_daemon(config: Path, port: int, env: dict[str, str] | None = None) -> Process:
    """`gridhall run` as a process; its output goes to a file (a pipe nobody reads
    would fill and block the daemon), shown when a test fails."""
    log = config.with_name(f"daemon-{port}-{time.monotonic_ns()}.log")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "-c", str(config)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(proc, config, port, log)


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer in {timeout}s")


def create_token_cli(config: Path, role: str = "admin", name: str = "test") -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon",
            "token",
            "create",
            "--role",
            role,
            "--name",
            name,
            "-c",
            str(config),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Daemons a test spawned; killed at the end whatever happened."""
    procs: list[Process] = []
    yield procs
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
        p.proc.wait(timeout=10)
        print(f"--- daemon on port {p.port}, exit {p.proc.returncode}:\n{p.output()[-4000:]}")
