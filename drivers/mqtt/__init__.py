"""Equipment that is itself on MQTT: Tasmota- or Shelly-style relays, by templates."""

from typing import Any

from drivers.mqtt.driver import MqttRelay
from drivers.mqtt.emulator import TasmotaEmulator

DRIVERS: list[Any] = [MqttRelay]
EMULATORS: list[Any] = [TasmotaEmulator]
