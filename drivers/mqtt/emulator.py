"""A fake Tasmota on a broker: relays that answer `cmnd/<topic>/POWER<n>` as one does.

Not a server like the other emulators: it is a client of the broker at the emulator's
`listen` address. It answers `ON`, `OFF`, `TOGGLE` and an empty payload (the state)
on `stat/<topic>/POWER<n>` (`POWER` alone on a one-relay device, as Tasmota does) and
in `stat/<topic>/RESULT`, keeps `tele/<topic>/LWT` (`Online`, last will `Offline`),
and counts the commands that switched a relay, so tests can check a command was
carried out once (`history`: the relays after each change, so a test sees every
state they passed through). `press(n)` switches a relay from its side (its button).
Like an iFan it also takes `cmnd/<topic>/FanSpeed` 0-3 and answers the speed in
`stat/<topic>/RESULT` (`{"FanSpeed": 2}`); `fan_speed` is what it was last set to.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Annotated

from pydantic import Field

from daemon.mqtt.client import ClientSettings, Message, MqttClient, Will
from drivers.emulators.base import Emulator, EmulatorOptions
from drivers.emulators.stream import EMULATOR_LOG


class TasmotaOptions(EmulatorOptions):
    topic: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "tasmota"
    relays: Annotated[int, Field(ge=1, le=8)] = 4


class TasmotaEmulator(Emulator):
    type = "tasmota"
    Options = TasmotaOptions
    options: TasmotaOptions

    def __init__(self, host: str, port: int, options: TasmotaOptions | None = None) -> None:
        super().__init__(host, port, options or TasmotaOptions())
        self.relays = [False] * self.options.relays
        self.switched = 0  # commands that changed a relay
        self.history: deque[tuple[bool, ...]] = deque(maxlen=EMULATOR_LOG)  # after each change
        self.fan_speed = 0
        self._client: MqttClient | None = None
        self._connected = asyncio.Event()

    def _name(self, n: int) -> str:
        return "POWER" if self.options.relays == 1 else f"POWER{n}"

    async def start(self) -> None:
        t = self.options.topic
        self._client = MqttClient(
            ClientSettings(url=f"mqtt://{self.host}:{self.port}", client_id=f"tasmota-{t}"),
            on_connect=self._on_connect,
            on_message=self._on_message,
            will=Will(f"tele/{t}/LWT", "Offline"),
        )
        await self._client.start()
        await asyncio.wait_for(self._connected.wait(), 10)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.stop()
            self._client = None

    def _on_connect(self) -> None:
        assert self._client is not None
        t = self.options.topic
        self._client.subscribe(f"cmnd/{t}/+", qos=1)
        self._client.publish(f"tele/{t}/LWT", "Online", qos=1, retain=True)
        self._connected.set()

    def _on_message(self, msg: Message) -> None:
        command = msg.topic.rsplit("/", 1)[-1].upper()
        if command == "FANSPEED":
            self._fan_speed(msg.payload)
            return
        if not command.startswith("POWER"):
            return
        number = command[5:] or "1"
        if not number.isdigit() or not 1 <= int(number) <= self.options.relays:
            return
        n = int(number)
        word = msg.payload.decode(errors="replace").strip().upper()
        value = {"ON": True, "1": True, "OFF": False, "0": False}.get(word)
        if word == "TOGGLE":
            value = not self.relays[n - 1]
        if value is not None and value != self.relays[n - 1]:
            self.relays[n - 1] = value
            self.switched += 1
            self.history.append(tuple(self.relays))
        if value is not None or word == "":
            self._tell(n)

    def _fan_speed(self, payload: bytes) -> None:
        assert self._client is not None
        word = payload.decode(errors="replace").strip()
        if word.isdigit() and 0 <= int(word) <= 3:
            self.fan_speed = int(word)
        if word == "" or word.isdigit():
            answer = json.dumps({"FanSpeed": self.fan_speed})
            self._client.publish(f"stat/{self.options.topic}/RESULT", answer, qos=1)

    def _tell(self, n: int) -> None:
        assert self._client is not None
        t, name = self.options.topic, self._name(n)
        state = "ON" if self.relays[n - 1] else "OFF"
        self._client.publish(f"stat/{t}/RESULT", json.dumps({name: state}), qos=1)
        self._client.publish(f"stat/{t}/{name}", state, qos=1)

    def press(self, n: int) -> None:
        """The relay's own button: it switches and tells, unasked."""
        self.relays[n - 1] = not self.relays[n - 1]
        self.history.append(tuple(self.relays))
        self._tell(n)
