"""How long a device's state change takes to reach an MQTT subscriber, beside raw paho.

Measured in one run, on loopback, against one private Mosquitto:

1. gridhall: the daemon runs in this process (its store, its relay board on the Modbus
   emulator, its MQTT bridge). A state change is published on its event bus exactly as
   a device publishes one; the time runs from there until a subscriber (paho, in its
   own thread, in this process) has the retained state message.
2. raw paho: a paho client publishes the same payload, QoS 1 and retained, to the same
   broker, and the same subscriber receives it: the floor any bridge stands on.

Both use `time.perf_counter` in one process, so no clocks are compared. They run in
alternating batches of 50, so a swing in the shared machine's load falls on both. The
ratio is what compares runs; absolute figures swing with the machine.

Run: .venv/bin/python bench/bench_mqtt.py [--n 1000]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import free_port, pct, record  # noqa: E402

from daemon.config import load  # noqa: E402
from daemon.pluginhost import PluginHost  # noqa: E402
from daemon.runtime import Daemon  # noqa: E402
from drivers.modbus.emulator import ModbusEmulator, ModbusOptions  # noqa: E402

BATCH = 50


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    raise SystemExit("mosquitto did not start")


class Subscriber:
    """Stamps every message with perf_counter as paho's thread receives it."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.arrived: dict[int, float] = {}
        self.waiters: dict[int, asyncio.Future[float]] = {}
        self.loop = asyncio.get_running_loop()
        self.ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: (
            [c.subscribe(t, qos=1) for t in topics],
            self.ready.set(),
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.ready.wait(10)
        time.sleep(0.2)  # the SUBACKs

    def _on_message(self, client: object, userdata: object, msg: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        if msg.retain or not msg.payload:
            return  # the retained copy from subscribing, not a measured message
        seq = json.loads(msg.payload).get("seq")
        if isinstance(seq, int):
            self.arrived[seq] = now
            self.loop.call_soon_threadsafe(self._wake, seq)

    def _wake(self, seq: int) -> None:
        waiter = self.waiters.pop(seq, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(self.arrived[seq])


async def wait_arrival(sub: Subscriber, seq: int, timeout: float = 5.0) -> float:
    """The arrival stamp of message `seq` (taken in paho's thread as it arrived); the
    loop sleeps meanwhile rather than spinning against paho's threads for the GIL."""
    if seq in sub.arrived:
        return sub.arrived[seq]
    waiter = sub.waiters[seq] = asyncio.get_running_loop().create_future()
    if seq in sub.arrived:  # arrived between the check and the registration
        return sub.arrived[seq]
    try:
        return await asyncio.wait_for(waiter, timeout)
    except TimeoutError:
        raise SystemExit(f"message {seq} never arrived") from None


async def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    broker, port = start_broker(folder)
    emu = ModbusEmulator("127.0.0.1", free_port(), ModbusOptions(units=[1], coils=16))
    await emu.start()
    config_path = folder / "gridhall.toml"
    config_path.write_text(
        textwrap.dedent(f"""
        [storage]
        path = "gridhall.db"
        [mqtt]
        url = "mqtt://127.0.0.1:{port}"
        base_topic = "bench"
        [[bus]]
        id = "gw"
        url = "tcp://127.0.0.1:{emu.port}"
        [[device]]
        id = "relay"
        kind = "power"
        driver = "modbus-relay"
        bus = "gw"
        unit = 1
        poll_ms = 60000
        [device.options]
        channels = 8
        """)
    )
    plugins = PluginHost()
    plugins.load(entry_points=False)
    daemon = Daemon(load(config_path, plugins), plugins)
    raw = paho.Client(CallbackAPIVersion.VERSION2)
    raw.connect("127.0.0.1", port)
    raw.loop_start()
    sub = Subscriber(port, ["bench/relay/state", "raw/relay/state"])
    bridged: list[float] = []
    direct: list[float] = []
    try:
        await daemon.start()
        while not (daemon.mqtt and daemon.mqtt.client.connected):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the first publish of everything
        channels = {str(c): False for c in range(1, 9)}
        seq = 0
        for _ in range(3):  # warm-up, unmeasured
            seq += 1
            daemon.host.events.publish("state", "relay", {"channels": channels, "seq": seq})
            await wait_arrival(sub, seq)
        while len(bridged) < n:
            for _ in range(BATCH):
                seq += 1
                state = {"channels": channels, "sequencing": False, "seq": seq}
                t0 = time.perf_counter()
                daemon.host.events.publish("state", "relay", state)
                bridged.append(await wait_arrival(sub, seq) - t0)
            for _ in range(BATCH):
                seq += 1
                payload = json.dumps({"channels": channels, "sequencing": False, "seq": seq})
                t0 = time.perf_counter()
                raw.publish("raw/relay/state", payload, qos=1, retain=True)
                direct.append(await wait_arrival(sub, seq) - t0)
    finally:
        await daemon.stop()
        await emu.stop()
        raw.loop_stop()
        sub.client.loop_stop()
        broker.terminate()
        broker.wait()
    ms = 1000.0
    b50, b99 = pct(bridged, 50) * ms, pct(bridged, 99) * ms
    r50, r99 = pct(direct, 50) * ms, pct(direct, 99) * ms
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"samples: {len(bridged)} each, alternating batches of {BATCH}")
    print(
        f"state change -> subscriber (gridhall): p50 {b50:.3f} ms  p99 {b99:.3f} ms  "
        f"mean {statistics.mean(bridged) * ms:.3f} ms"
    )
    print(
        f"publish -> subscriber (raw paho):      p50 {r50:.3f} ms  p99 {r99:.3f} ms  "
        f"mean {statistics.mean(direct) * ms:.3f} ms"
    )
    print(f"ratio gridhall / raw: p50 {b50 / r50:.2f}x  p99 {b99 / r99:.2f}x")
    for p, value, floor in (("p50", b50, r50), ("p99", b99, r99)):
        record(
            5,
            f"state change to an MQTT subscriber, {p} (n = {len(bridged)})",
            value,
            "ms",
            floor,
            base="raw paho publish to receive, same broker and subscriber",
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    asyncio.run(main(parser.parse_args().n))
