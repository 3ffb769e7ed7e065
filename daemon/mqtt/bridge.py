"""The MQTT bridge: the hall's state out, commands in, discovery kept right.

Out: every device's state (retained JSON) and availability (retained `online` /
`offline`) as they change on the event bus, and the bridge's own state (retained
`online`, last will `offline`). After every (re)connect, and whenever Home Assistant
says `online` on `homeassistant/status`, everything is published again: discovery,
availability, state. Discovery configs this gridhall published for entities no longer
in the config are read back (they are retained) and cleared with an empty payload.

Seats: each seat's state (retained JSON) on `<base>/seats/<id>/state` as it changes,
its commands (`recall`, `route`, `push`) on `<base>/seats/<id>/set/<command>`, answered
on `<base>/seats/<id>/response/<command>`, and Home Assistant discovery of its layouts.

In: `<base>/<device>/set/<action>` (or `<base>/<device>/set` with `"action"` in the
payload), JSON arguments. Each command takes `Host.act`, the path of every action,
with cause `mqtt`; its result goes to `<base>/<device>/response/<action>` with the
request's `transaction`, and, for an MQTT 5 request with a response topic, there too
with the request's correlation data. A command whose transaction was already carried
out (a QoS 1 redelivery) is answered again, not carried out again. Commands for one
device (or seat) run in the order they came; devices do not wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from daemon.errors import BadArguments, GridhallError
from daemon.events import Event
from daemon.mqtt import discovery
from daemon.mqtt.client import ClientSettings, Message, MqttClient, Payload, Will
from daemon.mqtt.topics import Command, Topics
from daemon.pluginhost import await_me_maybe

if TYPE_CHECKING:
    from daemon.config import MqttConfig
    from daemon.host import Host

log = logging.getLogger(__name__)

WHO = "mqtt"
RESERVED = ("transaction", "action")  # payload keys that are not the action's arguments
REMEMBERED = 1000  # transactions kept to answer redeliveries without acting again

Handler = Callable[[str, bytes], Any]
Job = Callable[[], Awaitable[None]]


def settings_from(config: MqttConfig, resolve: Callable[[str], Any]) -> ClientSettings:
    return ClientSettings(
        url=config.url,
        client_id=config.client_id or f"gridhall-{config.base_topic.replace('/', '-')}",
        username=config.username,
        password=config.password,
        ca_file=resolve(config.ca_file) if config.ca_file else None,
        cert_file=resolve(config.cert_file) if config.cert_file else None,
        key_file=resolve(config.key_file) if config.key_file else None,
        tls_insecure=config.tls_insecure,
        keepalive_s=config.keepalive_s,
        reconnect_min_s=config.reconnect_min_s,
        reconnect_max_s=max(config.reconnect_min_s, config.reconnect_max_s),
        session_expiry_s=config.session_expiry_s,
        protocol=config.protocol,
    )


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


class PluginMqtt:
    """What a plugin is given in `gridhall_mqtt_connected`: publish anywhere the broker
    lets it, subscribe to topics of its own. Subscriptions last for the connection:
    the hook is called again after every reconnect."""

    def __init__(self, bridge: MqttBridge) -> None:
        self._bridge = bridge

    @property
    def base_topic(self) -> str:
        return self._bridge.topics.base

    def publish(
        self,
        topic: str,
        payload: Payload | dict[str, Any] | list[Any],
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> None:
        data = payload if isinstance(payload, str | bytes) else _json(payload)
        self._bridge.client.publish(topic, data, qos=qos, retain=retain)

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None:
        """`handler(topic, payload)` for each message; it may be `async def`."""
        self._bridge.plugin_handlers.append((topic_filter, handler))
        self._bridge.client.subscribe(topic_filter, qos=qos)


class MqttBridge:
    def __init__(self, host: Host) -> None:
        config = host.config.mqtt
        assert config is not None
        self.host = host
        self.topics = Topics(config.base_topic, config.discovery_prefix)
        self.client = MqttClient(
            settings_from(config, host.config.resolve),
            on_connect=self._on_connect,
            on_message=self._on_message,
            will=Will(self.topics.bridge_state, "offline"),
        )
        if any(device.id == "bridge" for device in host.devices):
            log.error("mqtt: a device named 'bridge' shares <base>/bridge/state; rename it")
        self.plugin_handlers: list[tuple[str, Handler]] = []
        self.commands_done = 0
        self._sent_discovery: dict[str, str] = {}  # topic -> payload sent this connection
        self._queues: dict[str, asyncio.Queue[Job]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._done: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        self._forwarder: asyncio.Task[None] | None = None
        self._forwarding = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        self._forwarder = asyncio.create_task(self._forward_events(), name="mqtt-events")
        await self._forwarding.wait()
        await self.client.start()

    async def stop(self) -> None:
        """Say `offline` ourselves (a clean disconnect sends no last will), then go."""
        if self.client.connected:
            info = self.client.publish(self.topics.bridge_state, "offline", qos=1, retain=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(info.wait_for_publish, 1.0)
        for task in [*self._workers, *self._tasks]:
            task.cancel()
        if self._forwarder:
            self._forwarder.cancel()
        await asyncio.gather(*self._workers, *self._tasks, return_exceptions=True)
        if self._forwarder:
            with contextlib.suppress(asyncio.CancelledError):
                await self._forwarder
        await self.client.stop()

    # -- out ----------------------------------------------------------------------------
    async def _forward_events(self) -> None:
        await self.host.events.observe(self._forward, self._forwarding)

    def _forward(self, event: Event) -> None:
        if not self.client.connected:
            return  # everything is published again on connect; no stale backlog
        if event.type == "state":
            self._publish_state(event.source, event.data)
        elif event.type == "availability":
            self._publish_availability(event.source, bool(event.data.get("available")))
            if event.data.get("available"):
                # What a device told on its first read (an Extron's size) may change
                # its entities: send them again if they did.
                self._publish_discovery(only=event.source)
        elif event.type == "seats.state":
            self._publish_seat(event.data["seat"], event.data["state"])
        elif event.type == "seats.layouts":
            self._publish_seat_discovery()
        elif event.type == "lagged":
            self.publish_all()

    def _publish_state(self, device: str, state: dict[str, Any]) -> None:
        self.client.publish(self.topics.state(device), _json(state), qos=1, retain=True)

    def _publish_seat(self, seat: str, state: dict[str, Any]) -> None:
        self.client.publish(self.topics.seat_state(seat), _json(state), qos=1, retain=True)

    def _publish_availability(self, device: str, available: bool) -> None:
        payload = "online" if available else "offline"
        self.client.publish(self.topics.availability(device), payload, qos=1, retain=True)

    def _publish_discovery(self, only: str | None = None) -> None:
        config = self.host.config
        for device in self.host.devices:
            if only is not None and device.id != only:
                continue
            found = discovery.entities(
                self.topics,
                device.config,
                config.driver_options.get(device.id),
                device.driver,
                device.state,
            )
            self._send_discovery(discovery.messages(found, self.topics))
        if only is None:
            scenes = {sid: s.name or sid for sid, s in self.host.scenes.scenes.items()}
            found = discovery.scene_entities(self.topics, scenes)
            self._send_discovery(discovery.messages(found, self.topics))
            self._publish_seat_discovery()

    def _publish_seat_discovery(self) -> None:
        """The seats' entities; those of a layout deleted meanwhile are removed (an
        empty retained config) at once, not at the next connection."""
        seats = self.host.seats
        configs: dict[str, dict[str, Any]] = {}
        for seat in seats.seats.values():
            layouts = [(lay.id, lay.name or lay.id) for lay in seats.layouts.of(seat.id)]
            found = discovery.seat_entities(
                self.topics, seat.id, seat.name or seat.id, seat.matrix, layouts
            )
            configs |= discovery.messages(found, self.topics)
        for topic in [t for t in self._sent_discovery if discovery.is_seat(t) and t not in configs]:
            del self._sent_discovery[topic]
            self.client.publish(topic, b"", qos=1, retain=True)
        self._send_discovery(configs)

    def _send_discovery(self, configs: dict[str, dict[str, Any]]) -> None:
        for topic, payload in configs.items():
            text = _json(payload)
            if self._sent_discovery.get(topic) != text:
                self._sent_discovery[topic] = text
                self.client.publish(topic, text, qos=1, retain=True)

    def publish_all(self, *, rediscover: bool = True) -> None:
        """Discovery, then availability and state of every device, the seats' state,
        then the bridge."""
        if rediscover:
            self._sent_discovery.clear()
        self._publish_discovery()
        for device in self.host.devices:
            self._publish_availability(device.id, device.available)
            if device.state:
                self._publish_state(device.id, device.state)
        for seat in self.host.seats.seats:
            self._publish_seat(seat, self.host.seats.state(seat))
        self.client.publish(self.topics.bridge_state, "online", qos=1, retain=True)

    def _on_connect(self) -> None:
        t = self.topics
        for topic_filter in (*t.command_filters, t.scene_filter, t.seat_filter):
            self.client.subscribe(topic_filter, qos=1)
        self.client.subscribe(t.ha_status, qos=1)
        # Our own retained configs come back once; those not sent by this run belong
        # to entities that left the config. noLocal: not our own publishes again.
        self.client.subscribe(t.discovery_filter, qos=1, no_local=True)
        self.publish_all()
        self.plugin_handlers.clear()
        self._spawn(self._plugins_connected())

    async def _plugins_connected(self) -> None:
        try:
            await self.host.plugins.mqtt_connected(PluginMqtt(self), self.host)
        except Exception:
            log.exception("mqtt: a plugin failed in gridhall_mqtt_connected")

    # -- in -----------------------------------------------------------------------------
    def _on_message(self, msg: Message) -> None:
        t = self.topics
        if (command := t.parse_command(msg.topic)) is not None:
            self._queue_for(command.device).put_nowait(lambda: self._command(msg))
        elif (scene_id := t.parse_scene_run(msg.topic)) is not None:
            self._spawn(self._run_scene(scene_id, msg))
        elif (seat := t.parse_seat_command(msg.topic)) is not None:
            self._queue_for(f"seats/{seat.device}").put_nowait(lambda: self._seat_command(msg))
        elif msg.topic == t.ha_status:
            if msg.payload.strip().lower() == b"online":
                log.info("mqtt: Home Assistant is online; sending discovery again")
                self.publish_all()
        elif t.is_discovery(msg.topic):
            if msg.payload and msg.topic not in self._sent_discovery:
                log.info("mqtt: removing discovery for a gone entity: %s", msg.topic)
                self.client.publish(msg.topic, b"", qos=1, retain=True)
        else:
            for topic_filter, handler in list(self.plugin_handlers):
                if _matches(topic_filter, msg.topic):
                    self._spawn(self._call_plugin(handler, msg))

    async def _call_plugin(self, handler: Handler, msg: Message) -> None:
        try:
            await await_me_maybe(handler(msg.topic, msg.payload))
        except Exception:
            log.exception("mqtt: a plugin's handler failed on %s", msg.topic)

    def _queue_for(self, key: str) -> asyncio.Queue[Job]:
        """The commands of one device (or seat), run one after another."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._workers.append(asyncio.create_task(self._work(queue), name=f"mqtt:{key}"))
        return queue

    async def _work(self, queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await job()
            except Exception:
                log.exception("mqtt: a command failed")

    async def _command(self, msg: Message) -> None:
        command = self.topics.parse_command(msg.topic)
        assert command is not None
        transaction: Any = None
        action = command.action
        try:
            body = json.loads(msg.payload) if msg.payload.strip() else {}
            if not isinstance(body, dict):
                raise BadArguments("the payload must be a JSON object")
            transaction = body.get("transaction")
            action = action or body.get("action")
            if not isinstance(action, str) or not action:
                raise BadArguments("no action: use <base>/<device>/set/<action>, or 'action'")
            args = {k: v for k, v in body.items() if k not in RESERVED}
            key = self._key(command, action, transaction, msg)
            if key is not None and key in self._done:
                log.info("mqtt: %s already carried out; answering again", key)
                if (again := self._done[key]) is not None:
                    self._respond(command.device, action, again, msg)
                return
            if key is not None:
                self._remember(key, None)
            state = await self.host.act(command.device, action, args, who=WHO, cause="mqtt")
            self.commands_done += 1
            result: dict[str, Any] = {"status": "ok", "data": state}
        except json.JSONDecodeError as exc:
            result = _error(BadArguments(f"the payload is not JSON: {exc.msg}"))
        except GridhallError as exc:
            result = _error(exc)
        except Exception as exc:  # a bug must still answer, or the sender waits forever
            log.exception("mqtt: command on %s raised", msg.topic)
            result = _error(GridhallError(f"{type(exc).__name__}: {exc}"))
        if transaction is not None:
            result["transaction"] = transaction
        text = _json(result)
        key = self._key(command, action or "", transaction, msg)
        if key is not None and key in self._done:
            self._remember(key, text)
        self._respond(command.device, action or "unknown", text, msg)

    async def _run_scene(self, scene_id: str, msg: Message) -> None:
        """`<base>/scenes/<id>/run`: start the scene; the answer (started, or why not)
        goes to `<base>/scenes/<id>/response` and to an MQTT 5 response topic. A
        repeated `transaction` starts it once."""

        async def run(args: dict[str, Any]) -> Any:
            return (await self.host.run_scene(scene_id, who=WHO, cause="mqtt")).to_dict()

        await self._answer_once(
            f"scenes/{scene_id}", "run", msg, run, self.topics.scene_response(scene_id)
        )

    async def _seat_command(self, msg: Message) -> None:
        """`<base>/seats/<id>/set/<command>`: the seat's `recall`, `route` or `push`,
        with the rights of the `mqtt` source; answered on its response topic."""
        seat = self.topics.parse_seat_command(msg.topic)
        assert seat is not None and seat.action is not None
        name = seat.action

        async def command(args: dict[str, Any]) -> Any:
            return await self.host.seats.command(seat.device, name, args, who=WHO, role=None)

        response = self.topics.seat_response(seat.device, name)
        await self._answer_once(f"seats/{seat.device}", name, msg, command, response)

    async def _answer_once(
        self,
        scope: str,
        action: str,
        msg: Message,
        do: Callable[[dict[str, Any]], Awaitable[Any]],
        answer_topic: str,
    ) -> None:
        """Run `do(arguments)` for a request and answer it on `answer_topic` (and an
        MQTT 5 response topic); a request whose `transaction` was done already is
        answered again, not done again."""
        transaction: Any = None
        key: tuple[str, str] | None = None
        try:
            body = json.loads(msg.payload) if msg.payload.strip() else {}
            if not isinstance(body, dict):
                raise BadArguments("the payload must be a JSON object")
            transaction = body.get("transaction")
            key = self._key(Command(scope, None), action, transaction, msg)
            if key is not None and key in self._done:
                if (again := self._done[key]) is not None:
                    self._send_answer(answer_topic, again, msg)
                return
            if key is not None:
                self._remember(key, None)
            data = await do({k: v for k, v in body.items() if k not in RESERVED})
            result: dict[str, Any] = {"status": "ok", "data": data}
        except json.JSONDecodeError as exc:
            result = _error(BadArguments(f"the payload is not JSON: {exc.msg}"))
        except GridhallError as exc:
            result = _error(exc)
        except Exception as exc:  # a bug must still answer
            log.exception("mqtt: %s %s raised", scope, action)
            result = _error(GridhallError(f"{type(exc).__name__}: {exc}"))
        if transaction is not None:
            result["transaction"] = transaction
        text = _json(result)
        if key is not None:
            self._remember(key, text)
        self._send_answer(answer_topic, text, msg)

    def _send_answer(self, topic: str, text: str, msg: Message) -> None:
        self.client.publish(topic, text, qos=1)
        if msg.response_topic:
            self.client.publish(
                msg.response_topic, text, qos=1, correlation_data=msg.correlation_data
            )

    @staticmethod
    def _key(
        command: Command, action: str, transaction: Any, msg: Message
    ) -> tuple[str, str] | None:
        ident = transaction if transaction is not None else msg.correlation_data
        if ident is None:
            return None
        return (f"{command.device}/{action}", repr(ident))

    def _remember(self, key: tuple[str, str], response: str | None) -> None:
        self._done[key] = response
        self._done.move_to_end(key)
        while len(self._done) > REMEMBERED:
            self._done.popitem(last=False)

    def _respond(self, device: str, action: str, text: str, msg: Message) -> None:
        topic = self.topics.response(device, action if _safe(action) else "unknown")
        self._send_answer(topic, text, msg)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _error(exc: GridhallError) -> dict[str, Any]:
    """The API's error shape, under the status: one vocabulary for both."""
    return {"status": "error", "error": {"code": exc.code, "message": exc.message}}


def _safe(action: str) -> bool:
    return bool(action) and all(c.isalnum() or c == "_" for c in action)


def _matches(topic_filter: str, topic: str) -> bool:
    """MQTT's own filter matching (`+` one level, `#` the rest)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)
