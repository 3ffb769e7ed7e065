"""Home Assistant MQTT discovery payloads for every device, by kind.

Pure: a device's config, its driver and its state in; `(topic, payload)` pairs out.
Each entity reads the device's one retained JSON state topic through a template and
commands it through the device's command topics, so Home Assistant needs no topic of
its own. A switch (one command topic for on and off) uses `<base>/<device>/set` with
the action in the payload; the others use `<base>/<device>/set/<action>`.

Only keys Home Assistant documents for the platform are used; tests/test_mqtt_discovery
checks every payload against lists taken from its documentation.

| kind | entities |
|---|---|
| matrix | one `select` per output: its input ("0" unties) |
| power | one `switch` per channel |
| fan | one `fan`, with percentage |
| curtain | one `cover`, with position |
| screen | a `switch` (power) and a `select` of its named inputs |
| scenes | one `scene` each, run through `<base>/scenes/<id>/run` |
| seats | a `select` of its layouts and a `button` each, through `<base>/seats/<id>/set/recall` |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daemon import __version__
from daemon.config import DeviceConfig
from daemon.controls import controls
from daemon.kinds import Kind, State
from daemon.mqtt.topics import Topics

ORIGIN = {"name": "gridhall", "sw_version": __version__}  # who sent the config, for HA's logs


@dataclass(frozen=True)
class Entity:
    component: str  # Home Assistant's platform: select, switch, fan, cover, scene
    object_id: str
    config: dict[str, Any]


def _base(
    topics: Topics, ident: str, name: str | None, device: tuple[str, str, str], *online: str
) -> dict[str, Any]:
    """What every entity says: its id, its Home Assistant device (identifier suffix,
    name, model), and the topics that must all say `online` (the bridge's and these)."""
    node = topics.node_id
    return {
        "name": name,  # None: the entity is the device's main feature, named after it
        "unique_id": f"{node}_{ident}",
        "availability": [{"topic": t} for t in (topics.bridge_state, *online)],
        "availability_mode": "all",
        "device": {
            "identifiers": [f"{node}_{device[0]}"],
            "name": device[1],
            "manufacturer": "gridhall",
            "model": device[2],
        },
        "origin": ORIGIN,
        "qos": 1,
    }


def _common(topics: Topics, dev: DeviceConfig, suffix: str, name: str | None) -> dict[str, Any]:
    device = (dev.id, dev.name or dev.id, dev.driver)
    return _base(topics, f"{dev.id}_{suffix}", name, device, topics.availability(dev.id))


def _switch(
    topics: Topics, dev: DeviceConfig, suffix: str, name: str | None, on: str, extra: str
) -> Entity:
    """A switch commanding `on`/`off` through `<base>/<device>/set`; `on` is the
    Jinja test for "on" in the state, `extra` more JSON for the command (a channel)."""
    config = _common(topics, dev, suffix, name) | {
        "command_topic": topics.command(dev.id),
        "command_template": '{"action": "{{ value | lower }}"' + extra + "}",
        "state_topic": topics.state(dev.id),
        "value_template": "{{ 'ON' if " + on + " else 'OFF' }}",
    }
    return Entity("switch", f"{dev.id}_{suffix}", config)


def _select(
    topics: Topics,
    dev: DeviceConfig,
    suffix: str,
    name: str,
    action: str,
    template: str,
    options: list[str],
    value: str,
) -> Entity:
    config = _common(topics, dev, suffix, name) | {
        "command_topic": topics.command(dev.id, action),
        "command_template": template,
        "state_topic": topics.state(dev.id),
        "value_template": value,
        "options": options,
    }
    return Entity("select", f"{dev.id}_{suffix}", config)


def entities(
    topics: Topics, dev: DeviceConfig, options: Any, driver: Any, state: State
) -> list[Entity]:
    """Every Home Assistant entity of one device."""
    ctl = controls(dev.kind, options, driver, state)
    if dev.kind is Kind.MATRIX:
        inputs, outputs = ctl["inputs"], ctl["outputs"]
        choices = [str(i) for i in range(inputs + 1)]
        return [
            _select(
                topics,
                dev,
                f"output_{o}",
                f"Output {o}",
                "route",
                '{"input": {{ value | int }}, "output": ' + str(o) + "}",
                choices,
                "{{ value_json.routes['" + str(o) + "'] | string }}",
            )
            for o in range(1, outputs + 1)
        ]
    if dev.kind is Kind.POWER:
        return [
            _switch(
                topics,
                dev,
                f"channel_{n}",
                f"Channel {n}",
                "value_json.channels['" + str(n) + "']",
                f', "channel": {n}',
            )
            for n in range(1, ctl["channels"] + 1)
        ]
    if dev.kind is Kind.FAN:
        config = _common(topics, dev, "fan", None) | {
            "command_topic": topics.command(dev.id),
            "command_template": '{"action": "{{ value | lower }}"}',
            "state_topic": topics.state(dev.id),
            "state_value_template": "{{ 'ON' if value_json.on else 'OFF' }}",
            "percentage_command_topic": topics.command(dev.id, "set_speed"),
            "percentage_command_template": '{"percent": {{ value | int }}}',
            "percentage_state_topic": topics.state(dev.id),
            "percentage_value_template": "{{ value_json.percent }}",
            "speed_range_min": 1,
            "speed_range_max": 100,
        }
        return [Entity("fan", f"{dev.id}_fan", config)]
    if dev.kind is Kind.CURTAIN:
        config = _common(topics, dev, "cover", None) | {
            "device_class": "curtain",
            "command_topic": topics.command(dev.id),
            "payload_open": '{"action": "open"}',
            "payload_close": '{"action": "close"}',
            "payload_stop": '{"action": "stop"}',
            "state_topic": topics.state(dev.id),
            "value_template": (
                "{% if value_json.moving %}{{ value_json.moving }}"
                "{% elif value_json.position == 0 %}closed"
                "{% elif value_json.position == 100 %}open"
                "{% else %}stopped{% endif %}"
            ),
            "position_topic": topics.state(dev.id),
            "position_template": "{{ value_json.position }}",
            "set_position_topic": topics.command(dev.id, "set_position"),
            "set_position_template": '{"position": {{ position | int }}}',
            "position_open": 100,
            "position_closed": 0,
        }
        return [Entity("cover", f"{dev.id}_cover", config)]
    if dev.kind is Kind.SCREEN:
        names = ctl["inputs"]
        found: list[Entity] = [
            _switch(topics, dev, "power", "Power", "value_json.power in ['on', 'warming']", "")
        ]
        if names:
            found.append(
                _select(
                    topics,
                    dev,
                    "input",
                    "Input",
                    "set_input",
                    '{"input": "{{ value }}"}',
                    names,
                    "{{ value_json.input }}",
                )
            )
        return found
    return []


def scene_entities(topics: Topics, scenes: dict[str, str]) -> list[Entity]:
    """One `scene` per scene ({id: name}), on the bridge's own device."""
    device = ("scenes", "gridhall scenes", "scenes")
    return [
        Entity(
            "scene",
            f"scene_{scene_id}",
            _base(topics, f"scene_{scene_id}", name, device)
            | {"command_topic": topics.scene_run(scene_id), "payload_on": "{}"},
        )
        for scene_id, name in sorted(scenes.items())
    ]


def seat_entities(
    topics: Topics, seat: str, name: str, matrix: str, layouts: list[tuple[str, str]]
) -> list[Entity]:
    """A seat's layouts ((id, name) each): a `select` showing the layout the consoles
    match (none: unknown) that recalls the one chosen, and a `button` per layout. The
    seat is available when its matrix is."""
    device = (f"seat_{seat}", name, "seat")
    recall = topics.seat_command(seat, "recall")
    found = [
        Entity(
            "button",
            f"seat_{seat}_layout_{layout_id}",
            _base(
                topics,
                f"seat_{seat}_layout_{layout_id}",
                title,
                device,
                topics.availability(matrix),
            )
            | {"command_topic": recall, "payload_press": json.dumps({"layout": layout_id})},
        )
        for layout_id, title in layouts
    ]
    if layouts:
        select = _base(topics, f"seat_{seat}_layout", "Layout", device, topics.availability(matrix))
        select |= {
            "command_topic": recall,
            "command_template": '{"layout": "{{ value }}"}',
            "state_topic": topics.seat_state(seat),
            "value_template": "{{ value_json.layout }}",  # null renders None: unknown
            "options": [layout_id for layout_id, _ in layouts],
        }
        found.insert(0, Entity("select", f"seat_{seat}_layout", select))
    return found


def is_seat(topic: str) -> bool:
    """Is this discovery topic one of a seat's entities?"""
    return topic.rsplit("/", 2)[-2].startswith("seat_")


def messages(entities_: list[Entity], topics: Topics) -> dict[str, dict[str, Any]]:
    """{discovery topic: payload} for a list of entities."""
    return {topics.discovery(e.component, e.object_id): e.config for e in entities_}
