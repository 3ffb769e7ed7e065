"""The plugin host, through a third-party plugin (tests/plugins/visitors.py, the example
in docs/plugins.md) and the public HTTP API: what a plugin author is promised there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pluggy import PluginValidationError

from daemon import cli
from daemon.config import ConfigError, load
from daemon.events import Event, Subscription
from daemon.hookspecs import hookimpl
from daemon.pluginhost import BLOCK_ENV, PluginError, PluginHost
from drivers.modbus.emulator import ModbusEmulator
from tests.plugins.visitors import VisitorLog
from tests.support import Running, relay_config, running, wait_for

VISITORS = """
[visitors]
max_per_day = 3
"""


@pytest.fixture
def plugins() -> Iterator[PluginHost]:
    """The built-ins plus a fresh visitor log, registered for this test only."""
    host = PluginHost()
    host.load(entry_points=False)
    host.register(VisitorLog(), name="visitors")
    yield host
    host.unregister("visitors")


@pytest.fixture
async def hall(
    tmp_path: Path, modbus: ModbusEmulator, plugins: PluginHost
) -> AsyncIterator[Running]:
    """conftest's `hall`, with the visitor log loaded and `[visitors]` in the config."""
    async with running(relay_config(tmp_path, modbus.port, extra=VISITORS), plugins) as r:
        await wait_for(lambda: all(d.available for d in r.host.devices))
        yield r


async def arrive(hall: Running, name: str) -> int:
    r = await hall.client.post(
        "/api/v1/visitors/", json={"name": name}, headers=hall.as_role("operator")
    )
    assert r.status_code == 201, r.text
    visitor_id: int = r.json()["id"]
    return visitor_id


# -- registration --------------------------------------------------------------------


def test_builtins_take_the_same_registration_path() -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    assert "drivers.builtin" in plugins.names()
    assert "modbus-relay" in plugins.drivers()


class Typo:
    """A plugin whose hook name is misspelt (no `s`)."""

    @hookimpl
    def gridhall_config_section(self) -> dict[str, object]:
        return {}


def test_an_impl_of_an_unknown_hook_is_refused() -> None:
    """A typo in a hook name must fail loudly at load, not be silently never called."""
    plugins = PluginHost()
    with pytest.raises(PluginValidationError, match="gridhall_config_section"):
        plugins.register(Typo(), name="typo")


def test_a_refused_plugin_is_not_left_registered() -> None:
    plugins = PluginHost()
    with pytest.raises(PluginValidationError):
        plugins.register(Typo(), name="typo")
    assert "typo" not in plugins.names()
    plugins.register(VisitorLog(), name="visitors")  # raises while "typo" stays pending


def test_blocking_a_plugin_leaves_its_drivers_out() -> None:
    plugins = PluginHost(blocked=["drivers.builtin"])
    plugins.load(entry_points=False)
    assert "modbus-relay" not in plugins.drivers()
    assert plugins.emulators() == {}


def test_blocking_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, "someone-else, drivers.builtin")
    plugins = PluginHost()
    plugins.load(entry_points=False)
    assert "modbus-relay" not in plugins.drivers()


def test_blocking_a_third_party_plugin_by_name() -> None:
    """Blocked names hold for plugins registered later, as entry points are."""
    plugins = PluginHost(blocked=["visitors"])
    plugins.register(VisitorLog(), name="visitors")
    assert plugins.config_sections() == {}
    assert plugins.migrations() == []


def test_a_blocked_plugin_is_not_in_names() -> None:
    plugins = PluginHost(blocked=["drivers.builtin"])
    plugins.load(entry_points=False)
    assert "drivers.builtin" not in plugins.names()


def test_blocking_from_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = relay_config(tmp_path, 502, extra='[plugins]\nblock = ["drivers.builtin"]\n')
    assert cli.main(["check-config", "-c", str(path)]) == 1
    assert "unknown driver 'modbus-relay'" in capsys.readouterr().err


# -- config section and migration -----------------------------------------------------


