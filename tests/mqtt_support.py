"""A private Mosquitto for the tests, and a test-side MQTT client that records.

The broker listens on a free port on 127.0.0.1 only, with persistence in the test's
temporary folder, so stopping and starting it keeps sessions and retained messages
as a real broker restart does. The `Recorder` is paho in its own thread (as the
daemon's client is), appending every message it gets; tests wait on it with generous
timeouts.
"""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support import free_port


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        None,
    )


class Broker:
    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        folder.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Started as root, mosquitto would switch to the `mosquitto` user, which
            # cannot write the persistence file in the test's private folder.
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type subscribe\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = mosquitto_path()
        assert exe, "mosquitto is not installed (make test installs it)"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=out, stderr=out)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"mosquitto exited: {self.log.read_text()}") from None
                time.sleep(0.02)
        raise AssertionError("mosquitto did not listen in 10 s")

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its sessions and retained messages, as on a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed: apt-get install mosquitto (make test does)")
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()
    print(f"--- mosquitto on port {b.port}:\n{b.log.read_text()[-4000:]}")  # shown on failure


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    correlation: bytes | None
    at: float

    def text(self) -> str:
        return self.payload.decode()


class Recorder:
    """A test-side MQTT 5 client: subscribes, records, publishes."""

    def __init__(
        self, port: int, filters: list[str], *, client_id: str = "", session_s: int = 0
    ) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.filters = filters
        self.connected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_s
        self.client.connect(
            "127.0.0.1",
            port,
            keepalive=10,
            clean_start=paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self.client.loop_start()
        assert self.connected.wait(10), "test client did not connect"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not flags.session_present:
            for f in self.filters:
                client.subscribe(f, qos=1)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = getattr(msg, "properties", None)
        corr = getattr(props, "CorrelationData", None) if props else None
        with self.lock:
            self.messages.append(
                Received(
                    msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, corr, time.monotonic()
                )
            )

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        props = None
        if response_topic is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = response_topic
            if correlation is not None:
                props.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos:
            info.wait_for_publish(10)

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if predicate(m)]

    async def wait(self, predicate: Callable[[Received], bool], timeout: float = 20) -> Received:
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(predicate)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                topics = sorted({m.topic for m in self.matching(lambda m: True)})
                raise AssertionError(f"no such message in {timeout}s; got topics {topics}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
async def recorders() -> AsyncIterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for r in made:
        r.close()


def mqtt_section(broker: Broker, base: str = "hall", extra: str = "") -> str:
    return (
        f'\n[mqtt]\nurl = "{broker.url}"\nbase_topic = "{base}"\n'
        "reconnect_min_s = 1\nreconnect_max_s = 2\n" + extra
    )


async def bridge_online(broker: Broker, base: str = "hall") -> None:
    """Wait for `<base>/bridge/state` = `online`: the bridge publishes it after its
    subscriptions on the same connection, and the broker keeps a connection's order,
    so from then on commands reach it (a client's way to know, too)."""
    rec = Recorder(broker.port, [f"{base}/bridge/state"])
    try:
        await rec.wait(lambda m: m.payload == b"online")
    finally:
        rec.close()
