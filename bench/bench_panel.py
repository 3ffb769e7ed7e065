"""The touch panel: how soon a change made through the API shows on the page, and how
soon the page is drawn, each beside a baseline measured in the same run.

What is measured, on the demo daemon (etc/gridhall.toml with free ports) as a process
and Debian's Chromium, headless, at 1280x800, signed in as a viewer on the power view:

* change -> page: an operator's `POST .../power-1/actions/on|off` (channel 6) is sent
  with httpx; a MutationObserver in the page stamps the moment the channel's tile
  changes (the state event came over the page's event stream and was drawn). Measured
  from just before the request; the baseline is the same request's own round trip
  (send to 200). The page may be first: the state event goes out when the board
  confirmed, the answer after the audit row is committed.
* load -> drawn: `page.reload()` until the power board's tiles show their state (the
  page, its modules, the manifest, the stream's snapshot), beside the baseline of the
  three calls a page cannot do without, fetched in turn with httpx: `/`,
  `/api/v1/panel`, `/api/v1/devices`.

p50 and p95 of each, and the ratios of the p50s. Clocks: the page stamps with
`performance.timeOrigin + now()`, Python with `time.time()`: both the system clock of
this machine.

Run: .venv/bin/python bench/bench_panel.py [--n 100] [--loads 10]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from panel_common import compare, drawn_after, sign_in  # noqa: E402

from tests.browser_support import DESK, chromium, demo_daemon  # noqa: E402

OBSERVE = """() => {
  window.changes = [];
  const tile = document.querySelector('[data-device="power-1"] button.tile[data-channel="6"]');
  new MutationObserver(() => window.changes.push(performance.timeOrigin + performance.now()))
    .observe(tile, {attributes: true, attributeFilter: ['aria-pressed']});
}"""
DRAWN = '[data-device="power-1"] button.tile[data-channel="6"][aria-pressed]'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="changes to time")
    parser.add_argument("--loads", type=int, default=10, help="page loads to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, demo_daemon(Path(tmp)) as demo, chromium() as b:
        context = b.new_context(viewport=DESK, locale="en-US")
        page = context.new_page()
        sign_in(page, demo.url, demo.tokens["viewer"], "power", DRAWN)

        # -- change -> page, beside the request's own round trip -------------------
        page.evaluate(OBSERVE)
        with demo.api("operator") as api:
            to_page, round_trip = drawn_after(
                page, "changes", args.n, lambda i: api.post(
                    f"/api/v1/devices/power-1/actions/{'off' if i % 2 else 'on'}",
                    json={"channel": 6}),
            )  # fmt: skip

        # -- load -> drawn, beside the calls a page cannot do without ---------------
        loads: list[float] = []
        calls: list[float] = []
        viewer = {"Authorization": f"Bearer {demo.tokens['viewer']}"}
        with httpx.Client(base_url=demo.url, timeout=10) as client:
            for _ in range(args.loads):
                start = time.perf_counter()
                page.reload()
                page.wait_for_selector(DRAWN)
                loads.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                client.get("/").raise_for_status()
                client.get("/api/v1/panel", headers=viewer).raise_for_status()
                client.get("/api/v1/devices", headers=viewer).raise_for_status()
                calls.append((time.perf_counter() - start) * 1000)
        context.close()

    print(
        f"gridhall panel bench, {datetime.date.today()}, {platform.machine()}, Python "
        f"{platform.python_version()}, Chromium headless at 1280x800"
    )
    compare(
        f"change made through the API -> drawn on the page ({args.n} changes):",
        "a change made through the API, drawn on the page, p50",
        ("page shows it (stream + draw)", to_page),
        ("the request's answer", round_trip),
        base="the request's own round trip (send to 200)",
    )
    compare(
        f"page load -> power view drawn with live state ({args.loads} loads):",
        "page load to the power view drawn with live state, p50",
        ("page drawn", loads),
        ("/, /panel, /devices", calls),
        base="/, /api/v1/panel and /api/v1/devices fetched in turn",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
