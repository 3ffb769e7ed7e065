"""Home Assistant discovery: every kind gets its entities, and every key of every
payload is one Home Assistant documents for that platform (tests/data holds the lists,
taken from its documentation), so a typo or an invented key fails here, not silently
in someone's Home Assistant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.config import DeviceConfig
from daemon.kinds import Kind
from daemon.mqtt import discovery
from daemon.mqtt.topics import Topics
from drivers.curtain.driver import CurtainOptions
from drivers.extron.driver import ExtronOptions
from drivers.modbus.fan import FanOptions
from drivers.modbus.relay import RelayOptions
from drivers.pjlink.driver import PJLinkOptions

DOCUMENTED = json.loads(
    (Path(__file__).parent / "data" / "ha_mqtt_documented_keys.json").read_text()
)
TOPICS = Topics("hall/gridhall")


def dev(kind: Kind, driver: str, **kw: Any) -> DeviceConfig:
    return DeviceConfig(id=f"{kind.value}-1", kind=kind, driver=driver, url="tcp://h:1", **kw)


CASES: dict[str, tuple[DeviceConfig, Any, dict[str, Any]]] = {
    "matrix": (
        dev(Kind.MATRIX, "extron-sis", name="Wall matrix"),
        ExtronOptions(inputs=8, outputs=4),
        {"routes": {"1": 2, "2": 0, "3": 1, "4": 8}},
    ),
    "power": (dev(Kind.POWER, "modbus-relay"), RelayOptions(channels=4), {}),
    "fan": (
        dev(Kind.FAN, "modbus-fan"),
        FanOptions(run_register=1, run_value=2, stop_value=1, speed_register=2, speed_max=100),
        {"on": True, "percent": 40},
    ),
    "curtain": (
        dev(Kind.CURTAIN, "relay-curtain"),
        CurtainOptions(relay="power-1", open_channel=1, close_channel=2, travel_s=5),
        {"position": 30, "moving": None},
    ),
    "screen": (
        dev(Kind.SCREEN, "pjlink"),
        PJLinkOptions(inputs={"hdmi1": "31", "vga": "11"}),
        {"power": "on", "input": "hdmi1", "muted": False},
    ),
}


def all_entities() -> list[discovery.Entity]:
    return [e for d, o, s in CASES.values() for e in discovery.entities(TOPICS, d, o, None, s)]


def test_every_kind_gets_its_entities() -> None:
    def components(kind: str) -> list[str]:
        d, o, s = CASES[kind]
        return [e.component for e in discovery.entities(TOPICS, d, o, None, s)]

    assert components("matrix") == ["select"] * 4
    assert components("power") == ["switch"] * 4
    assert components("fan") == ["fan"]
    assert components("curtain") == ["cover"]
    assert components("screen") == ["switch", "select"]


@pytest.mark.parametrize("entity", all_entities(), ids=lambda e: e.object_id)
def test_only_documented_keys(entity: discovery.Entity) -> None:
    allowed = set(DOCUMENTED["common"]) | set(DOCUMENTED["platforms"][entity.component])
    config = entity.config
    assert set(config) <= allowed, set(config) - allowed
    assert set(config["device"]) <= set(DOCUMENTED["device"])
    assert set(config["origin"]) <= set(DOCUMENTED["origin"])
    for item in config["availability"]:
        assert set(item) <= set(DOCUMENTED["availability"])


def test_topics_and_ids_follow_the_contract() -> None:
    found = discovery.messages(all_entities(), TOPICS)
    # node_id allows no '/', so the base topic's is replaced.
    assert "homeassistant/select/hall_gridhall/matrix-1_output_1/config" in found
    output = found["homeassistant/select/hall_gridhall/matrix-1_output_1/config"]
    assert output["command_topic"] == "hall/gridhall/matrix-1/set/route"
    assert output["options"] == [str(i) for i in range(9)]
    assert output["state_topic"] == "hall/gridhall/matrix-1/state"
    assert output["device"]["name"] == "Wall matrix"
    unique = [c["unique_id"] for c in found.values()]
    assert len(unique) == len(set(unique))
    screen = found["homeassistant/select/hall_gridhall/screen-1_input/config"]
    assert screen["options"] == ["hdmi1", "vga"]
    cover = found["homeassistant/cover/hall_gridhall/curtain-1_cover/config"]
    assert cover["set_position_topic"] == "hall/gridhall/curtain-1/set/set_position"


def test_commands_are_parsed_only_under_the_base_topic() -> None:
    t = Topics("hall")
    assert t.parse_command("hall/relay/set/on") == discovery_command("relay", "on")
    assert t.parse_command("hall/relay/set") == discovery_command("relay", None)
    for topic in (
        "other/relay/set/on",
        "hallx/relay/set/on",
        "hall/relay/state",
        "hall/relay/set/on/more",
        "hall/Relay/set/on",
        "hall/relay/set/On",
        "hall/bridge/response/on",
    ):
        assert t.parse_command(topic) is None, topic


def discovery_command(device: str, action: str | None) -> Any:
    from daemon.mqtt.topics import Command

    return Command(device, action)


def test_scenes_are_scenes_with_documented_keys() -> None:
    [entity] = discovery.scene_entities(TOPICS, {"open": "Open the hall"})
    assert entity.component == "scene"
    test_only_documented_keys(entity)
    assert entity.config["command_topic"] == TOPICS.scene_run("open")


def test_seats_get_a_layout_select_and_a_button_per_layout() -> None:
    layouts = [("dispatch", "Dispatch"), ("patrol", "Video patrol")]
    found = discovery.seat_entities(TOPICS, "seat-1", "Dispatch 1", "kvm-1", layouts)
    assert [e.component for e in found] == ["select", "button", "button"]
    for entity in found:
        test_only_documented_keys(entity)
        assert entity.config["command_topic"] == "hall/gridhall/seats/seat-1/set/recall"
        assert entity.config["availability"][1] == {"topic": "hall/gridhall/kvm-1/availability"}
        assert entity.config["device"]["name"] == "Dispatch 1"
    select, dispatch, _ = found
    assert select.config["options"] == ["dispatch", "patrol"]
    assert select.config["state_topic"] == "hall/gridhall/seats/seat-1/state"
    assert json.loads(dispatch.config["payload_press"]) == {"layout": "dispatch"}
    assert dispatch.config["name"] == "Dispatch"
    unique = [e.config["unique_id"] for e in found]
    assert len(set(unique)) == 3
    # A seat without layouts has nothing for Home Assistant to choose from.
    assert discovery.seat_entities(TOPICS, "seat-2", "Dispatch 2", "kvm-1", []) == []


def test_seat_commands_are_parsed_only_under_the_base_topic() -> None:
    t = Topics("hall")
    assert t.parse_seat_command("hall/seats/seat-1/set/recall") == discovery_command(
        "seat-1", "recall"
    )
    for topic in (
        "hall/seats/seat-1/set",
        "hall/seats/seat-1/state",
        "hall/seats/Seat/set/recall",
        "hall/seats/seat-1/set/recall/x",
        "other/seats/seat-1/set/recall",
    ):
        assert t.parse_seat_command(topic) is None, topic
