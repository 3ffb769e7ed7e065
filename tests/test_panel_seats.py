"""The panel's seats view in Debian's Chromium, headless, against the demo daemon as a
process, its KVM matrix (`kvm-1`) pointed at a Draco emulator of the test's own (on a
thread), so every result is read from the emulator's own connections, as
tests/test_seats.py does: the Draco's protocol has no command that reads them back.

The demo's seats (etc/gridhall.toml): dispatch-1 on consoles 1-3, dispatch-2 on 4-5,
the wall on 7-8; secure-pc (input 4) is facility's only. Tests set up what they need
through the API; none relies on another having run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.ihse.emulator import DracoEmulator, DracoEmulatorOptions
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
from tests.seats_support import connects
from tests.support import ThreadedEmulator, create_token_cli, free_port, wait_until

__all__ = ["browser", "panel"]  # fixtures
pytestmark = pytest.mark.timeout(300)

PATROL = {1: (2, "full"), 2: (3, "video"), 3: (1, "video")}  # the demo's "patrol" layout
HOTLINE = {4: (5, "full"), 5: (1, "video")}  # dispatch-2's "hotline"


def on_our_matrix(port: int) -> Any:
    """A config edit: kvm-1 talks to the emulator on `port` instead of the demo's."""

    def edit(text: str) -> str:
        found = re.search(r'id = "kvm-matrix"\n.*?listen = "127\.0\.0\.1:(\d+)"', text, re.S)
        assert found, "the demo has no kvm-matrix emulator"
        url = f'url = "tcp://127.0.0.1:{found.group(1)}"'
        assert text.count(url) == 1, url
        return text.replace(url, f'url = "tcp://127.0.0.1:{port}"')

    return edit


@pytest.fixture(scope="module")
def kvm() -> Iterator[ThreadedEmulator]:
    emu = DracoEmulator("127.0.0.1", free_port(), DracoEmulatorOptions(cpus=16, consoles=8))
    with ThreadedEmulator(emu) as threaded:
        yield threaded


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, kvm: ThreadedEmulator) -> Iterator[Demo]:
    with demo_daemon(tmp_path_factory.mktemp("seats-demo"), edit=on_our_matrix(kvm.port)) as d:
        for name, role in (("wang.fang", "operator"), ("zhao.min", "facility")):
            d.tokens[name] = create_token_cli(d.config, role, name)
        yield d


def consoles(kvm: ThreadedEmulator) -> dict[int, tuple[int, str]]:
    emu: DracoEmulator = kvm.emulator  # type: ignore[assignment]
    return dict(emu.consoles)


def shows(kvm: ThreadedEmulator, want: dict[int, tuple[int, str]]) -> bool:
    now = consoles(kvm)
    return all(now[c] == w for c, w in want.items())


def seat(panel: Panel, seat_id: str) -> Any:
    return panel.page.locator(f"section.card.seat[data-seat={seat_id}]")


def console(panel: Panel, seat_id: str, n: int) -> Any:
    return seat(panel, seat_id).locator(f".console[data-console='{n}']")


def recall(demo: Demo, seat_id: str, layout: str) -> None:
    with demo.api("operator") as api:
        r = api.post(f"/api/v1/seats/{seat_id}/layouts/{layout}/recall")
        assert r.status_code == 200, r.text


def test_a_touch_on_a_layout_recalls_it_on_the_matrix(
    panel: Panel, demo: Demo, kvm: ThreadedEmulator
) -> None:
    recall(demo, "dispatch-1", "dispatch")
    panel.login("operator", "seats")
    card = seat(panel, "dispatch-1")
    panel.expect(card.locator("button.layout[data-layout=dispatch]")).to_have_attribute(
        "aria-pressed", "true"
    )
    patrol = card.locator("button.layout[data-layout=patrol]")
    patrol.tap()
    wait_until(lambda: shows(kvm, PATROL))
    panel.expect(patrol).to_have_attribute("aria-pressed", "true")
    panel.expect(console(panel, "dispatch-1", 2).locator(".shows")).to_have_text(
        "Grid map PC · Video only"
    )
    # One console, in the mode picked first: the grid map on the left, video only.
    card.locator("button.seg[data-mode=video]").tap()
    left = console(panel, "dispatch-1", 1)
    left.locator("button.computer[data-computer=gis-pc]").tap()
    wait_until(lambda: consoles(kvm)[1] == (3, "video"))
    panel.expect(left.locator(".shows")).to_have_text("Grid map PC · Video only")
    panel.expect(left.locator("button[data-computer=gis-pc]")).to_have_attribute(
        "aria-pressed", "true"
    )
    panel.expect(patrol).to_have_attribute("aria-pressed", "false")  # no longer the layout
    # Dark: the console shows nothing.
    left.locator("button.computer.dark").tap()
    wait_until(lambda: consoles(kvm)[1][0] == 0)
    panel.expect(left.locator(".shows")).to_have_text("Dark")


