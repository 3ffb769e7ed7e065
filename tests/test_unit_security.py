"""The unit's sandbox, as `systemd-analyze security` scores it: never worse than the
level docs/install.md records (section 11, "The sandbox")."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.support import ROOT

UNIT = ROOT / "systemd" / "gridhall.service"
DOC = ROOT / "docs" / "install.md"
LEVEL = re.compile(r"Overall exposure level for gridhall\.service: (\d+\.\d)")


def test_the_exposure_is_no_worse_than_documented() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine (apt-get install systemd)")
    out = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = LEVEL.search(out.stdout)
    assert found, f"no exposure level in systemd-analyze's answer:\n{out.stdout}{out.stderr}"
    documented = LEVEL.search(DOC.read_text(encoding="utf-8"))
    assert documented, "docs/install.md must record the level (section 11)"
    measured, recorded = float(found[1]), float(documented[1])
    exposed = "\n".join(line for line in out.stdout.splitlines() if line.startswith("✗"))
    assert measured <= recorded, (
        f"systemd/gridhall.service scores {measured}, worse than the {recorded} that "
        f"docs/install.md records; what it exposes now:\n{exposed}"
    )
