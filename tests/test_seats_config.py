"""`gridhall check-config` on computers, seats and walls: every wrong reference is
reported at its own line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from daemon.config import ConfigError, load
from daemon.pluginhost import PluginHost
from tests.seats_support import seats_config

BAD = """\
[[device]]
id = "kvm"
kind = "matrix"
driver = "ihse-draco"
url = "tcp://127.0.0.1:5555"
[device.options]
cpus = 8
consoles = 8

[[device]]
id = "fan"
kind = "fan"
driver = "modbus-fan"
url = "tcp://127.0.0.1:502"
[device.options]
run_register = 1
run_value = 1
stop_value = 0
speed_register = 2
speed_max = 100

[[computer]]
id = "a"
matrix = "kvm"
input = 9

[[computer]]
id = "b"
matrix = "fan"
input = 1

[[computer]]
id = "c"
matrix = "kvm"
input = 2
allow = [
  { role = "night-porter" },
  { operator = "x", modes = ["video"], share = ["full"] },
]

[[computer]]
id = "d"
matrix = "kvm"
input = 2

[[computer]]
id = "e"
matrix = "kvm"
input = 3
allow = [{ role = "operator", operator = "y" }]

[[seat]]
id = "s1"
matrix = "kvm"
computers = ["c", "zz"]
default_layout = "missing"
consoles = [
  { output = 1 },
  { output = 9 },
]
[[seat.layouts]]
id = "l1"
routes = [
  { console = 2, computer = "c" },
  { console = 1, computer = "d" },
]
[[seat.layouts]]
id = "l2"
routes = [
  { console = 1, computer = "c", mode = "private" },
  { console = 9, computer = "c", mode = "video" },
  { console = 1 },
]

[[wall]]
id = "s1"
matrix = "kvm"
outputs = [{ output = 2 }]

[[wall]]
id = "w2"
matrix = "kvm"
outputs = [{ output = 1 }]
"""

EXPECTED = [
    (25, "input 9: kvm has 8"),
    (29, "matrix 'fan' is a fan, not a matrix"),
    (37, "no role 'night-porter'"),
    (38, "share: only modes in its modes"),
    (44, "kvm input 2 is 'c' too"),
    (50, "give either role or operator"),
    (55, "no computer 'zz'"),
    (56, "no layout 'missing' in this seat"),
    (59, "output 9: kvm has 8"),
    (64, "layout l1: console 2 is not one of s1's"),
    (65, "layout l1: computer 'd' is not one of s1's"),
    (71, "layout l2: c is private on console 1, so the matrix would refuse it on console 9"),
    (72, "layout l2: console 1 is routed twice"),
    (76, "'s1' names both a seat and a wall"),
    (83, "kvm output 1 belongs to 's1' already"),
]


def test_every_bad_reference_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "gridhall.toml"
    path.write_text(BAD)
    plugins = PluginHost()
    plugins.load(entry_points=False)
    try:
        load(path, plugins)
    except ConfigError as exc:
        found = [(i.line, i.message) for i in exc.issues]
    else:
        raise AssertionError("the config loaded")
    for line, words in EXPECTED:
        assert any(n == line and words in m for n, m in found), (line, words, found)
    assert len(found) == len(EXPECTED), found


def test_the_test_hall_is_a_good_config(tmp_path: Path) -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    config = load(seats_config(tmp_path, "tcp://127.0.0.1:1"), plugins)
    assert [s.id for s in config.seat] == ["seat-1", "seat-2"]
    secure = next(c for c in config.computer if c.id == "secure-pc")
    assert [r.operator or r.role for r in secure.rights()] == ["li.wei", "facility"]
    duty = next(c for c in config.computer if c.id == "duty-pc")
    assert [(r.role, r.modes, r.share) for r in duty.rights()] == [
        ("operator", ["full", "video", "private"], ["video"])
    ]
    assert textwrap.dedent(BAD) == BAD  # the fixture's lines are the file's lines
