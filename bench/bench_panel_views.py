"""The panel's seats view and ticket strip: how soon what happened in the hall is drawn,
each beside a baseline measured in the same run.

On the demo daemon (etc/gridhall.toml with free ports, its categories plus one due
three seconds after a report) as a process, and Debian's Chromium, headless, at
1280x800, signed in as a viewer on the seats view:

* seat route -> seats view: an operator's `POST /api/v1/seats/dispatch-2/route`
  (console 4 to the duty PC, then the video PC, in turn) until the page has drawn what
  the console shows (a MutationObserver stamps it: the `seats.state` event came over
  the page's stream and was drawn). Baseline: the same request's own round trip (send
  to 200); the page may be first, as `seats.state` goes out before the answer.
* deadline -> strip: tickets due three seconds after their report, one every 0.25 s;
  from each one's deadline until the strip shows it overdue (stamped by a
  MutationObserver on the strip). Baseline: the same `tickets.overdue` event read off
  `GET /api/v1/events` by a plain client (httpx, in a process of its own): what any
  client would get. Both include the deadline watcher's own wake-up; the ratio is what the page
  adds. Clocks: the page stamps with `performance.timeOrigin + now()`, Python with
  `time.time()`, the deadline is the daemon's `due_at`: all the system clock here.

p50 and p95 of each, and the ratios of the p50s.

Run: .venv/bin/python bench/bench_panel_views.py [--n 100] [--tickets 20]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from panel_common import compare, drawn_after, sign_in  # noqa: E402

from tests.browser_support import DESK, Demo, chromium, demo_daemon  # noqa: E402

FAST = '\n[[category]]\ncode = "bench.fast"\nname = "bench"\ntier = "simple"\ndeadline = "0.05m"\n'
ROUTE_SHOWN = """() => {
  window.routes = [];
  const seat = document.querySelector('[data-seat="dispatch-2"]');
  const shows = seat.querySelector('.console[data-console="4"] .shows');
  new MutationObserver(() => window.routes.push(performance.timeOrigin + performance.now()))
    .observe(shows, {childList: true, characterData: true, subtree: true});
}"""
OVERDUE_SHOWN = """() => {
  window.overdue = {};
  const strip = document.querySelector('section.strip[data-view="tickets"]');
  new MutationObserver(() => {
    const now = performance.timeOrigin + performance.now();
    for (const b of strip.querySelectorAll('button.ticket-alert[data-kind="overdue"]')) {
      window.overdue[b.dataset.ticket] ??= now;
    }
  }).observe(strip, {childList: true, subtree: true, attributes: true});
}"""


def fast_tickets(folder: Path) -> Any:
    categories = folder / "categories.toml"
    categories.write_text((ROOT / "etc" / "tickets" / "categories.toml").read_text() + FAST)

    def edit(text: str) -> str:
        return re.sub(r'^categories = ".*"', f'categories = "{categories}"', text, flags=re.M)

    return edit


# A plain client on the event stream, in a process of its own (so neither the browser's
# driver nor this script's threads stand in its way): prints when each `tickets.overdue`
# arrived, `<ticket> <ms since the epoch>`, after a first line once it is connected.
LISTEN = """
import json, sys, time, httpx
url, token = sys.argv[1], sys.argv[2]
headers = {"Authorization": f"Bearer {token}"}
with httpx.Client(base_url=url, timeout=None) as client:
    with client.stream("GET", "/api/v1/events", headers=headers) as r:
        event = ""
        for text in r.iter_lines():
            if text.startswith("event: "):
                event = text[7:]
                if event == "snapshot":
                    print("ready", flush=True)
            elif text.startswith("data: ") and event == "tickets.overdue":
                at = time.time() * 1000
                print(json.loads(text[6:])["data"]["ticket"], at, flush=True)
"""


def seat_routes(page: Any, demo: Demo, n: int) -> tuple[list[float], list[float]]:
    page.evaluate(ROUTE_SHOWN)
    with demo.api("operator") as api:
        return drawn_after(
            page, "routes", n, lambda i: api.post("/api/v1/seats/dispatch-2/route",
                json={"console": 4, "computer": "duty-pc" if i % 2 else "video-pc"}),
        )  # fmt: skip


def overdue_alerts(page: Any, demo: Demo, n: int) -> tuple[list[float], list[float]]:
    args = [sys.executable, "-c", LISTEN, demo.url, demo.tokens["viewer"]]
    listener = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert listener.stdout is not None
    assert listener.stdout.readline().strip() == "ready"
    page.evaluate(OVERDUE_SHOWN)
    due: dict[int, float] = {}
    with demo.api("admin") as api:
        for _ in range(n):
            r = api.post("/api/v1/tickets", json={"category": "bench.fast"})
            r.raise_for_status()
            due[r.json()["id"]] = r.json()["due_at"] * 1000
            time.sleep(0.25)
    seen: dict[int, float] = {}
    while len(seen) < n:  # the stream's (the daemon stops it if one never comes)
        ticket, at = listener.stdout.readline().split()
        seen[int(ticket)] = float(at)
    listener.terminate()
    listener.wait()
    deadline = time.monotonic() + 30
    while page.evaluate("Object.keys(window.overdue).length") < n:
        if time.monotonic() > deadline:
            raise SystemExit("some alerts were never drawn")
        time.sleep(0.05)
    drawn = page.evaluate("window.overdue")
    strip = [drawn[str(t)] - at for t, at in due.items()]
    stream = [seen[t] - at for t, at in due.items()]
    return strip, stream


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="seat routes to time")
    parser.add_argument("--tickets", type=int, default=20, help="overdue alerts to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edit = fast_tickets(Path(tmp))
        with demo_daemon(Path(tmp) / "hall", edit=edit) as demo, chromium() as b:
            context = b.new_context(viewport=DESK, locale="en-US")
            page = context.new_page()
            shows = '[data-seat="dispatch-2"] .console[data-console="4"] .shows'
            sign_in(page, demo.url, demo.tokens["viewer"], "seats", shows)
            page.wait_for_selector('section.strip[data-view="tickets"] .badge')
            to_page, round_trip = seat_routes(page, demo, args.n)
            strip, stream = overdue_alerts(page, demo, args.tickets)
            context.close()

    print(
        f"gridhall panel views bench, {datetime.date.today()}, {platform.machine()}, Python "
        f"{platform.python_version()}, Chromium headless at 1280x800"
    )
    compare(
        f"seat route through the API -> drawn on the seats view ({args.n} routes):",
        "a seat's route drawn on the seats view, p50",
        ("page shows it (seats.state + draw)", to_page),
        ("the request's answer", round_trip),
        base="the request's own round trip (send to 200)",
    )
    compare(
        f"ticket deadline -> shown overdue ({args.tickets} tickets, from each due_at):",
        "a ticket's deadline to the strip showing it overdue, p50",
        ("strip shows it (stream + draw)", strip),
        ("a plain client on the stream", stream),
        base="the same event read off /api/v1/events by a plain client",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