def test_a_bad_section_value_is_reported_at_its_line(tmp_path: Path, plugins: PluginHost) -> None:
    path = relay_config(tmp_path, 502, extra='[visitors]\nmax_per_day = "lots"\n')
    line = path.read_text().splitlines().index('max_per_day = "lots"') + 1
    with pytest.raises(ConfigError) as caught:
        load(path, plugins)
    [issue] = caught.value.issues
    assert issue.line == line
    assert "visitors.max_per_day" in issue.message


def test_a_good_section_is_validated_into_the_model(tmp_path: Path, plugins: PluginHost) -> None:
    config = load(relay_config(tmp_path, 502, extra=VISITORS), plugins)
    assert config.sections["visitors"].max_per_day == 3


async def test_the_migration_ran(hall: Running) -> None:
    tables = await hall.host.store.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'visitors'"
    )
    assert len(tables) == 1
    applied = await hall.host.store.fetchall(
        "SELECT version FROM migrations WHERE namespace = 'visitors'"
    )
    assert [row["version"] for row in applied] == [1]


# -- routes ----------------------------------------------------------------------------


async def test_routes_are_mounted_with_auth(hall: Running) -> None:
    url = "/api/v1/visitors/"
    assert (await hall.client.get(url)).status_code == 401
    assert (await hall.client.post(url, json={"name": "Ada"})).status_code == 401
    r = await hall.client.post(url, json={"name": "Ada"}, headers=hall.as_role("viewer"))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert (await hall.client.get(url, headers=hall.as_role("viewer"))).status_code == 200


async def test_arrivals_are_logged_up_to_the_daily_limit(hall: Running) -> None:
    for name in ("Ada", "Brian", "Chen"):
        await arrive(hall, name)
    r = await hall.client.post(
        "/api/v1/visitors/", json={"name": "Dora"}, headers=hall.as_role("operator")
    )
    assert r.status_code == 409
    assert "3 visitors a day" in r.json()["error"]["message"]
    r = await hall.client.get("/api/v1/visitors/", headers=hall.as_role("viewer"))
    body = r.json()
    assert [v["name"] for v in body["visitors"]] == ["Ada", "Brian", "Chen"]
    assert body["in_hall"] == 3
    assert {v["logged_by"] for v in body["visitors"]} == {"test-operator"}


# -- events ----------------------------------------------------------------------------


async def test_arrival_is_published_on_the_event_bus(hall: Running) -> None:
    async with hall.host.events.subscribe() as sub:
        visitor_id = await arrive(hall, "Ada")
        event = await asyncio.wait_for(anext_of(sub, "visitors.arrived"), 5)
    assert event.source == "visitors"
    assert event.data["id"] == visitor_id and event.data["name"] == "Ada"
    assert event.data["by"] == "test-operator"


async def anext_of(sub: Subscription, event_type: str) -> Event:
    """The next event of a type; the bus also carries the relay's polls."""
    async for event in sub:
        if event.type == event_type:
            return event
    raise AssertionError("subscription ended")


async def test_state_events_reach_the_plugin(hall: Running) -> None:
    """The plugin sees device state through gridhall_event, not by polling."""

    async def powered() -> bool:
        r = await hall.client.get("/api/v1/visitors/", headers=hall.as_role("viewer"))
        return bool(r.json()["hall_powered"])

    assert not await powered()
    r = await hall.client.post(
        "/api/v1/devices/relay/actions/on", json={"channel": 2}, headers=hall.as_role("operator")
    )
    assert r.status_code == 200
    for _ in range(250):
        if await powered():
            break
        await asyncio.sleep(0.02)
    assert await powered()


# -- the veto ---------------------------------------------------------------------------


