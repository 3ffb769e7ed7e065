"""`mqtt`: a relay that is itself on MQTT (Tasmota, Shelly, a PLC's gateway).

Topics and payloads are data, never code: each is a template in the device's options,
where `{channel}` is the channel (from 1) and `{index}` the same counting from 0
(Shelly's `relay/0`). A Tasmota with four relays is the default:

| option | default | what |
|---|---|---|
| `command_topic` | `cmnd/tasmota/POWER{channel}` | where a command goes |
| `state_topic` | `stat/tasmota/POWER{channel}` | where the relay says its state |
| `payload_on`, `payload_off` | `ON`, `OFF` | the commands |
| `state_on`, `state_off` | `ON`, `OFF` | the states it reports (case is ignored) |
| `payload_query` | `""` | sent on the command topic to ask the state |
| `query` | `true` | `false`: never ask; the state comes from the relay's own messages |

A Shelly 1 (gen 1) is `command_topic = "shellies/shelly1-ab12/relay/{index}/command"`,
`state_topic = "shellies/shelly1-ab12/relay/{index}"`, `payload_on = "on"`,
`payload_off = "off"`, `state_on = "on"`, `state_off = "off"`, `query = false` (it
publishes its state by itself, retained).

The device is a `power` device, so a fan or a curtain motor on such a relay is a
channel, with `sequence_on` / `sequence_off` like a Modbus relay board. Every command
waits for the relay's own state message before it answers, so the state the API and
MQTT report is the relay's. A state message the relay sends on its own (its button)
is reported at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

from pydantic import Field

from daemon.errors import BadArguments, DeviceError, ProtocolError, Refused
from daemon.kinds import ChannelArgs, Kind, NoArgs, State
from drivers.base import Driver, Options
from drivers.modbus.relay import Step
from drivers.mqtt.link import MqttLink

Template = Annotated[str, Field(min_length=1, max_length=200)]


class MqttRelayOptions(Options):
    channels: Annotated[int, Field(ge=1, le=64)] = 1
    command_topic: Template = "cmnd/tasmota/POWER{channel}"
    state_topic: Template = "stat/tasmota/POWER{channel}"
    payload_on: str = "ON"
    payload_off: str = "OFF"
    state_on: str = "ON"
    state_off: str = "OFF"
    payload_query: str = ""
    query: bool = True
    sequence: list[Step] = []

    def topic(self, template: str, channel: int) -> str:
        return template.format(channel=channel, index=channel - 1)


class MqttRelay(Driver[MqttLink]):
    name: ClassVar[str] = "mqtt"
    kind: ClassVar[Kind] = Kind.POWER
    Options = MqttRelayOptions
    link_type = MqttLink
    options: MqttRelayOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channels: dict[str, bool] = {}
        self.sequencing = False
        self._listening = False

    @classmethod
    def check_device(
        cls, device: Any, options: Any, config: Any
    ) -> Iterable[tuple[tuple[Any, ...], str]]:
        url = device.url or next((b.url for b in config.bus if b.id == device.bus), "")
        if not url.startswith(("mqtt://", "mqtts://")):
            yield (("url",) if device.url else ("bus",)), "the mqtt driver needs an mqtt:// URL"
        o: MqttRelayOptions = options
        for key in ("command_topic", "state_topic"):
            template = getattr(o, key)
            try:
                topic = o.topic(template, 1)
            except (KeyError, IndexError, ValueError):
                yield ("options", key), f"{key}: only {{channel}} and {{index}} may be used"
                continue
            if any(c in topic for c in "+#"):
                yield ("options", key), f"{key}: no wildcards in a topic"
        for step in o.sequence:
            if step.channel > o.channels:
                yield ("options", "sequence"), f"sequence names channel {step.channel}"

    def _state(self) -> State:
        return {"channels": dict(self.channels), "sequencing": self.sequencing}

    def _parse(self, channel: int, payload: bytes) -> bool:
        text = payload.decode(errors="replace").strip().lower()
        if text == self.options.state_on.lower():
            return True
        if text == self.options.state_off.lower():
            return False
        raise ProtocolError(f"channel {channel}: unexpected state {text[:40]!r}")

    def _listen(self) -> None:
        """Follow what the relay says on its own; once, the link keeps it across
        reconnects."""
        if self._listening:
            return
        self._listening = True
        for channel in range(1, self.options.channels + 1):
            topic = self.options.topic(self.options.state_topic, channel)

            def heard(t: str, payload: bytes, channel: int = channel) -> None:
                try:
                    on = self._parse(channel, payload)
                except ProtocolError:
                    return
                if self.channels.get(str(channel)) != on:
                    self.channels[str(channel)] = on
                    self.report(self._state())

            self.io.bus.link.listen(topic, heard)

    async def _ask(self, channel: int, payload: str) -> bool:
        o = self.options
        command, state = o.topic(o.command_topic, channel), o.topic(o.state_topic, channel)
        reply = await self.io.exchange(lambda link: link.request(command, payload, state))
        on = self._parse(channel, reply)
        self.channels[str(channel)] = on
        return on

    async def read_state(self) -> State:
        self._listen()
        if self.options.query:
            for channel in range(1, self.options.channels + 1):
                await self._ask(channel, self.options.payload_query)
        elif len(self.channels) < self.options.channels:
            raise DeviceError("no state heard from the relay yet (query = false: waiting)")
        return self._state()

    async def _switch(self, channels: list[int], on: bool) -> None:
        payload = self.options.payload_on if on else self.options.payload_off
        for channel in channels:
            if await self._ask(channel, payload) != on:
                raise DeviceError(f"channel {channel} did not switch {'on' if on else 'off'}")

    def _check_channel(self, args: ChannelArgs) -> list[int]:
        if self.sequencing:
            raise Refused("a power sequence is running")
        if args.channel is None:
            return list(range(1, self.options.channels + 1))
        if args.channel > self.options.channels:
            raise BadArguments(f"channel {args.channel}: the relay has {self.options.channels}")
        return [args.channel]

    async def do_on(self, args: ChannelArgs) -> State:
        await self._switch(self._check_channel(args), True)
        return self._state()

    async def do_off(self, args: ChannelArgs) -> State:
        await self._switch(self._check_channel(args), False)
        return self._state()

    def _steps(self) -> list[Step]:
        o = self.options
        return o.sequence or [Step(channel=n) for n in range(1, o.channels + 1)]

    async def do_sequence_on(self, args: NoArgs) -> State:
        return await self._sequence(self._steps(), True)

    async def do_sequence_off(self, args: NoArgs) -> State:
        return await self._sequence(list(reversed(self._steps())), False)

    async def _sequence(self, steps: list[Step], on: bool) -> State:
        if self.sequencing:
            raise Refused("a power sequence is running")
        self.sequencing = True
        self.report(self._state())
        try:
            for i, step in enumerate(steps):
                await self._switch([step.channel], on)
                self.report(self._state())
                if step.delay_ms and i < len(steps) - 1:
                    await asyncio.sleep(step.delay_ms / 1000)
        finally:
            self.sequencing = False
        return self._state()
