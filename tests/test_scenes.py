"""Scenes and sequences through the API, against the Modbus and PJLink emulators: steps
in order and in parallel with their events, a failing step stopping or skipped as the
scene says, cancelling mid-sequence, timing against the plan (measured on the
emulator's side too), edits kept in the store, and SIGHUP's reload."""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.config import ConfigError, load
from daemon.events import Event
from daemon.pluginhost import PluginHost
from drivers.modbus.emulator import ModbusEmulator, ModbusOptions
from drivers.pjlink.emulator import PJLinkEmulator, PJLinkEmulatorOptions
from tests.support import (
    Process,
    Running,
    ThreadedEmulator,
    create_token_cli,
    free_port,
    relay_config,
    running,
    spawn_daemon,
    wait_for,
    wait_http,
)

SCENES = """
[[device]]
id = "screen-1"
kind = "screen"
driver = "pjlink"
url = "tcp://127.0.0.1:{pjlink}"
poll_ms = 100
[device.options]
inputs = {{ hdmi1 = "31", vga = "11" }}
warmup_s = 5
cooldown_s = 5
busy_poll_ms = 50

[[scene]]
id = "open"
name = "Open the hall"
[[scene.step]]
device = "relay"
action = "on"
args = {{ channel = 1 }}
delay_ms = 50
[[scene.step]]
parallel = [
  {{ device = "relay", action = "on", args = {{ channel = 2 }} }},
  {{ device = "screen-1", action = "on", until = {{ power = ["warming", "on"] }} }},
]
[[scene.step]]
wait_ms = 50
[[scene.step]]
device = "relay"
action = "on"
args = {{ channel = 3 }}

[[scene]]
id = "stops"
[[scene.step]]
device = "relay"
action = "on"
args = {{ channel = 4 }}
[[scene.step]]
device = "relay"
until = {{ "channels.8" = true }}
timeout_s = 0.2
[[scene.step]]
device = "relay"
action = "on"
args = {{ channel = 5 }}

[[scene]]
id = "skips"
on_error = "skip"
[[scene.step]]
device = "relay"
until = {{ "channels.8" = true }}
timeout_s = 0.2
[[scene.step]]
device = "relay"
action = "on"
args = {{ channel = 6 }}

[[sequence]]
id = "hall"
name = "The hall's power"
[[sequence.step]]
device = "relay"
up = "on"
down = "off"
args = {{ channel = 1 }}
delay_ms = 150
[[sequence.step]]
device = "relay"
up = "on"
down = "off"
args = {{ channel = 2 }}
delay_ms = 150
[[sequence.step]]
device = "relay"
up = "on"
down = "off"
args = {{ channel = 3 }}
delay_ms = 150
[[sequence.step]]
device = "relay"
up = "on"
down = "off"
args = {{ channel = 8 }}
"""


@pytest.fixture
async def projector() -> AsyncIterator[PJLinkEmulator]:
    emu = PJLinkEmulator(
        "127.0.0.1", free_port(), PJLinkEmulatorOptions(warmup_s=0.5, cooldown_s=0.5)
    )
    await emu.start()
    yield emu
    await emu.stop()


def scenes_config(tmp_path: Path, modbus: ModbusEmulator, projector: PJLinkEmulator) -> Path:
    return relay_config(tmp_path, modbus.port, extra=SCENES.format(pjlink=projector.port))


