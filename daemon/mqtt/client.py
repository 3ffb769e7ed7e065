"""paho-mqtt in its own thread, handed over to the event loop.

paho's network loop (`loop_start`) runs in a thread of its own: it reads, writes,
keeps the connection alive and reconnects with its bounded exponential backoff
(`reconnect_delay_set`), so a slow or dead broker never costs the event loop a
blocking call. Its callbacks run in that thread and do nothing but hand the event to
the loop with `call_soon_threadsafe`, in order. `publish` and `subscribe` from the
loop only queue a packet and wake paho's thread (paho locks its queues), so they are
cheap on the state path.

Sessions: the first connection starts clean (nothing a sender left for an old run
is carried out now), later ones resume the session, so QoS 1 messages sent to the
daemon while it was reconnecting are delivered once it is back. MQTT 3.1.1 is the
default because Mosquitto 2.0.11 (Debian bookworm's) restores 3.1.1 sessions after a
restart of the broker but not MQTT 5 ones (tried here: `session_present` comes back
false); `protocol = "5"` adds a request's `ResponseTopic` and `CorrelationData`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

Payload = str | bytes


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    response_topic: str | None = None
    correlation_data: bytes | None = None


@dataclass(frozen=True)
class Will:
    topic: str
    payload: str
    retain: bool = True


@dataclass(frozen=True)
class ClientSettings:
    """What `MqttClient` needs, from `[mqtt]` (or a driver's options)."""

    url: str
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    session_expiry_s: int = 0
    protocol: str = "3.1.1"  # or "5"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


class MqttClient:
    """One broker connection. `on_connect` runs on the loop after every (re)connect,
    `on_message` for every message, `on_disconnect` when the connection drops."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        on_connect: Callable[[], None] = lambda: None,
        on_message: Callable[[Message], None] = lambda m: None,
        on_disconnect: Callable[[], None] = lambda: None,
        will: Will | None = None,
    ) -> None:
        self.settings = settings
        self.on_connect = on_connect
        self.on_message = on_message
        self.on_disconnect = on_disconnect
        self.connected = False
        self.stopping = False
        self.connects = 0  # how many times it connected, for health and tests
        self._loop: asyncio.AbstractEventLoop | None = None
        self.v5 = settings.protocol == "5"
        self._paho = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            clean_session=None if self.v5 else True,  # resumed after the first connect
        )
        c = self._paho
        c.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        c.max_queued_messages_set(1000)  # QoS 1 publishes kept while disconnected
        if settings.username is not None:
            c.username_pw_set(settings.username, settings.password)
        if settings.tls:
            c.tls_set_context(_tls_context(settings))
            c.tls_insecure_set(settings.tls_insecure)
        if will is not None:
            c.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        c.on_connect = self._paho_connect
        c.on_disconnect = self._paho_disconnect
        c.on_message = self._paho_message

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Connect in the background: a broker that is down is retried with backoff,
        and the daemon starts anyway."""
        self._loop = asyncio.get_running_loop()
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.settings.session_expiry_s
            self._paho.connect_async(
                self.settings.host,
                self.settings.port,
                keepalive=self.settings.keepalive_s,
                clean_start=paho.MQTT_CLEAN_START_FIRST_ONLY,
                properties=props,
            )
        else:
            self._paho.connect_async(
                self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s
            )
        self._paho.loop_start()

    async def stop(self) -> None:
        """Disconnect cleanly (the broker does not send the last will) and join paho's
        thread off the loop."""
        self.stopping = True
        self._paho.disconnect()
        await asyncio.to_thread(self._paho.loop_stop)
        self.connected = False

    # -- from the loop ----------------------------------------------------------------
    def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: int = 0,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> paho.MQTTMessageInfo:
        props = None
        if correlation_data is not None and self.v5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation_data
        return self._paho.publish(topic, payload, qos=qos, retain=retain, properties=props)

    def subscribe(self, topic_filter: str, *, qos: int = 1, no_local: bool = False) -> None:
        if self.v5:
            self._paho.subscribe(topic_filter, options=SubscribeOptions(qos=qos, noLocal=no_local))
        else:
            self._paho.subscribe(topic_filter, qos=qos)

    def unsubscribe(self, topic_filter: str) -> None:
        self._paho.unsubscribe(topic_filter)

    # -- paho's thread: hand over and return --------------------------------------------
    def _hand_over(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _paho_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt: %s refused the connection: %s", self.settings.url, reason)
            return
        if not self.v5 and self.settings.session_expiry_s > 0 and client._clean_session:
            # 3.1.1 has no "clean only the first time", and a clean session ends with
            # its connection: so clean once (what an old run left is dropped), then
            # connect again at once keeping the session, and only then say connected.
            client._clean_session = False
            client.reconnect()
            return
        self._hand_over(self._connected)

    def _connected(self) -> None:
        self.connected = True
        self.connects += 1
        log.info("mqtt: connected to %s", self.settings.url)
        self.on_connect()

    def _paho_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._hand_over(self._disconnected, str(reason))

    def _disconnected(self, reason: str) -> None:
        if self.connected and not self.stopping:
            log.warning("mqtt: lost %s (%s); reconnecting with backoff", self.settings.url, reason)
        self.connected = False
        self.on_disconnect()

    def _paho_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        message = Message(
            msg.topic,
            bytes(msg.payload),
            msg.qos,
            bool(msg.retain),
            response_topic or None,
            bytes(correlation) if correlation is not None else None,
        )
        self._hand_over(self.on_message, message)


def _tls_context(settings: ClientSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(
        cafile=str(settings.ca_file) if settings.ca_file else None,
    )
    if settings.cert_file:
        ctx.load_cert_chain(
            str(settings.cert_file), str(settings.key_file) if settings.key_file else None
        )
    if settings.tls_insecure:
        ctx.check_hostname = False
    return ctx
