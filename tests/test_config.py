"""`gridhall check-config`: every error, each with its line, and exit 1."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daemon.config import ConfigError, load
from daemon.pluginhost import PluginHost
from daemon.tomllines import LineMap
from tests.support import ROOT


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "check-config", "-c", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


BAD = """\
[api]
listen = "127.0.0.1:8080"
colour = "blue"

[[bus]]
id = "rs485-1"
url = "tcp://:502"

[[bus]]
id = "rs485-1"
url = "/dev/ttyUSB0"

[[device]]
id = "power-1"
kind = "power"
driver = "modbus-relay"
bus = "rs485-9"

[[device]]
id = "power-1"
kind = "power"
driver = "modbus-relay"
url = "tcp://127.0.0.1:502"
[device.options]
channels = 8
sequence = [{ channel = 12 }]

[[device]]
id = "screen-1"
kind = "screen"
driver = "flux-capacitor"
url = "tcp://127.0.0.1:4352"
"""


def test_every_error_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    result = check(path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    expected = {
        3: "unknown key 'api.colour'",
        7: "bad URL 'tcp://:502'",
        10: "duplicate bus id 'rs485-1'",
        17: "bus 'rs485-9' does not exist",
        20: "duplicate device id 'power-1'",
        26: "sequence names channel 12",
        31: "unknown driver 'flux-capacitor'; known drivers: ",
    }
    for line, text in expected.items():
        matching = [x for x in lines if x.startswith(f"{path}:{line}: ") and text in x]
        assert matching, f"no error at line {line} with {text!r} in:\n{result.stderr}"
    assert len(lines) == len(expected), result.stderr


def test_demo_config_is_valid() -> None:
    result = check(ROOT / "etc" / "gridhall.toml")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[api]\nlisten = "127.0.0.1:8080"\n\n[[device]\nid = "x"\n')
    result = check(path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}:4: ")


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    result = check(tmp_path / "nope.toml")
    assert result.returncode == 1 and "cannot read" in result.stderr


def test_device_needs_a_bus_or_url_and_a_matching_kind(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        textwrap.dedent("""\
        [[device]]
        id = "p"
        kind = "fan"
        driver = "modbus-relay"
        """)
    )
    plugins = PluginHost()
    plugins.load(entry_points=False)
    with pytest.raises(ConfigError) as err:
        load(path, plugins)
    messages = [str(i) for i in err.value.issues]
    assert any(":3: " in m and "drives a power, not a fan" in m for m in messages), messages
    assert any(":1: " in m and "needs a bus or a url" in m for m in messages), messages


@pytest.mark.parametrize("reserved", ["bridge", "scenes", "seats"])
def test_a_device_may_not_take_the_daemons_own_mqtt_segment(tmp_path: Path, reserved: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[[device]]\nid = "{reserved}"\nkind = "fan"\nurl = "tcp://127.0.0.1:502"\n'
        'driver = "vfd-fan"\n'
    )
    result = check(path)
    assert result.returncode == 1
    assert ":2: " in result.stderr and f"'{reserved}' is reserved" in result.stderr, result.stderr


def test_line_map_handles_nested_tables_and_multiline_values() -> None:
    text = textwrap.dedent("""\
        [[device]]
        id = "a"
        seq = [
          1,
          2,
        ]
        [device.options]
        channels = 4
        [[device]]
        id = "b"
        note = \"\"\"
        x = 1
        \"\"\"
        "quoted key" = 2
        [device.options]
        channels = 8
        """)
    lines = LineMap(text)
    assert lines.line_of(("device", 0, "options", "channels")) == 8
    assert lines.line_of(("device", 1, "id")) == 10
    assert lines.line_of(("device", 1, "quoted key")) == 14
    assert lines.line_of(("device", 1, "options", "channels")) == 16
    assert lines.line_of(("device", 1, "options", "missing")) == 15
