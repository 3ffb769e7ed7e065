"""A relay board whose gateway goes away: unavailable at once, back within the backoff
bound, never more than one connection attempt a second, state read back from the board."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from drivers.modbus.emulator import ModbusEmulator
from tests.support import SECOND_BOARD, relay_config, running, wait_for


class CountingListener:
    """A peer that accepts and drops at once (a flapping gateway), counting attempts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepts: list[float] = []
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts.append(time.monotonic())
        writer.close()

    async def __aenter__(self) -> CountingListener:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_gateway_loss_and_return(tmp_path: Path, modbus: ModbusEmulator) -> None:
    async with running(relay_config(tmp_path, modbus.port)) as hall:
        relay = hall.host.devices.get("relay")
        await wait_for(lambda: relay.available)
        op = hall.as_role("operator")
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/on", json={"channel": 1}, headers=op
        )
        assert r.status_code == 200

        await modbus.stop()
        # poll_ms 200 + timeout 300 ms: well inside one second.
        await wait_for(lambda: not relay.available, timeout=2.0)
        started = time.monotonic()
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/on", json={"channel": 2}, headers=op
        )
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "unavailable"
        assert time.monotonic() - started < 0.2  # at once, nothing sent
        health = (await hall.client.get("/api/v1/health")).json()
        assert health["status"] == "degraded" and health["devices"]["unavailable"] == ["relay"]

        async with CountingListener(modbus.port) as peer:
            await asyncio.sleep(4.0)
        assert peer.accepts, "the bus stopped trying"
        gaps = [b - a for a, b in zip(peer.accepts, peer.accepts[1:], strict=False)]
        assert all(g >= 0.9 for g in gaps), gaps  # never more than one attempt a second

        await modbus.start()
        back = time.monotonic()
        # reconnect_max_ms is 2 s: back within that bound plus one poll and a connect.
        await wait_for(lambda: relay.available, timeout=3.5)
        assert time.monotonic() - back < 3.5
        # The restarted board lost its coils; the state is the board's, not our memory.
        assert relay.state["channels"]["1"] is False
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/on", json={"channel": 3}, headers=op
        )
        assert r.status_code == 200
        assert await modbus.coils(1, 0, 4) == [False, False, True, False]


async def test_silent_board_is_unavailable_and_its_neighbour_is_not(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    async with running(relay_config(tmp_path, modbus.port, extra=SECOND_BOARD)) as hall:
        one, two = hall.host.devices.get("relay"), hall.host.devices.get("relay-2")
        await wait_for(lambda: one.available and two.available)
        modbus.silent_units.add(2)
        await wait_for(lambda: not two.available, timeout=2.0)
        assert one.available
        op = hall.as_role("operator")
        started = time.monotonic()
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/on", json={"channel": 4}, headers=op
        )
        assert r.status_code == 200
        # Worst case the command waits behind one probe of the dead board (300 ms).
        assert time.monotonic() - started < 1.0
        r = await hall.client.post("/api/v1/devices/relay-2/actions/on", headers=op)
        assert r.status_code == 503
        # The dead board is probed with backoff (1 s, then 2 s), not at its poll rate.
        timeouts = hall.host.devices.buses["gw"].stats.timeouts
        await asyncio.sleep(2.5)
        assert hall.host.devices.buses["gw"].stats.timeouts - timeouts <= 3
        modbus.silent_units.clear()
        await wait_for(lambda: two.available, timeout=4.0)


async def test_a_gateway_answering_garbage_faults_the_board(
    tmp_path: Path, modbus: ModbusEmulator
) -> None:
    """Bytes that are no Modbus frame (a misconfigured gateway, a wrong port): the board
    is unavailable, actions answer 503/504 with a message, and the daemon goes on."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(256):
            writer.write(b"\x00\x00\xff\xffHTTP/1.1 400 Bad Request\r\n\r\n")
        writer.close()

    async with running(relay_config(tmp_path, modbus.port)) as hall:
        relay = hall.host.devices.get("relay")
        await wait_for(lambda: relay.available)
        await modbus.stop()
        server = await asyncio.start_server(garbage, "127.0.0.1", modbus.port)
        try:
            await wait_for(lambda: not relay.available, timeout=5)
            op = hall.as_role("operator")
            r = await hall.client.post("/api/v1/devices/relay/actions/on", headers=op)
            assert r.status_code in (503, 504) and r.json()["error"]["message"]
            health = await hall.client.get("/api/v1/health")
            assert health.status_code == 200 and health.json()["status"] == "degraded"
        finally:
            server.close()
            await server.wait_closed()
        await modbus.start()
        await wait_for(lambda: relay.available, timeout=5)
