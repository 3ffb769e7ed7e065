"""A Modbus link: one pymodbus client, owned by one bus.

`tcp://` is Modbus TCP; `socket://` is RTU framing over a serial-to-TCP converter; a
device path (or `rfc2217://`) is RTU on a serial line. pymodbus's own reconnect and
retries are off: the bus owns reconnects and backoff. Failures are mapped to the typed
errors the bus understands.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from daemon.errors import DeviceRejected, LinkDown, NoAnswer, ProtocolError

if TYPE_CHECKING:
    from daemon.config import BusConfig

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


ClientFactory = Callable[[], AsyncModbusTcpClient | AsyncModbusSerialClient]


class ModbusLink:
    def __init__(self, factory: ClientFactory, url: str) -> None:
        # pymodbus clients bind to the running loop when built, and a fresh one per
        # connection leaves no state behind from a broken one: build it in open().
        self._factory = factory
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.url = url

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 1.0, bus: BusConfig | None = None
    ) -> ModbusLink:
        parts = urlsplit(url)
        common: dict[str, Any] = {"timeout": timeout, "retries": 0, "reconnect_delay": 0}
        factory: ClientFactory
        if parts.scheme in ("tcp", "socket"):
            framer = FramerType.SOCKET if parts.scheme == "tcp" else FramerType.RTU
            factory = partial(
                AsyncModbusTcpClient,
                parts.hostname or "127.0.0.1",
                port=parts.port or 502,
                framer=framer,
                **common,
            )
        else:
            serial = bus.serial_settings() if bus is not None else {}
            factory = partial(
                AsyncModbusSerialClient, url, framer=FramerType.RTU, **serial, **common
            )
        return cls(factory, url)

    @property
    def client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            raise LinkDown(f"{self.url}: not connected")
        return self._client

    async def open(self) -> None:
        self._client = self._factory()
        if not await self._client.connect():
            raise LinkDown(f"cannot connect to {self.url}")

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _call(self, what: str, request: Callable[[], Any]) -> Any:
        try:
            # pymodbus raises some errors when the request is built, not awaited.
            response = await request()
        except ConnectionException as exc:
            raise LinkDown(f"{self.url}: {what}: not connected") from exc
        except ModbusIOException as exc:
            raise NoAnswer(f"{self.url}: {what}: no answer") from exc
        except ModbusException as exc:
            raise ProtocolError(f"{self.url}: {what}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise DeviceRejected(f"{what}: Modbus exception {code} ({name})")
        return response

    async def read_coils(self, unit: int, address: int, count: int) -> list[bool]:
        r = await self._call(
            f"read coils {address}+{count}",
            lambda: self.client.read_coils(address, count=count, device_id=unit),
        )
        bits = list(r.bits[:count])
        if len(bits) != count:
            raise ProtocolError(f"read coils: asked {count}, got {len(bits)}")
        return bits

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self._call(
            f"write coil {address}", lambda: self.client.write_coil(address, value, device_id=unit)
        )

    async def write_coils(self, unit: int, address: int, values: list[bool]) -> None:
        await self._call(
            f"write coils {address}+{len(values)}",
            lambda: self.client.write_coils(address, values, device_id=unit),
        )

    async def read_holding(self, unit: int, address: int, count: int) -> list[int]:
        r = await self._call(
            f"read registers {address}+{count}",
            lambda: self.client.read_holding_registers(address, count=count, device_id=unit),
        )
        regs = list(r.registers)
        if len(regs) != count:
            raise ProtocolError(f"read registers: asked {count}, got {len(regs)}")
        return regs

    async def write_register(self, unit: int, address: int, value: int) -> None:
        await self._call(
            f"write register {address}",
            lambda: self.client.write_register(address, value, device_id=unit),
        )
