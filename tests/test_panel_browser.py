"""The touch panel in Debian's Chromium, headless, against the demo daemon as a process:
what a person at a wall panel or on a phone sees and touches, checked against the
emulators' own state and the daemon's API. Every request the page makes is recorded;
it asks nothing of any host but the daemon. Screenshots of the main views are saved
(the folder is printed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from tests.browser_support import (
    ARTIFACTS,
    DESK,
    SIZES,
    Demo,
    Panel,
    browser,
    demo_daemon,
    extron_route,
    misfits,
    open_panel,
    panel,
    write_entry_point,
)
from tests.support import free_port, wait_until

__all__ = ["browser", "panel"]  # fixtures
pytestmark = pytest.mark.timeout(300)

# A projector nobody answers for: the page must show it unavailable and not pressable.
DEAD_PROJECTOR = """
[[device]]
id = "screen-9"
kind = "screen"
driver = "pjlink"
url = "tcp://127.0.0.1:{port}"
name = "Spare projector"
[device.options]
inputs = {{ hdmi1 = "31" }}
"""
VIEWS = ["matrix", "seats", "screens", "power", "climate", "scenes", "schedules"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("panel-demo")
    with demo_daemon(tmp, DEAD_PROJECTOR.format(port=free_port())) as d:
        yield d


def test_a_touch_on_a_route_changes_the_emulators_state(panel: Panel, demo: Demo) -> None:
    panel.login("operator", "matrix")
    cell = panel.card("matrix-1").locator("button.cell[data-output='3'][data-input='6']")
    cell.tap()
    panel.expect(cell).to_have_attribute("aria-pressed", "true")
    port = demo.emulator_port("video-matrix")
    wait_until(lambda: extron_route(port, 3) == 6)
    # Untie it again with one touch on the row's "off".
    off = panel.card("matrix-1").locator("button.cell[data-output='3'][data-input='0']")
    off.tap()
    panel.expect(off).to_have_attribute("aria-pressed", "true")
    wait_until(lambda: extron_route(port, 3) == 0)

    # A KVM: the mode picked first is the mode the console gets, shown on its row.
    kvm = panel.card("kvm-1")
    kvm.locator("button.seg[data-mode=video]").tap()
    kvm.locator("button.cell[data-output='2'][data-input='7']").tap()
    panel.expect(kvm.locator("tbody tr").nth(1).locator(".route-mode")).to_have_text("Video only")
    with demo.api("viewer") as api:
        state = api.get("/api/v1/devices/kvm-1").json()["state"]
    assert state["routes"]["2"] == 7 and state["modes"]["2"] == "video"


def test_a_change_through_the_api_appears_without_a_reload(panel: Panel, demo: Demo) -> None:
    panel.login("viewer", "power")
    panel.page.evaluate("window.loadedOnce = true")
    tile = panel.card("power-1").locator("button.tile[data-channel='5']")
    panel.expect(tile).to_be_disabled()  # a viewer's controls cannot be pressed
    panel.expect(panel.page.locator(".readonly")).to_be_visible()
    with demo.api("operator") as api:
        assert api.post("/api/v1/devices/power-1/actions/on", json={"channel": 5}).is_success
        panel.expect(tile).to_have_attribute("aria-pressed", "true")
        assert api.post("/api/v1/devices/power-1/actions/off", json={"channel": 5}).is_success
        panel.expect(tile).to_have_attribute("aria-pressed", "false")

        panel.show("climate")
        r = api.post("/api/v1/devices/fan-1/actions/set_speed", json={"percent": 40})
        assert r.is_success
        panel.expect(panel.card("fan-1").locator(".readout")).to_contain_text("40%")

        panel.show("scenes")
        assert api.post("/api/v1/scenes/briefing/run").status_code == 202
        scene = panel.page.locator("section.card.scene[data-scene=briefing]")
        panel.expect(scene).to_have_attribute("data-status", "done")
        panel.expect(scene.locator("li.step[data-path='2']")).to_have_attribute(
            "data-status", "done"
        )
    assert panel.page.evaluate("window.loadedOnce") is True


def test_an_interlock_refusal_is_shown_with_its_reason(panel: Panel, demo: Demo) -> None:
    with demo.api("operator") as api:
        assert api.post("/api/v1/devices/power-1/actions/on", json={"channel": 3}).is_success
        assert api.post("/api/v1/devices/screen-1/actions/on").is_success  # warming up
    panel.login("operator", "power")
    tile = panel.card("power-1").locator("button.tile[data-channel='3']")
    panel.expect(tile).to_have_attribute("aria-pressed", "true")
    tile.tap()
    notice = panel.page.locator(".notice.refused")
    panel.expect(notice).to_contain_text(
        "screen-1 must be off and cooled before power-1 channel 3 drops"
    )
    panel.expect(tile).to_have_attribute("aria-pressed", "true")
    # The projector's socket is still on, as the relay board itself says.
    client = ModbusTcpClient("127.0.0.1", port=demo.emulator_port("modbus-gateway"))
    assert client.connect()
    try:
        assert client.read_coils(2, count=1, device_id=1).bits[0] is True
    finally:
        client.close()
    with demo.api("operator") as api:
        api.post("/api/v1/devices/screen-1/actions/off")


RECORD_STEPS = """(seq) => {
  window.steps = [];
  const card = document.querySelector(`[data-sequence="${seq}"]`);
  new MutationObserver(() => {
    for (const li of card.querySelectorAll(`li.step`)) {
      const key = `${li.closest(".sequence-run").querySelector("button").dataset.scene}`
        + ` ${li.dataset.path} ${li.dataset.status}`;
      if (!window.steps.includes(key)) window.steps.push(key);
    }
  }).observe(card, {subtree: true, childList: true, attributes: true});
}"""


def test_a_sequence_is_followed_step_by_step(panel: Panel, demo: Demo) -> None:
    """A sequence made through the API appears on the power view; a touch runs it, and
    each step shows running, then done, in order, as the relay board switches."""
    steps = [
        {"device": "power-2", "up": "on", "down": "off", "args": {"channel": n}, "delay_ms": 400}
        for n in (1, 2)
    ]
    with demo.api("admin") as api:
        r = api.put("/api/v1/sequences/rows", json={"id": "rows", "step": steps})
        assert r.status_code == 200, r.text
    panel.login("operator", "power")
    card = panel.page.locator("[data-sequence=rows]")
    panel.expect(card.locator("li.step")).to_have_count(4)  # two steps, up and down
    panel.page.evaluate(RECORD_STEPS, "rows")
    card.locator("button[data-scene=rows-up]").tap()
    done = card.locator(".sequence-run").first.locator(".progress")
    panel.expect(done).to_have_attribute("data-status", "done")
    seen = panel.page.evaluate("window.steps")
    assert [s for s in seen if s.startswith("rows-up") and not s.endswith("pending")] == [
        "rows-up 1 running",
        "rows-up 1 done",
        "rows-up 2 running",
        "rows-up 2 done",
    ]
    tiles = panel.card("power-2").locator("button.tile")
    for n in (0, 1):
        panel.expect(tiles.nth(n)).to_have_attribute("aria-pressed", "true")
    client = ModbusTcpClient("127.0.0.1", port=demo.emulator_port("modbus-gateway"))
    assert client.connect()
    try:
        assert client.read_coils(0, count=2, device_id=2).bits[:2] == [True, True]
    finally:
        client.close()
    card.locator("button[data-scene=rows-down]").tap()
    panel.expect(tiles.nth(0)).to_have_attribute("aria-pressed", "false")


def test_an_unavailable_device_is_shown_so_and_cannot_be_pressed(panel: Panel) -> None:
    panel.login("operator", "screens")
    card = panel.card("screen-9")
    panel.expect(card).to_have_class("card screen unavailable")
    panel.expect(card.locator(".status")).to_have_text("Unavailable")
    panel.expect(card.locator(".device-error")).to_contain_text("link down")
    buttons = card.locator("button")
    assert buttons.count() >= 4
    for i in range(buttons.count()):
        panel.expect(buttons.nth(i)).to_be_disabled()
    buttons.first.click(force=True)  # even forced, a disabled button sends nothing
    panel.page.wait_for_timeout(300)
    assert not [u for u in panel.requests if "/devices/screen-9/actions" in u]
    # The one beside it, available, can be pressed.
    panel.expect(panel.card("screen-2").locator("button").first).to_be_enabled()


def test_an_unknown_token_goes_back_to_the_login(panel: Panel, demo: Demo) -> None:
    panel.page.goto(f"{demo.url}/")
    panel.page.fill("#token", "gh_not-a-token")
    panel.page.click("button[type=submit]")
    panel.expect(panel.page.locator(".login-error")).to_have_text("Unknown or revoked token")
    # A stored token that stopped working (revoked) sends the page back to the login.
    panel.login("operator", "matrix")
    panel.page.evaluate("sessionStorage.setItem('gridhall.token', 'gh_revoked')")
    panel.page.reload()
    panel.expect(panel.page.locator("#token")).to_be_visible()
    panel.expect(panel.page.locator(".login-error")).to_contain_text("unknown or revoked")
    assert panel.page.evaluate("sessionStorage.getItem('gridhall.token')") is None


def test_chinese_by_the_browsers_language_and_a_switch(browser: Any, demo: Demo) -> None:
    context = open_panel(browser, demo, DESK, "zh-CN")
    try:
        page = context.new_page()
        p = Panel(page, demo)
        p.login("operator", "matrix")
        tabs = page.locator("a.tab")
        p.expect(tabs.first).to_have_text("矩阵切换")
        p.expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        page.evaluate("window.loadedOnce = true")
        page.click("button.lang")
        p.expect(tabs.first).to_have_text("Matrix")
        p.expect(page.locator("html")).to_have_attribute("lang", "en")
        assert page.evaluate("window.loadedOnce") is True
        page.reload()  # the choice is kept on this panel
        p.expect(tabs.first).to_have_text("Matrix")
        assert not demo.violations, demo.violations
    finally:
        context.close()


@pytest.mark.parametrize("size,viewport,locale", SIZES)
def test_every_view_fits_a_finger_and_the_screen(
    browser: Any, demo: Demo, size: str, viewport: dict[str, int], locale: str
) -> None:
    """Each main view, with screenshots: touch targets at least 44 px, nothing wider
    than the screen (a large matrix scrolls inside its card), only the daemon asked."""
    out = ARTIFACTS
    out.mkdir(parents=True, exist_ok=True)
    print(f"\npanel screenshots: {out}")
    context = open_panel(browser, demo, viewport, locale)
    try:
        page = context.new_page()
        p = Panel(page, demo)
        context.on("request", lambda r: p.requests.append(r.url))
        page.goto(f"{demo.url}/")
        page.screenshot(path=out / f"{size}-login.png")
        p.login("operator", "matrix")
        for view in VIEWS:
            p.show(view)
            p.expect(page.locator("main.view .card").first).to_be_visible()
            shot = out / f"{size}-{view}.png"
            page.screenshot(path=shot, full_page=True)
            assert shot.stat().st_size > 1000
            small, wide = misfits(page, "main button, main input, main select, nav a")
            assert not small, (view, small)
            assert wide <= 0, (view, wide)
        assert not p.foreign_requests(), p.foreign_requests()
        assert not demo.violations, demo.violations
    finally:
        context.close()


def test_a_plugins_strip_shows_only_where_the_plugin_is_loaded(
    browser: Any, panel: Panel, tmp_path: Path
) -> None:
    panel.login("operator", "matrix")
    panel.expect(panel.page.locator("section.strip[data-view=tickets]")).to_have_count(1)
    panel.expect(panel.page.locator("section.strip[data-view=noticeboard]")).to_have_count(0)

    write_entry_point(tmp_path / "site", "noticeboard", "tests.plugins.noticeboard")
    env = {"PYTHONPATH": str(tmp_path / "site")}
    with demo_daemon(tmp_path / "board", env=env) as board:
        context = open_panel(browser, board, DESK, "en-US")
        try:
            p = Panel(context.new_page(), board)
            context.on("request", lambda r: p.requests.append(r.url))
            p.login("operator", "scenes")
            strip = p.page.locator("section.strip[data-view=noticeboard]")
            p.expect(strip).to_contain_text("Notices")
            with board.api("operator") as api:
                r = api.post("/api/v1/noticeboard/notices", json={"text": "Drill at 15:00"})
                assert r.status_code == 202
            p.expect(strip.locator("li")).to_have_text("Drill at 15:00 (test)")
            p.show("matrix")  # the strip stays above every tab
            p.expect(strip.locator("li")).to_have_count(1)
            assert not p.foreign_requests()
            assert not board.violations, board.violations
        finally:
            context.close()
