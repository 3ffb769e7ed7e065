"""The config file: TOML read with tomllib, validated into one typed settings object.

Every problem is collected, not just the first, and each is reported as
`FILE:LINE: message` so `gridhall check-config` can list them all.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from daemon.auth import Roles
from daemon.calendar import CalendarConfig, CalendarFileError, load_overrides
from daemon.interlocks import InterlockConfig
from daemon.interlocks import check_references as check_interlocks
from daemon.kinds import Kind
from daemon.scenes import SceneConfig, SequenceConfig
from daemon.scenes import check_config as check_scenes
from daemon.schedules import ScheduleConfig
from daemon.seats.config import ComputerConfig, SeatConfig, WallConfig
from daemon.seats.config import check_references as check_seats
from daemon.tomllines import LineMap

if TYPE_CHECKING:
    from daemon.pluginhost import PluginHost

DEFAULT_PATHS = ("/etc/gridhall/gridhall.toml", "etc/gridhall.toml")
CONFIG_ENV = "GRIDHALL_CONFIG"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


def check_url(value: str, schemes: tuple[str, ...]) -> str:
    """A bus or device URL: a serial device path (any absolute path: a udev or pty
    link), or SCHEME://HOST:PORT."""
    if value.startswith("/") or re.fullmatch(r"COM\d+", value):
        return value
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(
            f"bad URL {value!r}: expected a serial device path or one of "
            + ", ".join(f"{s}://" for s in schemes)
        )
    if parts.scheme == "loop":
        return value
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"bad URL {value!r}: expected {parts.scheme}://HOST:PORT")
    return value


LINK_SCHEMES = ("tcp", "socket", "rfc2217", "loop", "mqtt", "mqtts")  # mqtt: the `mqtt` driver
ID = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=64)]


class ApiConfig(Section):
    listen: str = "127.0.0.1:8080"
    # A request body over this many KiB answers 413 before it is read (the largest the
    # API takes, a scene or a sequence of 256 steps, is far below it).
    max_body_kb: Annotated[int, Field(ge=1, le=65536)] = 256

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        return _host_port(v)


class StorageConfig(Section):
    path: str = "var/gridhall.db"
    # "full": an acknowledged write survives power loss; "normal": only a crash.
    synchronous: Literal["full", "normal"] = "full"


class MqttConfig(Section):
    url: str = "mqtt://127.0.0.1:1883"
    base_topic: str = "gridhall"
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    # TLS, used with an mqtts:// URL: the CA that signed the broker's certificate (the
    # system's CAs when absent), and a client certificate and key where the broker asks
    # for one. Paths are relative to the config file's folder.
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False  # skip the host name check: only for a test broker
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    reconnect_min_s: Annotated[int, Field(ge=1, le=600)] = 1
    reconnect_max_s: Annotated[int, Field(ge=1, le=600)] = 30
    discovery_prefix: str = "homeassistant"
    # How long the broker keeps the daemon's session (its subscriptions, the QoS 1
    # commands sent to it) while the daemon is away; 0: a clean session every time.
    session_expiry_s: Annotated[int, Field(ge=0, le=86_400)] = 300
    # "5" adds MQTT 5 response topics and correlation data; 3.1.1 sessions survive a
    # restart of Mosquitto 2.0.11, MQTT 5 ones do not (see docs/mqtt.md).
    protocol: Literal["3.1.1", "5"] = "3.1.1"

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not v or any(c in v for c in "+#\0") or v.startswith("/") or v.endswith("/"):
            raise ValueError(f"bad topic {v!r}: no wildcards, no leading or trailing '/'")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"bad URL {v!r}: expected mqtt://HOST[:PORT] or mqtts://")
        return v


class BusConfig(Section):
    id: ID
    url: str
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    gap_ms: Annotated[int, Field(ge=0, le=10_000)] = 0
    timeout_ms: Annotated[int, Field(ge=10, le=60_000)] = 1000
    reconnect_min_ms: Annotated[int, Field(ge=1000, le=600_000)] = 1000
    reconnect_max_ms: Annotated[int, Field(ge=1000, le=600_000)] = 10_000

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v, LINK_SCHEMES)

    def serial_settings(self) -> dict[str, Any]:
        """The line settings in pyserial's names (pymodbus takes the same ones)."""
        return {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
        }


