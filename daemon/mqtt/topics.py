"""Every topic gridhall reads or writes, in one place (CONTRACT.md, "MQTT").

Pure: names in, names out. Commands are accepted only under the base topic, so a
command topic is parsed here and anything else is not a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEVICE_ID = re.compile(r"^[a-z0-9_-]+$")
ACTION = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Command:
    """A message on `<base>/<device>/set/<action>` (action in the topic) or on
    `<base>/<device>/set` (action named by the payload's `action` key); for a seat's
    `<base>/seats/<id>/set/<command>`, `device` is the seat."""

    device: str
    action: str | None


@dataclass(frozen=True)
class Topics:
    base: str
    discovery_prefix: str = "homeassistant"

    @property
    def node_id(self) -> str:
        """Home Assistant's `node_id`: the base topic with what it does not allow
        replaced, so two gridhalls on one broker (different base topics) never clash."""
        return re.sub(r"[^a-zA-Z0-9_-]", "_", self.base)

    # -- out -------------------------------------------------------------------------
    @property
    def bridge_state(self) -> str:
        return f"{self.base}/bridge/state"

    def state(self, device: str) -> str:
        return f"{self.base}/{device}/state"

    def availability(self, device: str) -> str:
        return f"{self.base}/{device}/availability"

    def response(self, device: str, action: str) -> str:
        return f"{self.base}/{device}/response/{action}"

    def command(self, device: str, action: str | None = None) -> str:
        return f"{self.base}/{device}/set" + (f"/{action}" if action else "")

    def scene_run(self, scene_id: str) -> str:
        return f"{self.base}/scenes/{scene_id}/run"

    def scene_response(self, scene_id: str) -> str:
        return f"{self.base}/scenes/{scene_id}/response"

    def seat_state(self, seat: str) -> str:
        return f"{self.base}/seats/{seat}/state"

    def seat_command(self, seat: str, command: str) -> str:
        return f"{self.base}/seats/{seat}/set/{command}"

    def seat_response(self, seat: str, command: str) -> str:
        return f"{self.base}/seats/{seat}/response/{command}"

    def discovery(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_id}/{object_id}/config"

    # -- in --------------------------------------------------------------------------
    @property
    def command_filters(self) -> tuple[str, str]:
        return f"{self.base}/+/set", f"{self.base}/+/set/+"

    @property
    def scene_filter(self) -> str:
        return f"{self.base}/scenes/+/run"

    def parse_scene_run(self, topic: str) -> str | None:
        """The scene id of `<base>/scenes/<id>/run`, else None."""
        parts = self._under("scenes", topic)
        if len(parts) == 2 and parts[1] == "run" and DEVICE_ID.match(parts[0]):
            return parts[0]
        return None

    @property
    def seat_filter(self) -> str:
        return f"{self.base}/seats/+/set/+"

    def parse_seat_command(self, topic: str) -> Command | None:
        """`<base>/seats/<id>/set/<command>` as (seat id, command), else None."""
        parts = self._under("seats", topic)
        if len(parts) == 3 and parts[1] == "set" and DEVICE_ID.match(parts[0]):
            return Command(parts[0], parts[2]) if ACTION.match(parts[2]) else None
        return None

    def _under(self, folder: str, topic: str) -> list[str]:
        prefix = f"{self.base}/{folder}/"
        return topic[len(prefix) :].split("/") if topic.startswith(prefix) else []

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    @property
    def discovery_filter(self) -> str:
        """Our own discovery configs, read back to find entities that left the config."""
        return f"{self.discovery_prefix}/+/{self.node_id}/+/config"

    def parse_command(self, topic: str) -> Command | None:
        """The command a topic names, or None when it is not a command topic under the
        base topic (a wildcard in a device or action name never gets this far: MQTT
        forbids them in a published topic)."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) not in (2, 3) or parts[1] != "set" or not DEVICE_ID.match(parts[0]):
            return None
        if len(parts) == 3:
            return Command(parts[0], parts[2]) if ACTION.match(parts[2]) else None
        return Command(parts[0], None)

    def is_discovery(self, topic: str) -> bool:
        prefix = self.discovery_prefix + "/"
        parts = topic[len(prefix) :].split("/") if topic.startswith(prefix) else []
        return len(parts) == 4 and parts[1] == self.node_id and parts[3] == "config"
