"""What the touch panel's benches share: signing a page in, timing changes until the
page draws them, and printing a figure beside its baseline.

The benches run as scripts, so they import this module by its bare name; it needs no
browser of its own (a Playwright page is passed in).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common import pct, record


def sign_in(page: Any, url: str, token: str, view: str, drawn: str) -> None:
    """Sign the page in with `token`, go to `view` and wait for `drawn` (a selector)."""
    page.goto(f"{url}/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_selector(".link[data-status=live]")
    page.goto(f"{url}/#/{view}")
    page.wait_for_selector(drawn)


def drawn_after(
    page: Any, marks: str, n: int, send: Callable[[int], Any]
) -> tuple[list[float], list[float]]:
    """`n` changes, each made by `send(i)` (an HTTP request, after one as a warm-up):
    ms from its send to the page's mark of it (`window.<marks>[i]`, pushed by a
    MutationObserver the bench installed), and ms from its send to its answer."""
    to_page: list[float] = []
    round_trip: list[float] = []
    for i in range(n + 1):
        sent = time.time() * 1000
        r = send(i)
        answered = time.time() * 1000
        r.raise_for_status()
        deadline = time.monotonic() + 10
        while page.evaluate(f"window.{marks}.length") <= i:
            if time.monotonic() > deadline:
                raise SystemExit(f"change {i} never showed on the page")
            time.sleep(0.002)
        shown = page.evaluate(f"window.{marks}[{i}]")
        if i:  # the first is a warm-up
            to_page.append(shown - sent)
            round_trip.append(answered - sent)
    return to_page, round_trip


def line(name: str, values: list[float]) -> str:
    return f"  {name:<40} p50 {pct(values, 50):7.1f} ms   p95 {pct(values, 95):7.1f} ms"


def compare(
    heading: str, figure: str, measured: tuple[str, list[float]],
    baseline: tuple[str, list[float]], base: str,
) -> None:  # fmt: skip
    """Print a figure's series beside its baseline's and the ratio of their p50s, and
    record the p50 for the report (issue 11, the panel's)."""
    (label, values), (base_label, base_values) = measured, baseline
    print(heading)
    print(line(label, values))
    print(line(f"baseline: {base_label}", base_values))
    print(f"  ratio p50: {pct(values, 50) / pct(base_values, 50):.2f}")
    record(11, figure, pct(values, 50), "ms", pct(base_values, 50), base=base)