# A device's id is a segment of its MQTT topics (`<base>/<id>/state`); these segments
# are the daemon's own, and a device named so would publish over them.
RESERVED_DEVICE_IDS = frozenset({"bridge", "scenes", "seats"})


class DeviceConfig(Section):
    id: ID
    kind: Kind
    driver: str
    bus: str | None = None
    url: str | None = None
    unit: Annotated[int, Field(ge=0, le=255)] | None = None
    name: str | None = None
    poll_ms: Annotated[int, Field(ge=50, le=3_600_000)] = 1000
    options: dict[str, Any] = {}

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if v in RESERVED_DEVICE_IDS:
            raise ValueError(
                f"{v!r} is reserved: <base>/{v}/ is the daemon's own MQTT topic "
                f"(reserved: {', '.join(sorted(RESERVED_DEVICE_IDS))})"
            )
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, LINK_SCHEMES)


class EmulatorConfig(Section):
    id: ID
    type: str
    listen: str
    options: dict[str, Any] = {}

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        return _host_port(v)


class PluginsConfig(Section):
    block: list[str] = []


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api: ApiConfig = ApiConfig()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig | None = None
    logging: LoggingConfig = LoggingConfig()
    plugins: PluginsConfig = PluginsConfig()
    bus: list[BusConfig] = []
    device: list[DeviceConfig] = []
    emulator: list[EmulatorConfig] = []
    scene: list[SceneConfig] = []
    sequence: list[SequenceConfig] = []
    interlock: list[InterlockConfig] = []
    schedule: list[ScheduleConfig] = []
    calendar: CalendarConfig = CalendarConfig()
    computer: list[ComputerConfig] = []
    seat: list[SeatConfig] = []
    wall: list[WallConfig] = []

    # Filled after validation.
    file: Path = Path("gridhall.toml")
    sections: dict[str, Any] = {}
    driver_options: dict[str, Any] = {}
    driver_classes: dict[str, Any] = {}  # device id -> its driver's class

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() else (self.file.parent / p)

    @property
    def db_path(self) -> Path:
        return self.resolve(self.storage.path)


_ARRAY_SECTIONS: dict[str, Any] = {
    "bus": BusConfig,
    "device": DeviceConfig,
    "emulator": EmulatorConfig,
    "scene": SceneConfig,
    "sequence": SequenceConfig,
    "interlock": InterlockConfig,
    "schedule": ScheduleConfig,
    "computer": ComputerConfig,
    "seat": SeatConfig,
    "wall": WallConfig,
}
_TABLE_SECTIONS = ("api", "storage", "mqtt", "logging", "plugins", "calendar")


@dataclass
class Issue:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(Exception):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    """One validator per model: building one compiles a schema (time and memory), and
    a config validates dozens of devices against the same few models."""
    return TypeAdapter(model)


def blocked_plugins(path: Path) -> list[str]:
    """`[plugins] block` read from the raw file: plugins load before the config is
    validated (they add sections and drivers), so this is all that is read first."""
    try:
        _, raw = read_toml(path)
    except ConfigError:
        return []  # load() reports it with its line
    section = raw.get("plugins")
    block = section.get("block", []) if isinstance(section, dict) else []
    return [b for b in block if isinstance(b, str)] if isinstance(block, list) else []


