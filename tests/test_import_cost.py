"""What `gridhall run` loads: nothing heavy that the demo does not use.

The idle RSS aim (bench/bench_startup.py) is lost to a stray import of shapely and
numpy (about 20 MiB) long before anyone notices in a profile, so it is pinned here.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT

SCRIPT = """
import sys
from pathlib import Path
from daemon.cli import build_parser
from daemon.config import load
from daemon.pluginhost import PluginHost
from daemon.runtime import Daemon
plugins = PluginHost()
plugins.load()
build_parser(plugins)
Daemon(load(Path("etc/gridhall.toml"), plugins), plugins)
print(" ".join(m for m in ("numpy", "shapely") if m in sys.modules))
"""


def test_run_does_not_load_geometry_libraries() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