async def test_sequence_off_is_refused_while_visitors_are_in(
    hall: Running, modbus: ModbusEmulator
) -> None:
    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/devices/relay/actions/sequence_on", headers=op)
    assert r.status_code == 200
    visitor_id = await arrive(hall, "Ada")

    r = await hall.client.post("/api/v1/devices/relay/actions/sequence_off", headers=op)
    assert r.status_code == 409
    assert r.json()["error"] == {"code": "refused", "message": "1 visitor(s) in the hall: Ada"}
    assert await modbus.coils(1, 0, 3) == [True, True, True]  # nothing reached the board

    r = await hall.client.get("/api/v1/audit", headers=hall.as_role("admin"))
    [row] = [a for a in r.json() if a["what"] == "sequence_off"]
    assert row["result"] == "refused" and row["target"] == "relay"
    assert row["detail"] == "1 visitor(s) in the hall: Ada"
    assert row["who"] == "test-operator"

    # Once the last visitor has left, the same action goes through.
    r = await hall.client.post(f"/api/v1/visitors/{visitor_id}/leave", headers=op)
    assert r.status_code == 200 and r.json()["in_hall"] == 0
    r = await hall.client.post("/api/v1/devices/relay/actions/sequence_off", headers=op)
    assert r.status_code == 200, r.text
    assert await modbus.coils(1, 0, 3) == [False, False, False]


async def test_other_actions_are_not_vetoed(hall: Running) -> None:
    await arrive(hall, "Ada")
    r = await hall.client.post(
        "/api/v1/devices/relay/actions/off", json={"channel": 1}, headers=hall.as_role("operator")
    )
    assert r.status_code == 200


async def test_who_is_in_survives_a_restart(
    tmp_path: Path, modbus: ModbusEmulator, plugins: PluginHost
) -> None:
    """The veto is rebuilt from the store at startup: a restart must not unlock it."""
    path = relay_config(tmp_path, modbus.port, extra=VISITORS)
    async with running(path, plugins) as first:
        await arrive(first, "Ada")
    plugins.unregister("visitors")
    plugins.register(VisitorLog(), name="visitors")  # a new process would have a new one
    async with running(path, plugins) as second:
        await wait_for(lambda: all(d.available for d in second.host.devices))
        r = await second.client.post(
            "/api/v1/devices/relay/actions/sequence_off", headers=second.as_role("operator")
        )
        assert r.status_code == 409


class AsyncVeto:
    """An async veto, and an observer that fails on every event."""

    @hookimpl
    async def gridhall_check_action(self, device_id: str, action: str) -> str | None:
        await asyncio.sleep(0)
        return "maintenance window" if action == "off" else None

    @hookimpl
    def gridhall_event(self, event: Any) -> None:
        raise RuntimeError("observer bug")


async def test_async_veto_and_a_failing_observer(tmp_path: Path, modbus: ModbusEmulator) -> None:
    """An async veto is awaited (not taken as a reason); a failing observer costs the
    other observers nothing; an impl may take fewer arguments than its spec."""
    plugins = PluginHost()
    plugins.load(entry_points=False)
    plugins.register(AsyncVeto(), name="async-veto")
    seen: list[str] = []

    class Watcher:
        @hookimpl
        def gridhall_event(self, event: Any) -> None:
            seen.append(event.type)

    plugins.register(Watcher(), name="watcher")
    async with running(relay_config(tmp_path, modbus.port), plugins) as hall:
        await wait_for(lambda: hall.host.devices.get("relay").available)
        op = hall.as_role("operator")
        r = await hall.client.post("/api/v1/devices/relay/actions/on", headers=op)
        assert r.status_code == 200
        r = await hall.client.post("/api/v1/devices/relay/actions/off", headers=op)
        assert r.status_code == 409 and r.json()["error"]["message"] == "maintenance window"
        await wait_for(lambda: "action" in seen)


def test_a_plugin_may_not_redefine_a_builtin_role() -> None:
    class Usurper:
        @hookimpl
        def gridhall_roles(self) -> dict[str, list[str]]:
            return {"viewer": ["admin"]}

    plugins = PluginHost()
    plugins.register(Usurper(), name="usurper")
    with pytest.raises(PluginError, match="redefines role 'viewer'"):
        plugins.roles()


def test_a_plugin_may_not_claim_a_core_section(tmp_path: Path) -> None:
    class Claimer:
        @hookimpl
        def gridhall_config_sections(self) -> dict[str, Any]:
            return {"api": dict}

    plugins = PluginHost()
    plugins.load(entry_points=False)
    plugins.register(Claimer(), name="claimer")
    with pytest.raises(ConfigError, match=r"claims the core section \[api\]"):
        load(relay_config(tmp_path, 502), plugins)
