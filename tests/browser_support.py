"""Browser tests' peers: Debian's Chromium, headless, driven by Playwright for Python,
against the demo daemon running as a process.

Playwright's own browser download cannot work in a closed network, so it drives the
system's Chromium (`executable_path`). A missing Chromium fails the test with what to
install, like the other peers (mosquitto, socat); `make test` installs it as root.
"""

from __future__ import annotations

import os
import socket
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, Process, create_token_cli, demo_copy, spawn_daemon, wait_http

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL = (
    "apt-get install chromium chromium-driver fonts-wqy-microhei (make test-deps does it as root)"
)
WAIT_MS = 15000  # generous: the machine is shared; no test measures time
DESK = {"width": 1280, "height": 800}  # a wall-mounted touch panel
PHONE = {"width": 390, "height": 844}  # an operator's phone
# Each view is checked and photographed at both: the panel in English, the phone in Chinese.
SIZES = [("1280x800", DESK, "en-US"), ("phone", PHONE, "zh-CN")]
# Screenshots of the main views, kept after the run for a person to look at.
ARTIFACTS = Path(os.environ.get("GRIDHALL_ARTIFACTS", ROOT / "tests" / "artifacts")) / "panel"


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium; fails, naming the packages, where it is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]' (make test does it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Demo:
    """The demo daemon as `make run` starts it, on free ports, plus what the tests add."""

    proc: Process
    config: Path
    tokens: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)  # what the page's CSP blocked

    @property
    def url(self) -> str:
        return self.proc.url

    def emulator_port(self, emulator_id: str) -> int:
        config = tomllib.loads(self.config.read_text())
        listen = next(e["listen"] for e in config["emulator"] if e["id"] == emulator_id)
        return int(listen.rpartition(":")[2])

    def api(self, role: str = "operator") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@contextmanager
def demo_daemon(
    tmp: Path,
    extra: str = "",
    env: dict[str, str] | None = None,
    edit: Callable[[str], str] | None = None,
) -> Iterator[Demo]:
    """The demo config with `extra` TOML appended (and the whole text passed through
    `edit`, when given), as a process; every device of the demo available before it
    is handed over."""
    tmp.mkdir(parents=True, exist_ok=True)
    config, api, _ = demo_copy(tmp)
    text = config.read_text() + extra
    config.write_text(edit(text) if edit else text)
    proc = spawn_daemon(config, api, env)
    try:
        wait_http(f"{proc.url}/api/v1/health")
        demo = Demo(proc, config)
        for role in ("viewer", "operator", "admin"):
            demo.tokens[role] = create_token_cli(config, role)
        with demo.api("viewer") as client:
            deadline = time.monotonic() + 20
            while True:
                devices = client.get("/api/v1/devices").json()
                if all(d["available"] for d in devices if d["id"] in DEMO_DEVICES):
                    break
                assert time.monotonic() < deadline, [d for d in devices if not d["available"]]
                time.sleep(0.05)
        yield demo
    finally:
        if proc.proc.poll() is None:
            proc.proc.terminate()
        try:
            proc.proc.wait(timeout=10)
        except Exception:
            proc.proc.kill()
        if proc.proc.returncode not in (0, -15):
            print(f"--- daemon exit {proc.proc.returncode}:\n{proc.output()[-4000:]}")


DEMO_DEVICES = {
    "power-1",
    "power-2",
    "fan-1",
    "curtain-1",
    "screen-1",
    "screen-2",
    "matrix-1",
    "kvm-1",
}


@dataclass
class Panel:
    """One page of the panel in Chromium, with every request it made and every error it
    threw."""

    page: Any
    demo: Demo
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def login(self, role: str = "operator", view: str = "matrix") -> None:
        """Sign in with the token `demo.tokens[role]` and show `view`."""
        self.page.goto(f"{self.demo.url}/")
        self.page.fill("#token", self.demo.tokens[role])
        self.page.click("button[type=submit]")
        self.expect(self.page.locator(".link")).to_have_attribute("data-status", "live")
        self.show(view)

    def show(self, view: str) -> None:
        self.page.click(f"a.tab[data-view={view}]")
        self.expect(self.page.locator(f"main.view[data-view={view}]")).to_be_visible()

    def card(self, device: str) -> Any:
        return self.page.locator(f"section.card[data-device={device}]")

    @staticmethod
    def expect(locator: Any) -> Any:
        from playwright.sync_api import expect

        return expect(locator)

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(f"{self.demo.url}/")]


def open_panel(browser: Any, demo: Demo, viewport: dict[str, int], locale: str) -> Any:
    context = browser.new_context(viewport=viewport, locale=locale, has_touch=True)
    context.set_default_timeout(WAIT_MS)
    # Anything the Content-Security-Policy blocks (an inline style, a foreign font) is
    # a bug of the page: every violation fails the test.
    context.expose_binding("cspViolation", lambda source, what: demo.violations.append(what))
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.cspViolation(`${e.violatedDirective} ${e.blockedURI}`))"
    )
    return context


@contextmanager
def panel_on(
    browser: Any, demo: Demo, viewport: dict[str, int] = DESK, locale: str = "en-US"
) -> Iterator[Panel]:
    """A fresh page; when it closes, nothing broke the CSP, no script threw, and every
    request went to the daemon."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = open_panel(browser, demo, viewport, locale)
    page = context.new_page()
    p = Panel(page, demo)
    context.on("request", lambda r: p.requests.append(r.url))
    page.on("pageerror", lambda e: p.errors.append(str(e)))
    try:
        yield p
    finally:
        context.close()
    assert not demo.violations, demo.violations
    assert not p.errors, p.errors
    assert not p.foreign_requests(), p.foreign_requests()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for a module's tests (import it with `panel`)."""
    with chromium() as b:
        yield b


@pytest.fixture
def panel(browser: Any, demo: Demo) -> Iterator[Panel]:
    """A fresh page on the module's `demo` fixture."""
    with panel_on(browser, demo) as p:
        yield p


SMALL = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.offsetParent !== null)
  .map((el) => [el.textContent || el.type, el.getBoundingClientRect().height])
  .filter(([, height]) => height < 44)"""


def misfits(page: Any, targets: str) -> tuple[list[Any], int]:
    """What does not fit a finger or the screen: the visible elements of `targets` (a
    CSS selector) under 44 px high, and how far the page scrolls sideways (> 0: too
    wide)."""
    small = page.evaluate(SMALL, targets)
    wide = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    return small, wide


def write_entry_point(site: Path, name: str, module: str) -> None:
    """What `pip install` of a plugin leaves: a dist-info naming its entry point."""
    info = site / f"{name}_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gridhall]\n{name} = {module}\n")


def extron_route(port: int, output: int) -> int:
    """The input tied to `output`, asked of the Extron emulator itself (SIS `O%`) on a
    connection of the test's own, not through the daemon."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(5)
        seen = b""
        while seen.count(b"\r\n") < 2:  # the banner and the date line
            seen += s.recv(1024)
        s.sendall(f"{output}%".encode())
        answer = b""
        while not answer.endswith(b"\r\n"):
            answer += s.recv(1024)
        return int(answer.strip())