def default_path() -> Path:
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    for candidate in DEFAULT_PATHS:
        if Path(candidate).exists():
            return Path(candidate)
    return Path(DEFAULT_PATHS[-1])


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Issue(str(path), 0, f"cannot read: {exc.strerror}")]) from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError([Issue(str(path), int(m.group(1)) if m else 1, str(exc))]) from exc


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
    if err["type"] == "extra_forbidden":
        return f"unknown key {loc!r}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def load(path: Path, plugins: PluginHost) -> Config:
    """Read and validate; raise ConfigError with every issue found."""
    text, raw = read_toml(path)
    lines = LineMap(text)
    issues: list[Issue] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        issues.append(Issue(str(path), lines.line_of(loc), message))

    def validate(model: Any, data: Any, base: tuple[Any, ...]) -> Any:
        try:
            return _adapter(model).validate_python(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = base + tuple(err["loc"])
                add(loc, _describe({**err, "loc": loc}))
            return None

    # Each section, and each item of an array section, is validated on its own, so
    # one bad device does not hide the errors of the next.
    plugin_models = plugins.config_sections()
    for name in [n for n in plugin_models if n in Config.model_fields]:
        add((), f"a plugin claims the core section [{name}]; it is validated as the core's")
        del plugin_models[name]
    core: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    origin: dict[str, list[int]] = {}  # position in config.<key> -> index in the file
    for key, value in raw.items():
        if key in plugin_models:
            if (section := validate(plugin_models[key], value, (key,))) is not None:
                sections[key] = section
        elif key in _ARRAY_SECTIONS:
            if not isinstance(value, list):
                add((key,), f"{key}: use [[{key}]] tables")
                continue
            _check_duplicate_ids(key, value, add)
            items = [
                (i, validate(_ARRAY_SECTIONS[key], item, (key, i))) for i, item in enumerate(value)
            ]
            core[key] = [item for _, item in items if item is not None]
            origin[key] = [i for i, item in items if item is not None]
        elif key in _TABLE_SECTIONS:
            if (
                section := validate(Config.model_fields[key].annotation, value, (key,))
            ) is not None:
                core[key] = section
        else:
            # Most often the section of a plugin that is blocked or not installed.
            add((key,), f"unknown key {key!r} (no plugin loaded reads a [{key}] section)")

    for name, model in plugin_models.items():
        if name not in sections:
            # An absent section is its defaults, when the model has one for every field.
            empties: tuple[Any, ...] = ({}, [])
            for empty in empties:
                with contextlib.suppress(ValidationError):
                    sections[name] = _adapter(model).validate_python(empty)
                    break
    config = Config.model_validate(core)
    config.file = path
    config.sections = sections
    _check_references(config, plugins, lambda loc, msg: add(_at(origin, loc), msg))
    issues.extend(_check_calendar_files(config))
    for name, section in sections.items():
        issues.extend(_check_plugin_section(name, section, config, add))
    if issues:
        raise ConfigError(sorted(issues, key=lambda i: i.line))
    return config


def _check_plugin_section(name: str, section: Any, config: Config, add: Any) -> list[Issue]:
    """A plugin section that names things of the rest of the config (a scene, a file)
    checks them in its `check_config(config)`: it yields `(loc, message)` for a key of
    its own section (reported at that key's line) or an `Issue` in another file."""
    check = getattr(section, "check_config", None)
    if not callable(check):
        return []
    elsewhere: list[Issue] = []
    for problem in check(config):
        if isinstance(problem, Issue):
            elsewhere.append(problem)
        else:
            loc, message = problem
            add((name, *loc), message)
    return elsewhere


def _check_duplicate_ids(key: str, items: list[Any], add: Any) -> None:
    """Checked on the raw tables, so a duplicate is found even beside an invalid twin."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        ident = item.get("id") if isinstance(item, dict) else None
        if isinstance(ident, str):
            if ident in seen:
                add((key, i, "id"), f"duplicate {key} id {ident!r}")
            seen.add(ident)


def _at(origin: dict[str, list[int]], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Map ("device", position, ...) back to the device's index in the file."""
    if len(loc) >= 2 and loc[0] in origin:
        return (loc[0], origin[loc[0]][loc[1]]) + loc[2:]
    return loc


def _unknown_driver(name: str, drivers: dict[str, Any]) -> str:
    return f"unknown driver {name!r}; known drivers: {', '.join(sorted(drivers))}"


def _check_references(config: Config, plugins: PluginHost, add: Any) -> None:
    drivers = plugins.drivers()
    emulators = plugins.emulators()
    buses = {bus.id: bus for bus in config.bus}
    link_types: dict[str, tuple[str, Any]] = {}
    for i, dev in enumerate(config.device):
        driver = drivers.get(dev.driver)
        if driver is None:
            add(("device", i, "driver"), _unknown_driver(dev.driver, drivers))
            continue
        if dev.kind not in driver.kinds:
            served = " or a ".join(sorted(k.value for k in driver.kinds))
            add(
                ("device", i, "kind"),
                f"driver {dev.driver!r} drives a {served}, not a {dev.kind.value}",
            )
        if driver.link_type is None:
            if dev.bus or dev.url:
                add(
                    ("device", i),
                    f"driver {dev.driver!r} has no link of its own: remove bus and url",
                )
        elif dev.bus and dev.url:
            add(("device", i, "url"), "give either bus or url, not both")
        elif not dev.bus and not dev.url:
            add(("device", i), "needs a bus or a url")
        elif dev.bus and dev.bus not in buses:
            known = ", ".join(sorted(buses)) or "none defined"
            add(("device", i, "bus"), f"bus {dev.bus!r} does not exist (buses: {known})")
        elif dev.bus:
            prev = link_types.setdefault(dev.bus, (dev.id, driver.link_type))
            if prev[1] is not driver.link_type:
                add(
                    ("device", i, "bus"),
                    f"device {dev.id!r} speaks another link type than "
                    f"{prev[0]!r} on bus {dev.bus!r}",
                )
        config.driver_classes[dev.id] = driver
        try:
            config.driver_options[dev.id] = driver.Options.model_validate(dev.options)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("device", i, "options") + tuple(err["loc"])
                add(loc, f"options.{_describe(err)}")
    for i, dev in enumerate(config.device):
        driver = drivers.get(dev.driver)
        options = config.driver_options.get(dev.id)
        if driver is not None and options is not None:
            for loc, message in driver.check_device(dev, options, config):
                add(("device", i) + loc, message)
    for i, emu in enumerate(config.emulator):
        if emu.type not in emulators:
            add(
                ("emulator", i, "type"),
                f"unknown emulator {emu.type!r}; known: " + ", ".join(sorted(emulators)),
            )
            continue
        try:
            emulators[emu.type].Options.model_validate(emu.options)
        except ValidationError as exc:
            for err in exc.errors():
                add(("emulator", i, "options") + tuple(err["loc"]), f"options.{_describe(err)}")
    _check_scenes_and_interlocks(config, drivers, add)
    check_seats(config, Roles(plugins.roles()).includes, add)


def _check_scenes_and_interlocks(config: Config, drivers: dict[str, Any], add: Any) -> None:
    """Scenes, sequences and interlocks name devices and actions that must exist."""
    by_id = {d.id: drivers[d.driver] for d in config.device if d.driver in drivers}
    kinds = {d.id: d.kind for d in config.device}

    def actions_of(device_id: str) -> Any:
        driver = by_id.get(device_id)
        return None if driver is None else driver.actions(kinds[device_id])

    check_scenes(config.scene, config.sequence, actions_of, add)
    check_interlocks(config.interlock, actions_of, add)
    _check_schedules(config, by_id, kinds, add)


def _check_schedules(
    config: Config, drivers_by_device: dict[str, Any], kinds: dict[str, Kind], add: Any
) -> None:
    """A schedule names a device and one of its actions with valid arguments, or a
    scene of the config."""
    scenes = {s.id for s in config.scene} | {
        sid for seq in config.sequence for sid in seq.scene_ids()
    }
    for i, sched in enumerate(config.schedule):
        if sched.scene is not None:
            if sched.scene not in scenes:
                add(("schedule", i, "scene"), f"scene {sched.scene!r} does not exist")
            continue
        driver = drivers_by_device.get(sched.device or "")
        if driver is None:
            add(("schedule", i, "device"), f"device {sched.device!r} does not exist")
            continue
        actions = driver.actions(kinds[sched.device or ""])
        model = actions.get(sched.action)
        if model is None:
            known = ", ".join(sorted(actions))
            add(("schedule", i, "action"), f"unknown action {sched.action!r}; actions: {known}")
            continue
        try:
            model.model_validate(sched.args)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("args",) + tuple(err["loc"])
                add(("schedule", i) + loc, _describe({**err, "loc": loc}))


def _check_calendar_files(config: Config) -> list[Issue]:
    """The calendar's per-year override files, each error at its own file and line."""
    try:
        load_overrides(config.resolve(config.calendar.overrides))
    except CalendarFileError as exc:
        return [Issue(str(exc.path), exc.line, exc.detail)]
    return []
