"""The bus owner, on a real Modbus TCP line to pymodbus's server.

Two relay boards share one gateway; one of them goes silent. Commands go ahead of
polls, frames keep their gap, and the dead board never stalls the live one.
"""

from __future__ import annotations

import asyncio
import time

from daemon.bus import Backoff, Bus, Priority
from daemon.errors import LinkDown, NoAnswer
from drivers.modbus.emulator import ModbusEmulator
from drivers.modbus.link import ModbusLink


def make_bus(port: int, gap_ms: int = 0, timeout: float = 0.2) -> Bus[ModbusLink]:
    link = ModbusLink.from_url(f"tcp://127.0.0.1:{port}", timeout=timeout)
    return Bus("gw", link, gap_ms=gap_ms, timeout_s=timeout, backoff=Backoff(1.0, 2.0))


async def test_commands_go_ahead_of_queued_polls(modbus: ModbusEmulator) -> None:
    bus = make_bus(modbus.port)
    bus.start()
    await asyncio.wait_for(bus.wait_up(), 5)
    order: list[str] = []

    def job(name: str):  # noqa: ANN202
        async def run(link: ModbusLink) -> None:
            await link.read_coils(1, 0, 1)
            order.append(name)

        return run

    # The first poll occupies the line; five more polls and then a command queue up.
    polls = [asyncio.create_task(bus.exchange(job(f"poll{i}"), Priority.POLL)) for i in range(6)]
    await asyncio.sleep(0)
    command = asyncio.create_task(bus.exchange(job("command"), Priority.COMMAND))
    await asyncio.gather(*polls, command)
    await bus.stop()
    assert order.index("command") <= 1, order


async def test_gap_between_frames(modbus: ModbusEmulator) -> None:
    bus = make_bus(modbus.port, gap_ms=40)
    bus.start()
    await asyncio.wait_for(bus.wait_up(), 5)
    starts: list[float] = []

    async def stamp(link: ModbusLink) -> None:
        starts.append(time.monotonic())
        await link.read_coils(1, 0, 1)

    await asyncio.gather(*(bus.exchange(stamp) for _ in range(5)))
    await bus.stop()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.040, gaps


async def test_silent_unit_times_out_and_the_other_goes_on(modbus: ModbusEmulator) -> None:
    bus = make_bus(modbus.port, timeout=0.2)
    bus.start()
    await asyncio.wait_for(bus.wait_up(), 5)
    modbus.silent_units.add(2)
    try:
        await bus.exchange(lambda link: link.read_coils(2, 0, 1))
    except NoAnswer:
        pass
    else:
        raise AssertionError("a silent unit must time out")
    # The link stays up and unit 1 answers at once.
    assert bus.up
    assert await bus.exchange(lambda link: link.read_coils(1, 0, 2)) == [False, False]
    await bus.stop()


async def test_down_bus_fails_at_once_and_reconnects_with_backoff(modbus: ModbusEmulator) -> None:
    bus = make_bus(modbus.port)
    bus.start()
    await asyncio.wait_for(bus.wait_up(), 5)
    await modbus.stop()
    # The next exchanges find the connection closed (or, racing the FIN, get no answer).
    for _ in range(20):
        try:
            await bus.exchange(lambda link: link.read_coils(1, 0, 1))
        except LinkDown:
            break
        except NoAnswer:
            continue
    assert not bus.up
    started = time.monotonic()
    try:
        await bus.exchange(lambda link: link.read_coils(1, 0, 1))
        raise AssertionError("a down bus must refuse")
    except LinkDown:
        assert time.monotonic() - started < 0.05
    attempts_before = bus.stats.connect_attempts
    await asyncio.sleep(3.2)
    # Backoff 1 s then 2 s (the bound): at most 3 attempts in 3.2 s, never a tight loop.
    assert 1 <= bus.stats.connect_attempts - attempts_before <= 3
    await modbus.start()
    await asyncio.wait_for(bus.wait_up(), 2.5)  # within the 2 s bound plus the connect
    assert await bus.exchange(lambda link: link.read_coils(1, 0, 1)) == [False]
    await bus.stop()


def test_backoff_is_bounded_exponential() -> None:
    b = Backoff(1.0, 8.0)
    assert [b.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.reset()
    assert b.next_delay() == 1.0
