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

As a `power` device, a fan or a curtain motor on such a relay is a channel, with
`sequence_on` / `sequence_off` like a Modbus relay board; it is also a relay board a
`relay-curtain` can drive (`switch`, `add_guard`: the guards are asked on every write
that switches a channel on, whoever asks, so both channels of a curtain's pair are never
on together). Every command waits for the relay's own state message before it
answers, so the state the API and MQTT report is the relay's. A state message the relay
sends on its own (its button) is reported at once.

As a `fan` device (`channels = 1`), `on`/`off` switch channel 1 through the same
templates, and the state is `{"on", "percent"}`. A fan with speed steps (a Tasmota
iFan: `speed_topic = "cmnd/ifan/FanSpeed"`, `speed_state_topic = "stat/ifan/RESULT"`)
gets `set_speed` through `speed_topic` with `speed_payload` (`{speed}`: the percent
mapped to 1..`speed_steps`, rounding up so a low percent still turns), answered on
`speed_state_topic` (the number alone, or JSON such as `{"FanSpeed": 2}`), then channel
1 on. Without `speed_topic` the fan is only on or off: `set_speed` 100 is `on`, 0 is
`off`, anything else is refused (422), never silently rounded. Until a speed has been
set, a running fan is reported at 100 %.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

from pydantic import Field

from daemon.errors import BadArguments, DeviceError, ProtocolError
from daemon.kinds import Kind, SpeedArgs, State
from drivers.base import Driver, Options
from drivers.mqtt.link import MqttLink
from drivers.relays import RelayChannels, Step

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
    # A fan's speed steps (kind fan only): none configured is an on/off fan.
    speed_topic: Template | None = None
    speed_state_topic: Template | None = None
    speed_payload: str = "{speed}"
    speed_steps: Annotated[int, Field(ge=1, le=100)] = 3

    def topic(self, template: str, channel: int) -> str:
        return template.format(channel=channel, index=channel - 1)


class MqttRelay(RelayChannels, Driver[MqttLink]):
    name: ClassVar[str] = "mqtt"
    kind: ClassVar[Kind] = Kind.POWER
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.POWER, Kind.FAN})
    Options = MqttRelayOptions
    link_type = MqttLink
    options: MqttRelayOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_relays()
        self._listening = False
        self._speed: int | None = None  # a fan's last step set; unknown until then

    @property
    def is_fan(self) -> bool:
        return self.config.kind is Kind.FAN

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
        speed = ("speed_topic", "speed_state_topic")
        if device.kind is Kind.FAN:
            if o.channels != 1:
                yield ("options", "channels"), "a fan is one relay: channels = 1"
            if o.sequence:
                yield ("options", "sequence"), "a fan has no power sequence"
            if (o.speed_topic is None) != (o.speed_state_topic is None):
                yield ("options",), "speed_topic and speed_state_topic go together"
            try:
                o.speed_payload.format(speed=1)
            except (KeyError, IndexError, ValueError):
                yield ("options", "speed_payload"), "speed_payload: only {speed} may be used"
        else:
            for key in speed:
                if getattr(o, key) is not None:
                    yield ("options", key), f"{key}: only a fan has a speed"
        for key in speed:
            template = getattr(o, key)
            if template is not None and any(c in template for c in "+#{}"):
                yield ("options", key), f"{key}: a plain topic, no wildcards or templates"

    def _state(self) -> State:
        if self.is_fan:
            on = bool(self.channels.get("1"))
            steps, speed = self.options.speed_steps, self._speed
            percent = 100 if speed is None or speed >= steps else round(speed * 100 / steps)
            return {"on": on, "percent": percent if on else 0}
        return super()._state()

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

    async def _write_channels(self, channels: list[int], on: bool) -> None:
        payload = self.options.payload_on if on else self.options.payload_off
        for channel in channels:
            if await self._ask(channel, payload) != on:
                raise DeviceError(f"channel {channel} did not switch {'on' if on else 'off'}")

    async def do_set_speed(self, args: SpeedArgs) -> State:
        o = self.options
        if args.percent == 0:
            await self._write([1], False)
            return self._state()
        if o.speed_topic is None or o.speed_state_topic is None:
            if args.percent != 100:
                raise BadArguments("this fan has no speed control: only 0 (off) and 100 (on)")
        else:
            step = math.ceil(args.percent * o.speed_steps / 100)
            payload = o.speed_payload.format(speed=step)
            topic, reply_topic = o.speed_topic, o.speed_state_topic
            reply = await self.io.exchange(lambda link: link.request(topic, payload, reply_topic))
            if self._parse_speed(reply) != step:
                raise DeviceError(f"the fan did not take speed {step}")
            self._speed = step
        await self._write([1], True)
        return self._state()

    @staticmethod
    def _parse_speed(payload: bytes) -> int:
        """The speed a fan answers: `2`, or a JSON object with it (`{"FanSpeed": 2}`)."""
        text = payload.decode(errors="replace").strip()
        try:
            value: Any = json.loads(text)
        except ValueError:
            raise ProtocolError(f"unexpected speed {text[:40]!r}") from None
        if isinstance(value, dict):
            value = next((v for v in value.values() if isinstance(v, int)), None)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(f"unexpected speed {text[:40]!r}")
        return value
