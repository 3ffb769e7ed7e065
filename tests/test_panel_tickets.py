"""The ticket plugin's alert strip in Debian's Chromium, headless, against the demo
daemon as a process. The deadline watcher runs on the real clock, so the demo's
categories get two of a few seconds (an hour's deadline scaled down, as the demo's
own `drill.major` is) and the reminder comes at 90 % of the time given:

| category    | deadline | reminder | overdue |
|-------------|----------|----------|---------|
| test.soon   | 6 s      | 0.6 s    | 6 s     |
| test.later  | 36 s     | 3.6 s    | 36 s    |

and a community whistle type, `test-quick`, that must be answered within 6 s.

Every alert shown was said by the watcher itself (or read back from the overdue
board); tests create tickets of their own and look only at those."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import (
    ARTIFACTS,
    SIZES,
    Demo,
    Panel,
    browser,
    demo_daemon,
    misfits,
    panel,
    panel_on,
)
from tests.support import ROOT, wait_until

__all__ = ["browser", "panel"]  # fixtures
pytestmark = pytest.mark.timeout(300)

CATEGORIES = """
[[category]]
code = "test.soon"
name = "测试(六秒到期)"
tier = "simple"
deadline = "0.1m"

[[category]]
code = "test.later"
name = "测试(半分钟到期)"
tier = "simple"
deadline = "0.6m"

[[whistle]]
level = "community"
code = "test-quick"
name = "测试哨(六秒报到)"
deadline = "0.1m"
departments = ["sanitation"]
escalate_to = "problem"
"""


def fast_deadlines(folder: Path) -> Any:
    """A config edit: the demo's categories and two quick ones, reminders at 90 %."""
    categories = folder / "categories.toml"
    categories.write_text((ROOT / "etc" / "tickets" / "categories.toml").read_text() + CATEGORIES)

    def edit(text: str) -> str:
        text, n = re.subn(r'^categories = ".*"', f'categories = "{categories}"', text, flags=re.M)
        assert n == 1
        assert 'reminder = "20%"' in text
        return text.replace('reminder = "20%"', 'reminder = "90%"')

    return edit


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("tickets-demo")
    with demo_daemon(tmp / "hall", edit=fast_deadlines(tmp)) as d:
        yield d


def report(demo: Demo, category: str) -> int:
    with demo.api("admin") as api:
        r = api.post("/api/v1/tickets", json={"category": category, "description": "测试"})
        assert r.status_code == 201, r.text
        ticket: int = r.json()["id"]
        return ticket


def strip(panel: Panel) -> Any:
    return panel.page.locator("section.strip[data-view=tickets]")


def alert(panel: Panel, ticket: int) -> Any:
    return strip(panel).locator(f"button.ticket-alert[data-ticket='{ticket}']")


def shown_order(panel: Panel) -> list[str]:
    order: list[str] = panel.page.evaluate(
        "() => [...document.querySelectorAll('button.ticket-alert')]"
        ".map((b) => b.dataset.whistle ? `w${b.dataset.whistle}` : b.dataset.ticket)"
    )
    return order


def test_alerts_appear_without_a_reload_most_severe_first(panel: Panel, demo: Demo) -> None:
    panel.login("operator", "scenes")
    panel.page.evaluate("window.loadedOnce = true")
    panel.expect(strip(panel)).to_contain_text("Ticket alerts")
    soon, later = report(demo, "test.soon"), report(demo, "test.later")
    overdue = alert(panel, soon)
    panel.expect(overdue).to_have_attribute("data-kind", "overdue")
    panel.expect(overdue).to_contain_text("Overdue · community")
    panel.expect(overdue).to_contain_text(f"Ticket {soon} 测试(六秒到期)")
    reminder = alert(panel, later)
    panel.expect(reminder).to_have_attribute("data-kind", "reminder")
    panel.expect(reminder).to_contain_text("Near deadline")
    order = shown_order(panel)
    assert order.index(str(soon)) < order.index(str(later)), order

    # A touch opens the ticket's card, read from the API.
    overdue.tap()
    card = strip(panel).locator("dialog.ticket-card")
    panel.expect(card).to_be_visible()
    panel.expect(card.locator("h2")).to_have_text(f"Ticket {soon} · 测试(六秒到期)")
    panel.expect(card.locator("dd[data-field=state]")).to_have_text("collected")
    panel.expect(card.locator("dd[data-field=level]")).to_have_text("community")
    panel.expect(card.locator("dd[data-field=description]")).to_have_text("测试")
    panel.expect(card.locator("ol.history li")).to_contain_text(["collect"])
    card.locator("button.close").tap()
    panel.expect(card).to_be_hidden()

    # A ticket done leaves the strip (tickets.changed), the others stay.
    with demo.api("admin") as api:
        r = api.post(f"/api/v1/tickets/{soon}/invalidate", json={"reason": "a test"})
        assert r.status_code == 200, r.text
    panel.expect(overdue).to_have_count(0)
    panel.expect(reminder).to_have_count(1)
    assert panel.page.evaluate("window.loadedOnce") is True