@pytest.fixture
async def hall(
    tmp_path: Path, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> AsyncIterator[Running]:
    async with running(scenes_config(tmp_path, modbus, projector)) as r:
        await wait_for(lambda: all(d.available for d in r.host.devices))
        yield r


def drain(sub: Any) -> list[Event]:
    events = []
    while not sub.queue.empty():
        events.append(sub.queue.get_nowait())
    return events


async def test_scene_runs_in_order_and_in_parallel_with_its_events(
    hall: Running, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> None:
    async with hall.host.events.subscribe() as sub:
        r = await hall.client.post(
            "/api/v1/scenes/open/run", params={"wait": "true"}, headers=hall.as_role("operator")
        )
        events = [e for e in drain(sub) if e.type.startswith("scene.")]
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "done" and run["who"] == "test-operator"
    assert [s["status"] for s in run["steps"]] == ["done"] * 6
    assert await modbus.coils(1, 0, 4) == [True, True, True, False]
    assert projector.power in ("warming", "on")

    steps = {s["path"]: s for s in run["steps"]}
    # In order: each top-level step starts after the one before it ended ...
    for before, after in (("1", "2"), ("2", "3"), ("3", "4")):
        assert steps[after]["started_at"] >= steps[before]["ended_at"]
    # ... with step 1's 50 ms delay and the 50 ms wait honoured (a floor, not a ceiling).
    assert steps["2"]["started_at"] - steps["1"]["ended_at"] >= 0.049
    assert steps["4"]["started_at"] - steps["3"]["started_at"] >= 0.049
    # In parallel: both branches started before either ended.
    branches = [steps["2.1"], steps["2.2"]]
    assert max(b["started_at"] for b in branches) <= min(b["ended_at"] for b in branches)

    # Its progress went out as events, in order, each with the run's id.
    assert {e.data["run"] for e in events} == {run["run"]}
    names = [(e.type, e.data.get("step")) for e in events]
    assert names[0] == ("scene.started", None) and names[-1] == ("scene.done", None)
    for path in steps:
        assert names.index(("scene.step_started", path)) < names.index(("scene.step_done", path))
    assert names.index(("scene.step_done", "1")) < names.index(("scene.step_started", "2"))

    # Every action was audited with the scene as its cause; so was the run itself.
    rows = (await hall.client.get("/api/v1/audit", headers=hall.as_role("admin"))).json()
    causes = {(row["what"], row["target"], row["cause"]) for row in rows}
    assert ("on", "relay", "scene:open") in causes and ("on", "screen-1", "scene:open") in causes
    assert ("run_scene", "scene:open", "api") in causes

    # GET shows the last run's outcome, step by step.
    scene = (await hall.client.get("/api/v1/scenes/open", headers=hall.as_role("viewer"))).json()
    assert scene["running"] is False and scene["last_run"]["run"] == run["run"]
    assert [s["path"] for s in scene["last_run"]["steps"]] == ["1", "2", "2.1", "2.2", "3", "4"]


async def test_failing_step_stops_the_scene(hall: Running, modbus: ModbusEmulator) -> None:
    async with hall.host.events.subscribe() as sub:
        r = await hall.client.post(
            "/api/v1/scenes/stops/run", params={"wait": "true"}, headers=hall.as_role("operator")
        )
        types = [(e.type, e.data.get("step")) for e in drain(sub) if e.type.startswith("scene.")]
    run = r.json()
    assert run["status"] == "failed"
    assert [s["status"] for s in run["steps"]] == ["done", "failed", "skipped"]
    assert "channels.8" in run["steps"][1]["error"] and "0.2 s" in run["steps"][1]["error"]
    assert "step 2" in run["error"]
    assert await modbus.coils(1, 3, 2) == [True, False]  # channel 5 never switched
    assert ("scene.step_failed", "2") in types and ("scene.step_skipped", "3") in types
    assert types[-1] == ("scene.failed", None)


async def test_failing_step_is_skipped_when_the_scene_says_so(
    hall: Running, modbus: ModbusEmulator
) -> None:
    r = await hall.client.post(
        "/api/v1/scenes/skips/run", params={"wait": "true"}, headers=hall.as_role("operator")
    )
    run = r.json()
    assert run["status"] == "done"
    assert [s["status"] for s in run["steps"]] == ["failed", "done"]
    assert await modbus.coils(1, 5, 1) == [True]


async def test_cancel_mid_sequence_leaves_a_reported_consistent_state(
    hall: Running, modbus: ModbusEmulator
) -> None:
    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/scenes/hall-up/run", headers=op)
    assert r.status_code == 202 and r.json()["status"] == "running"
    await wait_for(lambda: hall.host.devices.get("relay").state["channels"]["2"])

    # While the sequence runs, it owns its devices: a manual action and a second run
    # of anything on them are refused with the reason.
    r = await hall.client.post("/api/v1/devices/relay/actions/on", json={"channel": 7}, headers=op)
    assert r.status_code == 409 and "hall-up is running" in r.json()["error"]["message"]
    r = await hall.client.post("/api/v1/scenes/hall-down/run", headers=op)
    assert r.status_code == 409 and "hall-up" in r.json()["error"]["message"]

    r = await hall.client.post("/api/v1/scenes/hall-up/cancel", headers=op)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "cancelled"
    statuses = [s["status"] for s in run["steps"]]
    assert statuses[:2] == ["done", "done"] and statuses[-1] == "cancelled"
    assert set(statuses) <= {"done", "cancelled"}
    # Consistent: a channel is on exactly where its step is reported done.
    channels = [1, 2, 3, 8]
    coils = await modbus.coils(1, 0, 8)
    assert [coils[c - 1] for c in channels] == [s == "done" for s in statuses]
    assert [s["action_done"] for s in run["steps"]] == [s == "done" for s in statuses]
    assert hall.host.devices.get("relay").state["channels"]["8"] is False

    scene = (await hall.client.get("/api/v1/scenes/hall-up", headers=op)).json()
    assert scene["running"] is False and scene["last_run"]["status"] == "cancelled"
    r = await hall.client.post("/api/v1/scenes/hall-up/cancel", headers=op)
    assert r.status_code == 409  # nothing to cancel
    # Free again: the manual action goes through.
    r = await hall.client.post("/api/v1/devices/relay/actions/on", json={"channel": 7}, headers=op)
    assert r.status_code == 200


async def test_sequence_down_runs_in_reverse(hall: Running, modbus: ModbusEmulator) -> None:
    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/scenes/hall-up/run?wait=true", headers=op)
    assert r.json()["status"] == "done"
    assert await modbus.coils(1, 0, 8) == [True, True, True] + [False] * 4 + [True]
    assert hall.host.scenes.running == {}  # free as soon as the run said it ended
    r = await hall.client.post("/api/v1/scenes/hall-down/run?wait=true", headers=op)
    run = r.json()
    assert [s["what"] for s in run["steps"]] == [
        "relay off channel=8",
        "relay off channel=3",
        "relay off channel=2",
        "relay off channel=1",
    ]
    assert await modbus.coils(1, 0, 8) == [False] * 8


SIXTEEN = "\n".join(
    f"""
[[sequence.step]]
device = "relay"
up = "on"
down = "off"
args = {{ channel = {n} }}
delay_ms = 40
"""
    for n in range(1, 17)
)


async def test_sequence_steps_reach_the_devices_within_50ms_of_plan(tmp_path: Path) -> None:
    emu = ModbusEmulator("127.0.0.1", free_port(), ModbusOptions(units=[1], coils=16))
    await emu.start()
    try:
        extra = '[[sequence]]\nid = "sixteen"\n' + SIXTEEN
        config = relay_config(tmp_path, emu.port, extra=extra)
        config.write_text(config.read_text().replace("channels = 8", "channels = 16"))
        async with running(config) as hall:
            await wait_for(lambda: hall.host.devices.get("relay").available)
            r = await hall.client.post(
                "/api/v1/scenes/sixteen-up/run?wait=true", headers=hall.as_role("operator")
            )
            run = r.json()
    finally:
        await emu.stop()
    assert run["status"] == "done"
    steps = run["steps"]
    writes = sorted((at, address) for at, _, address, _ in emu.coil_writes)
    assert len(steps) == 16 and len(writes) == 16
    scene_late = [s["late_ms"] for s in steps]
    arrival_late = [(at - s["planned_at"]) * 1000 for s, (at, _) in zip(steps, writes, strict=True)]
    assert [address for _, address in writes] == list(range(16))
    print(
        f"\nscene late ms: p50 {statistics.median(scene_late):.2f} max {max(scene_late):.2f};"
        f" at the emulator: p50 {statistics.median(arrival_late):.2f}"
        f" max {max(arrival_late):.2f}"
    )
    # The plan: each step 40 ms after the previous one ended. CI margin: the issue's 50 ms.
    assert max(scene_late) < 50
    # (-5: the epoch plan is derived from the monotonic clock; the two may differ a little.)
    assert all(-5 < late < 50 for late in arrival_late), arrival_late


async def test_scenes_are_edited_by_facility_and_kept_in_the_store(
    tmp_path: Path, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> None:
    config = scenes_config(tmp_path, modbus, projector)
    new = {"id": "evening", "step": [{"device": "relay", "action": "on", "args": {"channel": 7}}]}
    edited_open = {"id": "open", "name": "Open, edited", "step": [{"wait_ms": 1}]}
    async with running(config) as hall:
        fac = hall.as_role("facility")
        r = await hall.client.put("/api/v1/scenes/evening", json=new, headers=fac)
        assert r.status_code == 200, r.text
        assert r.json()["origin"] == "api"
        r = await hall.client.put("/api/v1/scenes/open", json=edited_open, headers=fac)
        assert r.status_code == 200
        bad = {"id": "bad", "step": [{"device": "relay", "action": "explode"}]}
        r = await hall.client.put("/api/v1/scenes/bad", json=bad, headers=fac)
        assert r.status_code == 422 and "explode" in r.json()["error"]["message"]
        bad = {"id": "bad", "step": [{"device": "relay", "action": "on", "args": {"channel": 0}}]}
        r = await hall.client.put("/api/v1/scenes/bad", json=bad, headers=fac)
        assert r.status_code == 422 and "channel" in r.json()["error"]["message"]
        r = await hall.client.put(
            "/api/v1/scenes/hall-up", json={**new, "id": "hall-up"}, headers=fac
        )
        assert r.status_code == 422 and "sequence hall" in r.json()["error"]["message"]
        r = await hall.client.delete("/api/v1/scenes/stops", headers=fac)
        assert r.status_code == 409 and "config" in r.json()["error"]["message"]
        await wait_for(lambda: hall.host.devices.get("relay").available)
        r = await hall.client.post(
            "/api/v1/scenes/skips/run?wait=true", headers=hall.as_role("operator")
        )
        assert r.json()["status"] == "done"

    # After a restart, the edits are still there, and the edit wins over the config.
    async with running(config) as hall:
        await wait_for(lambda: hall.host.devices.get("relay").available)
        viewer = hall.as_role("viewer")
        scenes = {
            s["id"]: s for s in (await hall.client.get("/api/v1/scenes", headers=viewer)).json()
        }
        assert {"evening", "open", "stops", "skips", "hall-up", "hall-down"} <= set(scenes)
        assert scenes["open"]["name"] == "Open, edited" and scenes["open"]["origin"] == "api"
        assert scenes["hall-up"]["sequence"] == "hall" and scenes["hall-up"]["exclusive"]
        # The last run's outcome, step by step, survived the restart too.
        assert scenes["skips"]["last_run"]["status"] == "done"
        assert [st["status"] for st in scenes["skips"]["last_run"]["steps"]] == ["failed", "done"]
        r = await hall.client.post(
            "/api/v1/scenes/evening/run?wait=true", headers=hall.as_role("operator")
        )
        assert r.json()["status"] == "done" and await modbus.coils(1, 6, 1) == [True]
        # Deleting the edit brings back the config's version.
        r = await hall.client.delete("/api/v1/scenes/open", headers=hall.as_role("facility"))
        assert r.status_code == 204
        scene = (await hall.client.get("/api/v1/scenes/open", headers=viewer)).json()
        assert scene["name"] == "Open the hall" and scene["origin"] == "config"


async def test_sequences_are_edited_through_the_api(hall: Running) -> None:
    fac = hall.as_role("facility")
    seq = {
        "id": "seats",
        "step": [
            {"device": "relay", "up": "on", "down": "off", "args": {"channel": 5}, "delay_ms": 10},
            {"device": "screen-1", "up": "on", "down": "off", "down_until": {"power": "off"}},
        ],
    }
    r = await hall.client.put("/api/v1/sequences/seats", json=seq, headers=fac)
    assert r.status_code == 200, r.text
    assert r.json()["scenes"] == ["seats-up", "seats-down"]
    listed = (await hall.client.get("/api/v1/sequences", headers=fac)).json()
    assert {s["id"] for s in listed} == {"hall", "seats"}
    down = (await hall.client.get("/api/v1/scenes/seats-down", headers=fac)).json()
    assert [s["device"] for s in down["step"]] == ["screen-1", "relay"]
    assert down["step"][0]["until"] == {"power": "off"}
    r = await hall.client.delete("/api/v1/sequences/seats", headers=fac)
    assert r.status_code == 204
    r = await hall.client.get("/api/v1/scenes/seats-up", headers=fac)
    assert r.status_code == 404


async def test_sighup_reload_takes_the_files_new_scenes(
    tmp_path: Path, modbus: ModbusEmulator, projector: PJLinkEmulator
) -> None:
    config = scenes_config(tmp_path, modbus, projector)
    async with running(config) as hall:
        config.write_text(
            config.read_text()
            + '\n[[scene]]\nid = "late"\n[[scene.step]]\nwait_ms = 1\n'
            + '[[interlock]]\nid = "no-7"\ndevice = "relay"\naction = "on"\n'
            + "args = { channel = 7 }\n"
            + 'when = { device = "relay", state = { "channels.1" = false } }\n'
        )
        assert await hall.daemon.reload_scenes()
        assert "late" in hall.host.scenes.scenes
        assert [r.id for r in hall.host.interlocks.rules] == ["no-7"]
        # A broken file changes nothing.
        config.write_text(config.read_text() + '\n[[scene]]\nid = "broken"\n')
        assert not await hall.daemon.reload_scenes()
        assert "late" in hall.host.scenes.scenes and "broken" not in hall.host.scenes.scenes


def test_sighup_to_the_process_reloads_scenes(
    tmp_path: Path, modbus_thread: ThreadedEmulator, processes: list[Process]
) -> None:
    port = free_port()
    config = relay_config(tmp_path, modbus_thread.port, api_port=port)
    proc = spawn_daemon(config, port)
    processes.append(proc)
    wait_http(f"{proc.url}/api/v1/health")
    headers = {"Authorization": f"Bearer {create_token_cli(config, 'viewer')}"}
    assert httpx.get(f"{proc.url}/api/v1/scenes", headers=headers).json() == []
    config.write_text(
        config.read_text() + '\n[[scene]]\nid = "late"\n[[scene.step]]\nwait_ms = 1\n'
    )
    proc.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        scenes = httpx.get(f"{proc.url}/api/v1/scenes", headers=headers).json()
        if scenes:
            break
        time.sleep(0.05)
    assert [s["id"] for s in scenes] == ["late"]
    assert proc.proc.poll() is None  # SIGHUP reloads; it does not stop the daemon

    # The new scene runs, and its progress reaches an SSE client.
    operator = {"Authorization": f"Bearer {create_token_cli(config, 'operator')}"}
    seen: list[tuple[str, dict[str, Any]]] = []
    with httpx.Client(base_url=proc.url, headers=operator, timeout=10) as client:
        with client.stream("GET", "/api/v1/events") as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    seen.append((event, json.loads(line.removeprefix("data: "))))
                    if event == "snapshot":
                        assert client.post("/api/v1/scenes/late/run").status_code == 202
                    if event in ("scene.done", "scene.failed"):
                        break
    scene_events = [(k, e["source"], e["data"].get("step")) for k, e in seen if k != "snapshot"]
    scene_events = [e for e in scene_events if e[0].startswith("scene.")]
    assert scene_events == [
        ("scene.started", "late", None),
        ("scene.step_started", "late", "1"),
        ("scene.step_done", "late", "1"),
        ("scene.done", "late", None),
    ]


def test_config_errors_name_the_step_and_its_line(tmp_path: Path) -> None:
    extra = """
[[scene]]
id = "typo"
[[scene.step]]
device = "relay"
action = "on"
args = { channel = 1 }
[[scene.step]]
device = "relais"
action = "on"
[[scene.step]]
device = "relay"
action = "explode"
[[scene.step]]
device = "relay"
action = "on"
args = { chanel = 1 }

[[scene]]
id = "shapeless"
[[scene.step]]
wait_ms = 5
device = "relay"

[[sequence]]
id = "typo"
[[sequence.step]]
device = "relay"
up = "on"
down = "of"
"""
    path = relay_config(tmp_path, 1, extra=extra)
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as err:
        load(path, plugins)
    text = path.read_text().splitlines()
    by_line = {i.line: i.message for i in err.value.issues}

    def line_of(needle: str, nth: int = 0) -> int:
        return [n for n, line in enumerate(text, start=1) if needle in line][nth]

    assert "no device 'relais'" in by_line[line_of('device = "relais"')]
    assert "no action 'explode'" in by_line[line_of('action = "explode"')]
    assert "chanel" in by_line[line_of("chanel")]
    assert "a step is one of" in by_line[line_of("[[scene.step]]", 4)]
    assert len(err.value.issues) == 5
    assert "no action 'of'" in by_line[line_of('down = "of"')]


async def test_run_scene_is_the_entry_point_for_other_sources(hall: Running) -> None:
    run = await hall.host.run_scene("skips", who="scheduler", cause="schedule:morning")
    await run.wait()
    assert run.status == "done"
    rows = (await hall.client.get("/api/v1/audit", headers=hall.as_role("admin"))).json()
    assert any(
        r["what"] == "run_scene" and r["cause"] == "schedule:morning" and r["who"] == "scheduler"
        for r in rows
    )
    assert any(r["what"] == "on" and r["cause"] == "scene:skips" for r in rows)
    assert json.loads(next(r["args"] for r in rows if r["cause"] == "scene:skips")) == {
        "channel": 6
    }


async def test_unknown_scene_is_404(hall: Running) -> None:
    r = await hall.client.post("/api/v1/scenes/nope/run", headers=hall.as_role("operator"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    await asyncio.sleep(0)