def test_refusals_are_shown_with_their_reasons_and_nothing_reaches_the_matrix(
    panel: Panel, demo: Demo, kvm: ThreadedEmulator
) -> None:
    recall(demo, "dispatch-1", "dispatch")
    panel.login("operator", "seats")
    emu: DracoEmulator = kvm.emulator  # type: ignore[assignment]
    sent = len(connects(emu))
    # The secure computer is facility's: an operator's touch is refused (403) by the
    # daemon before the matrix hears of it. It is marked, not hidden.
    secure = console(panel, "dispatch-1", 3).locator("button[data-computer=secure-pc]")
    panel.expect(secure).to_have_class(re.compile(r"\boutside\b"))
    secure.tap()
    notice = panel.page.locator(".notice.refused").first
    panel.expect(notice).to_contain_text("Not allowed: Dispatch 1")
    panel.expect(notice).to_contain_text("may not reach the computer Secure network PC (secure-pc)")
    assert len(connects(emu)) == sent and consoles(kvm)[3] == (5, "full")
    panel.page.locator(".notice .notice-close").first.tap()

    # A private connection: while dispatch-1 holds the duty PC privately, the matrix
    # refuses it to dispatch-2 (409), and the page says the matrix's reason.
    with demo.api("operator") as api:
        body = {"console": 1, "computer": "duty-pc", "mode": "private"}
        assert api.post("/api/v1/seats/dispatch-1/route", json=body).status_code == 200
    right = console(panel, "dispatch-2", 5)
    right.locator("button[data-computer=duty-pc]").tap()
    notice = panel.page.locator(".notice.refused").first
    panel.expect(notice).to_contain_text("Refused: Dispatch 2")
    panel.expect(notice).to_contain_text("console 1 holds CPU 1 in private")
    assert consoles(kvm)[1] == (1, "private") and consoles(kvm)[5][0] != 1
    recall(demo, "dispatch-1", "dispatch")


def test_a_push_shows_the_watcher_on_the_owners_seat_without_a_reload(
    panel: Panel, demo: Demo, kvm: ThreadedEmulator
) -> None:
    recall(demo, "dispatch-1", "dispatch")
    panel.login("viewer", "seats")
    panel.page.evaluate("window.loadedOnce = true")
    card = seat(panel, "dispatch-1")
    for button in ("button.layout", "button.computer", "button.push"):  # a viewer's
        panel.expect(card.locator(button).first).to_be_disabled()
    with demo.api("operator") as api:
        body = {"computer": "gis-pc", "target": "wall", "output": 8, "mode": "full"}
        r = api.post("/api/v1/seats/dispatch-1/push", json=body)
        assert r.status_code == 200, r.text
    wait_until(lambda: consoles(kvm)[8] == (3, "full"))
    watcher = card.locator("ul.watchers li[data-output='8']")
    panel.expect(watcher).to_contain_text("Grid map PC → Video wall · wall right · Full")
    panel.expect(watcher).to_contain_text("pushed by test")
    wall = panel.page.locator("section.card.wall[data-wall=wall] li[data-output='8']")
    panel.expect(wall).to_contain_text("Grid map PC · Full")
    # Once the output shows something else, the watcher is gone.
    with demo.api("operator") as api:
        r = api.post("/api/v1/devices/kvm-1/actions/route", json={"input": 0, "output": 8})
        assert r.status_code == 200, r.text
    panel.expect(watcher).to_have_count(0)
    assert panel.page.evaluate("window.loadedOnce") is True


def test_a_push_from_the_page_reaches_the_other_seat(
    panel: Panel, demo: Demo, kvm: ThreadedEmulator
) -> None:
    recall(demo, "dispatch-1", "dispatch")
    panel.login("operator", "seats")
    card = seat(panel, "dispatch-1")
    card.locator("select.push-computer").select_option("duty-pc")
    card.locator("select.push-target").select_option("dispatch-2:5")
    panel.expect(card.locator("select.push-mode option")).to_have_count(1)  # video only
    card.locator("button.push").tap()
    wait_until(lambda: consoles(kvm)[5] == (1, "video"))
    watcher = card.locator("ul.watchers li[data-output='5']")
    panel.expect(watcher).to_contain_text("Duty PC → Dispatch 2 · right")  # (who sits there)
    panel.expect(watcher).to_contain_text("· Video only · pushed by test")
    panel.expect(console(panel, "dispatch-2", 5).locator(".shows")).to_have_text(
        "Duty PC · Video only"
    )


