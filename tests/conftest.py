"""Fixtures live in tests/support.py, beside the helpers they use."""

from tests.measures_support import ticket_hall  # noqa: F401
from tests.mqtt_support import broker, recorders  # noqa: F401
from tests.seats_support import draco  # noqa: F401
from tests.support import hall, modbus, modbus_thread, processes  # noqa: F401
