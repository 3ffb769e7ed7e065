"""A broker connection as a link a bus owns: for devices that are themselves on MQTT.

The bus opens it (connect, or `LinkDown`), runs exchanges on it one at a time, and
closes and reopens it with backoff when an exchange finds it broken; so availability
and backoff work as for a serial line. An exchange here is a request: publish a
command, wait for the next message on the topic where the device answers.
Unsolicited messages (a relay switched at its own button) go to listeners.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daemon.errors import LinkDown, NoAnswer
from daemon.mqtt.client import ClientSettings, Message, MqttClient

if TYPE_CHECKING:
    from daemon.config import BusConfig

Listener = Callable[[str, bytes], None]


class MqttLink:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._client: MqttClient | None = None
        self._connected = asyncio.Event()
        self._listeners: dict[str, list[Listener]] = {}
        self._waiters: dict[str, list[asyncio.Future[bytes]]] = {}

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 1.0, bus: BusConfig | None = None) -> MqttLink:
        return cls(url, timeout)

    async def open(self) -> None:
        self._connected.clear()
        self._client = MqttClient(
            # The bus reconnects (with its own backoff); a unique id, so two links to
            # one broker never take each other's session.
            ClientSettings(url=self.url, client_id=f"gridhall-{uuid.uuid4().hex[:12]}"),
            on_connect=self._on_connect,
            on_message=self._on_message,
            on_disconnect=self._on_disconnect,
        )
        await self._client.start()
        try:
            await asyncio.wait_for(self._connected.wait(), max(self.timeout, 2.0))
        except TimeoutError:
            await self.close()
            raise LinkDown(f"cannot connect to {self.url}") from None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.stop()
        for waiters in self._waiters.values():
            for w in waiters:
                if not w.done():
                    w.set_exception(LinkDown(f"{self.url}: closed"))
        self._waiters.clear()

    @property
    def client(self) -> MqttClient:
        if self._client is None or not self._client.connected:
            raise LinkDown(f"{self.url}: not connected")
        return self._client

    def listen(self, topic: str, listener: Listener) -> None:
        """Every message on `topic` (no wildcards), across reconnects."""
        self._listeners.setdefault(topic, []).append(listener)
        if self._client is not None and self._client.connected:
            self._client.subscribe(topic, qos=1)

    async def request(self, topic: str, payload: str, reply_topic: str) -> bytes:
        """Publish `payload` on `topic`, then the next message on `reply_topic`."""
        client = self.client
        if reply_topic not in self._listeners:
            self.listen(reply_topic, lambda t, p: None)
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(reply_topic, []).append(waiter)
        try:
            client.publish(topic, payload, qos=1)
            async with asyncio.timeout(self.timeout):
                return await waiter
        except TimeoutError:
            raise NoAnswer(f"no answer on {reply_topic} in {self.timeout:.1f} s") from None
        finally:
            waiters = self._waiters.get(reply_topic, [])
            if waiter in waiters:
                waiters.remove(waiter)

    def _on_connect(self) -> None:
        for topic in self._listeners:
            self.client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_disconnect(self) -> None:
        self._connected.clear()

    def _on_message(self, msg: Message) -> None:
        for waiter in self._waiters.pop(msg.topic, []):
            if not waiter.done():
                waiter.set_result(msg.payload)
        for listener in self._listeners.get(msg.topic, []):
            listener(msg.topic, msg.payload)

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "connected": self._connected.is_set()}