def test_a_page_opened_later_is_seeded_from_the_overdue_board(browser: Any, demo: Demo) -> None:
    soon, later = report(demo, "test.soon"), report(demo, "test.later")

    def said() -> bool:  # the watcher's own record: the overdue board's rows
        with demo.api("viewer") as api:
            board = api.get("/api/v1/tickets/overdue", params={"within_h": 1}).json()
        rows = {t["id"]: t for t in board["tickets"]}
        return (
            rows.get(soon, {}).get("escalation") == 1
            and rows.get(later, {}).get("reminded_at") is not None
        )

    wait_until(said)
    # Both were said before this page existed: what it shows it read from the board.
    with panel_on(browser, demo) as p:
        p.login("viewer", "schedules")
        p.expect(alert(p, soon)).to_have_attribute("data-kind", "overdue")
        p.expect(alert(p, soon)).to_have_attribute("data-level", "community")
        p.expect(alert(p, later)).to_have_attribute("data-kind", "reminder")
        order = shown_order(p)
        assert order.index(str(soon)) < order.index(str(later)), order


def test_an_unanswered_whistle_is_shown_above_the_overdue(panel: Panel, demo: Demo) -> None:
    soon = report(demo, "test.soon")
    panel.login("operator", "scenes")
    panel.expect(alert(panel, soon)).to_have_attribute("data-kind", "overdue")
    later = report(demo, "test.later")
    panel.expect(alert(panel, later)).to_have_attribute("data-kind", "reminder")
    # A real whistle on the later ticket: nobody reports in within its 6 s, so the
    # watcher raises it unanswered and takes it up to the street.
    with demo.api("admin") as api:
        body = {"level": "community", "type": "test-quick", "ticket": later, "note": "测试"}
        r = api.post("/api/v1/tickets/whistles", json=body)
        assert r.status_code == 201, r.text
        blown = r.json()["id"]
    whistle = strip(panel).locator(f"button.ticket-alert[data-whistle='{blown}']")
    panel.expect(whistle).to_contain_text("Whistle unanswered · street")
    panel.expect(whistle).to_contain_text(f"Whistle {blown}")
    order = shown_order(panel)
    # Overdue above an unanswered whistle, above a deadline still to come.
    assert order.index(str(soon)) < order.index(f"w{blown}") < order.index(str(later)), order
    whistle.tap()
    card = strip(panel).locator("dialog.ticket-card")
    panel.expect(card.locator("h2")).to_have_text(f"Ticket {later} · 测试(半分钟到期)")
    card.locator("button.close").tap()
    # Every department called reports in: the whistle is answered and leaves the strip.
    with demo.api("admin") as api:
        calls = api.get(f"/api/v1/tickets/whistles/{blown}").json()["calls"]
        assert calls, "the whistle called nobody"
        for call in calls:
            if call.get("reported_at") is None:
                r = api.post(
                    f"/api/v1/tickets/whistles/{blown}/report-in",
                    json={"department": call["department"], "note": "已到"},
                )
                assert r.status_code == 200, r.text
        assert api.get(f"/api/v1/tickets/whistles/{blown}").json()["state"] == "answered"
    panel.expect(whistle).to_have_count(0)
    panel.expect(alert(panel, later)).to_have_count(1)


@pytest.mark.parametrize("size,viewport,locale", SIZES)
def test_the_strip_fits_a_finger_and_the_screen(
    browser: Any, demo: Demo, size: str, viewport: dict[str, int], locale: str
) -> None:
    """With screenshots (in tests/artifacts/panel/): alerts of at least 44 px, scrolling
    inside the strip, never the page; in Chinese on the phone."""
    tickets = [report(demo, "test.soon") for _ in range(6)]
    with panel_on(browser, demo, viewport, locale) as p:
        p.login("operator", "scenes")
        for ticket in tickets:
            p.expect(alert(p, ticket)).to_have_attribute("data-kind", "overdue")
        if locale == "zh-CN":
            p.expect(alert(p, tickets[0])).to_contain_text("超期 · 社区")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        p.page.screenshot(path=ARTIFACTS / f"{size}-tickets-strip.png")
        alert(p, tickets[0]).tap()
        p.expect(strip(p).locator("dialog.ticket-card dd[data-field=state]")).to_be_visible()
        p.page.screenshot(path=ARTIFACTS / f"{size}-tickets-card.png")
        p.page.keyboard.press("Escape")
        small, wide = misfits(p.page, "section.strip button")
        assert not small, small
        assert wide <= 0, wide
    print(f"\nstrip screenshots: {ARTIFACTS}")


def without_tickets(text: str) -> str:
    """A config edit: the hall blocks the ticket plugin, and so has no [tickets]."""
    text, n = re.subn(r"(?ms)^# -- tickets .*?(?=^# -- time bank)", "", text)
    assert n == 1
    return text + '\n[plugins]\nblock = ["plugins.tickets"]\n'


def test_the_strip_is_absent_where_the_plugin_is_blocked(browser: Any, tmp_path: Path) -> None:
    with demo_daemon(tmp_path, edit=without_tickets) as blocked:
        with blocked.api("viewer") as api:
            views = [v["id"] for v in api.get("/api/v1/panel").json()["views"]]
            assert "tickets" not in views and "seats" in views
            assert api.get("/api/v1/tickets/overdue").status_code == 404
        with panel_on(browser, blocked) as p:
            p.login("operator", "scenes")
            p.expect(p.page.locator("section.card.scene").first).to_be_visible()
            p.expect(p.page.locator("section.strip")).to_have_count(0)
            assert not [u for u in p.requests if "/api/v1/tickets" in u]