def test_a_login_restores_the_operators_own_layout(
    panel: Panel, demo: Demo, kvm: ThreadedEmulator
) -> None:
    with demo.api("wang.fang") as api:  # nobody seated, no profile kept, whatever ran before
        api.post("/api/v1/seats/dispatch-2/logout")
        api.delete("/api/v1/seats/dispatch-2/my-layouts/profile")
    panel.login("wang.fang", "seats")
    card = seat(panel, "dispatch-2")
    panel.expect(card.locator(".seated")).to_have_text("Nobody logged in")
    # No profile yet: the seat's default layout comes back.
    card.locator("button.seat-login").tap()
    panel.expect(panel.page.locator(".notice.info").first).to_contain_text(
        "wang.fang logged in at Dispatch 2; layout hotline restored"
    )
    wait_until(lambda: shows(kvm, HOTLINE))
    panel.expect(card.locator(".seated")).to_contain_text("wang.fang")
    panel.expect(card.locator("button.seat-login")).to_be_hidden()
    # The operator's own arrangement, kept at logout as their profile ...
    console(panel, "dispatch-2", 4).locator("button[data-computer=video-pc]").tap()
    wait_until(lambda: consoles(kvm)[4] == (2, "full"))
    card.locator("button.seat-logout").tap()
    panel.expect(card.locator(".seated")).to_have_text("Nobody logged in")
    panel.expect(card.locator("button.layout[data-layout=profile]")).to_have_text("My profile")
    # ... and restored at the next login, whatever the consoles show meanwhile.
    recall(demo, "dispatch-2", "hotline")
    card.locator("button.seat-login").tap()
    wait_until(lambda: consoles(kvm)[4] == (2, "full"))
    panel.expect(console(panel, "dispatch-2", 4).locator(".shows")).to_have_text(
        "Video patrol PC · Full"
    )


def test_layouts_are_saved_as_the_operators_own_or_for_the_seat(
    browser: Any, panel: Panel, demo: Demo, kvm: ThreadedEmulator
) -> None:
    recall(demo, "dispatch-1", "patrol")
    panel.login("operator", "seats")
    card = seat(panel, "dispatch-1")
    panel.expect(card.locator("button.save-seat")).to_have_count(0)  # facility's
    card.locator("input.text").fill("Morning watch")
    card.locator("button.save-mine").tap()
    mine = card.locator(".layouts[data-owner=mine] button[data-layout=morning-watch]")
    panel.expect(mine).to_have_text("Morning watch")
    recall(demo, "dispatch-1", "dispatch")
    wait_until(lambda: consoles(kvm)[1] == (1, "full"))
    mine.tap()
    wait_until(lambda: shows(kvm, PATROL))

    # Facility saves one for the seat (a name in Chinese gets an id of its own); every
    # page shows it at once (seats.layouts), this operator's included.
    with panel_on(browser, demo) as facility:
        facility.login("zhao.min", "seats")
        other = seat(facility, "dispatch-1")
        other.locator("input.text").fill("夜班")
        other.locator("button.save-seat").tap()
        saved = ".layouts[data-owner=seat] button.layout:text('夜班')"
        facility.expect(other.locator(saved)).to_have_count(1)
        panel.expect(card.locator(saved)).to_have_count(1)


def test_consoles_are_unknown_after_the_matrix_reconnects(
    panel: Panel, demo: Demo, kvm: ThreadedEmulator
) -> None:
    recall(demo, "dispatch-1", "dispatch")
    panel.login("operator", "seats")
    card = seat(panel, "dispatch-1")
    shows_left = console(panel, "dispatch-1", 1).locator(".shows")
    panel.expect(shows_left).to_have_text("Duty PC · Full")
    kvm.call(kvm.emulator.stop())  # the matrix's network drops; its connections stay
    try:
        panel.expect(card).to_have_class(re.compile(r"\bunavailable\b"))
        panel.expect(card.locator("button.layout").first).to_be_disabled()
    finally:
        kvm.call(kvm.emulator.start())
    panel.expect(card).not_to_have_class(re.compile(r"\bunavailable\b"))
    # What the daemon knew before may no longer hold: shown unknown, not stale.
    panel.expect(shows_left).to_have_text("unknown")
    panel.expect(shows_left).to_have_attribute("data-known", "false")
    panel.expect(card.locator("button.computer[aria-pressed=true]")).to_have_count(0)
    card.locator("button.layout[data-layout=dispatch]").tap()
    panel.expect(shows_left).to_have_text("Duty PC · Full")


@pytest.mark.parametrize("size,viewport,locale", SIZES)
def test_the_seats_view_fits_a_finger_and_the_screen(
    browser: Any, demo: Demo, size: str, viewport: dict[str, int], locale: str
) -> None:
    """With screenshots (in tests/artifacts/panel/): targets of at least 44 px, the
    selects included; nothing wider than the screen."""
    recall(demo, "dispatch-1", "dispatch")
    with demo.api("operator") as api:
        body = {"computer": "gis-pc", "target": "wall", "output": 7}
        assert api.post("/api/v1/seats/dispatch-1/push", json=body).status_code == 200
    with panel_on(browser, demo, viewport, locale) as p:
        p.login("operator", "seats")
        p.expect(seat(p, "dispatch-1").locator("ul.watchers li[data-output='7']")).to_be_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{size}-seats-live.png"
        p.page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 1000
        small, wide = misfits(p.page, "main button, main input, main select")
        assert not small, small
        assert wide <= 0, wide
    print(f"\nseats screenshots: {Path(ARTIFACTS)}")
