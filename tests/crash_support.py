"""The crash-consistency harness's parts: clients that write every kind of thing over
HTTP and keep a book of what was acknowledged, and the checks of that book against
the store a SIGKILL left behind (tests/test_crash_consistency.py runs them).

Every client runs in a thread of its own, one request at a time, until its round's
`stop` is set or the daemon is gone (any transport error: the answer was lost). Before
it sends a write it notes it as in flight; a 2xx answer moves it into the book. A write
still in flight when the daemon dies may or may not have been committed: the checks
accept either, never its absence alone, and find it whole when it is there.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from daemon import cli
from daemon.auth import create_token
from daemon.config import load
from daemon.pluginhost import PluginHost
from daemon.store import Store
from plugins.timebank import ledger
from tests.ticket_support import POINT

TB = "/api/v1/timebank"
FAMILY = [f"resident:crash-{i}" for i in range(1, 5)]  # one household: transfers pass
# The rules' transitions: a change after the time bank's cursor with one of these is
# an award or a reversal committed on the ticket's side and not yet on the bank's.
SEAT = "dispatch-2"  # the demo's second seat: consoles 4 and 5
SEAT_COMPUTERS = ("duty-pc", "video-pc", "hotline-pc")
PAYING = ("register", "verify", "reopen", "invalidate")


def make_tokens(config: Path, wanted: dict[str, str]) -> dict[str, str]:
    """name -> role for each token, all in one process (a `gridhall token create`
    each would cost a second apiece)."""
    plugins = PluginHost()
    plugins.load(entry_points=False)
    conf = load(config, plugins)

    async def create(store: Store) -> dict[str, str]:
        return {name: await create_token(store, name, role) for name, role in wanted.items()}

    return asyncio.run(cli.with_store(conf, plugins, create))


def read_only(db: Path) -> sqlite3.Connection:
    """The store as a killed daemon left it: read-only, so nothing is checkpointed or
    recovered into the file before the checks have looked at it."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


@dataclass
class Book:
    """What the daemon acknowledged, across rounds, and what was in flight at a kill."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # token name -> [(action, device, args)] answered 200, in order (one client a round)
    actions: dict[str, list[tuple[str, str, dict[str, Any]]]] = field(default_factory=dict)
    reports: dict[str, int] = field(default_factory=dict)  # idem_key -> ticket id (201)
    # ticket id -> [(seq, transition)] answered 200, and the one sent and not answered
    steps: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    step_in_flight: dict[int, str] = field(default_factory=dict)
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)  # entry id -> as answered
    keys_in_flight: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> body
    # schedule / scene id -> its acknowledged version (None: deleted), and the edit in flight
    schedules: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    schedule_in_flight: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    scenes: dict[str, str | None] = field(default_factory=dict)  # id -> name
    scene_in_flight: dict[str, str | None] = field(default_factory=dict)
    layouts: dict[str, bool] = field(default_factory=dict)  # seat layout id -> saved (or deleted)
    layout_in_flight: dict[str, bool] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)  # kind -> 2xx answers this round
    failures: list[str] = field(default_factory=list)  # what a client met that it should not

    def count(self, kind: str) -> None:
        with self.lock:
            self.answers[kind] = self.answers.get(kind, 0) + 1


class Gone(Exception):
    """The daemon did not answer: killed (or the round is over)."""


class Clients:
    """The round's load: one thread per client, each with a token of its own."""

    def __init__(self, url: str, tokens: dict[str, str], book: Book, round_: int) -> None:
        self.url, self.tokens, self.book, self.round = url, tokens, book, round_
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def http(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def call(self, http: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
        if self.stop.is_set():
            raise Gone
        try:
            return http.request(method, path, **kw)
        except httpx.HTTPError:
            raise Gone from None

    def start(self, clients: dict[str, Callable[[], None]]) -> None:
        def guarded(run: Callable[[], None]) -> None:
            try:
                run()
            except Gone:
                pass
            except Exception as exc:  # the test fails on it, not the thread alone
                with self.book.lock:
                    self.book.failures.append(f"{threading.current_thread().name}: {exc!r}")

        self.threads = [
            threading.Thread(target=guarded, args=(run,), name=name)
            for name, run in clients.items()
        ]
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "a client never returned"

    # -- device actions and their audit ------------------------------------------------

    def actions(self, name: str, plan: list[tuple[str, str, dict[str, Any]]]) -> None:
        """`plan`'s actions, round and round, as the operator token `name`."""
        done = self.book.actions.setdefault(name, [])
        with self.http(self.tokens[name]) as http:
            n = 0
            while True:
                device, action, args = plan[n % len(plan)]
                r = self.call(http, "POST", f"/api/v1/devices/{device}/actions/{action}", json=args)
                if r.status_code == 200:
                    done.append((action, device, args))
                    self.book.count("action")
                n += 1

    # -- tickets: reports, and the loop to verify (the time bank's awards) ------------

    def reports(self, name: str) -> None:
        """Reports alone, as fast as answered: the intake's group commit under load."""
        with self.http(self.tokens["reporter"]) as http:
            n = 0
            while True:
                key = f"{name}-r{self.round}-{n}"
                body = {"category": "city.litter", **POINT, "idem_key": key, "description": key}
                r = self.call(http, "POST", "/api/v1/tickets", json=body)
                if r.status_code == 201:
                    with self.book.lock:
                        self.book.reports[key] = r.json()["id"]
                    self.book.count("report")
                n += 1

    def desk(self, name: str) -> None:
        """Residents' reports walked through the workflow: every third one reopened
        after its close, every fifth found invalid once registered (both take an award
        back)."""
        with self.http(self.tokens["dispatcher"]) as desk, self.http(self.tokens["handler"]) as hd:
            n = 0
            while True:
                key = f"{name}-r{self.round}-{n}"
                body = {
                    "category": "city.litter",
                    **POINT,
                    "channel": "resident",
                    "reporter": f"R-{key}",
                    "idem_key": key,
                    "description": key,
                }
                r = self.call(desk, "POST", "/api/v1/tickets", json=body)
                assert r.status_code == 201, r.text
                ticket = r.json()["id"]
                with self.book.lock:
                    self.book.reports[key] = ticket
                self.book.count("report")
                if n % 5 == 4:
                    loop = ["register", "invalidate"]
                elif n % 3 == 2:
                    loop = ["register", "dispatch", "accept", "report", "verify", "reopen"]
                else:
                    loop = ["register", "dispatch", "accept", "report", "verify"]
                for step in loop:
                    http = hd if step in ("accept", "report") else desk
                    args = {"reason": "crash harness"} if step in ("reopen", "invalidate") else None
                    self.book.step_in_flight[ticket] = step
                    r = self.call(http, "POST", f"/api/v1/tickets/{ticket}/{step}", json=args)
                    assert r.status_code == 200, (step, r.status_code, r.text)
                    with self.book.lock:
                        self.book.steps.setdefault(ticket, []).append((r.json()["seq"], step))
                        del self.book.step_in_flight[ticket]
                    self.book.count("step")
                n += 1

    # -- the time bank through its API ---------------------------------------------------

    def timebank(self, name: str) -> None:
        """Volunteer hours to the household's accounts (each award keyed), and
        transfers between them once one can spend."""
        with self.http(self.tokens["organiser"]) as http:
            n = 0
            while True:
                giver, taker = FAMILY[n % 4], FAMILY[(n + 1) % 4]
                if n % 2 == 0:
                    key = f"{name}-r{self.round}-{n}"
                    body: dict[str, Any] = {
                        "rule": "volunteer-hours",
                        "account": taker,
                        "minutes": 60,
                    }
                    self.book.keys_in_flight[key] = body
                    r = self.call(
                        http, "POST", f"{TB}/awards", json=body, headers={"Idempotency-Key": key}
                    )
                    assert r.status_code == 201, r.text
                    del self.book.keys_in_flight[key]
                else:
                    body = {"from": giver, "to": taker, "amount": 30}
                    r = self.call(http, "POST", f"{TB}/transfers", json=body)
                    assert r.status_code in (201, 409), r.text  # 409: below the threshold
                if r.status_code == 201:
                    entry = r.json()
                    with self.book.lock:
                        self.book.entries[entry["id"]] = entry
                    self.book.count("entry")
                n += 1

    # -- schedules, scenes and seat layouts edited through the API -----------------------

    def edit(
        self,
        http: httpx.Client,
        kind: str,
        acked: dict[str, Any],
        in_flight: dict[str, Any],
        key: str,
        value: Any,
        send: tuple[str, str, dict[str, Any] | None],
    ) -> None:
        """One edit: `value` (what the store should show for `key` after it) in flight
        while `send` (method, path, body) is out, in `acked` once a 2xx comes back."""
        in_flight[key] = value
        method, path, body = send
        r = self.call(http, method, path, json=body)
        assert r.status_code in (200, 201, 204), (kind, key, method, r.status_code, r.text)
        with self.book.lock:
            acked[key] = value
            del in_flight[key]
        self.book.count(kind)

    def schedules(self, name: str) -> None:
        """Each schedule made, changed twice, and every other one deleted."""
        with self.http(self.tokens["facility"]) as http:
            n = 0
            while True:
                sid = f"{name}-r{self.round}-{n}"
                for version in range(3 + n % 2):
                    # Never due while the test runs: 03:xx on the first of January.
                    spec = {
                        "id": sid,
                        "cron": f"{version} 3 1 1 *",
                        "device": "fan-1",
                        "action": "off",
                        "group": sid,
                    }
                    gone = version == 3
                    if version == 0:
                        send = ("POST", "/api/v1/schedules", spec)
                    elif gone:
                        send = ("DELETE", f"/api/v1/schedules/{sid}", None)
                    else:
                        send = ("PUT", f"/api/v1/schedules/{sid}", spec)
                    self.edit(http, "schedule", self.book.schedules, self.book.schedule_in_flight,
                              sid, None if gone else spec, send)  # fmt: skip
                n += 1

    def scenes(self, name: str) -> None:
        """Each scene put, put again with a new name, and every other one deleted."""
        with self.http(self.tokens["facility"]) as http:
            n = 0
            while True:
                sid = f"{name}-r{self.round}-{n}"
                for version in range(2 + n % 2):
                    gone = version == 2
                    title = f"{sid} v{version}"
                    body = {
                        "id": sid,
                        "name": title,
                        "step": [{"device": "power-1", "action": "on", "args": {"channel": 7}}],
                    }
                    send = ("DELETE", f"/api/v1/scenes/{sid}", None) if gone else (
                        "PUT", f"/api/v1/scenes/{sid}", body)  # fmt: skip
                    self.edit(http, "scene", self.book.scenes, self.book.scene_in_flight,
                              sid, None if gone else title, send)  # fmt: skip
                n += 1

    def seats(self, name: str) -> None:
        """A seat's layouts saved from routes set just before, every other one deleted;
        the facility token logged in at the seat and out again between them."""
        seat = f"/api/v1/seats/{SEAT}"
        with self.http(self.tokens["facility"]) as http:
            n = 0
            while True:
                lid = f"{name}-r{self.round}-{n}"
                computer = SEAT_COMPUTERS[n % len(SEAT_COMPUTERS)]
                r = self.call(
                    http, "POST", f"{seat}/route", json={"console": 4, "computer": computer}
                )
                assert r.status_code == 200, r.text
                r = self.call(http, "POST", f"{seat}/{'login' if n % 2 == 0 else 'logout'}")
                assert r.status_code == 200, r.text
                for gone in (False, True)[: 1 + n % 2]:
                    send = ("DELETE", f"{seat}/layouts/{lid}", None) if gone else (
                        "PUT", f"{seat}/layouts/{lid}", {"name": lid})  # fmt: skip
                    self.edit(http, "layout", self.book.layouts, self.book.layout_in_flight,
                              lid, not gone, send)  # fmt: skip
                n += 1


# -- the checks ----------------------------------------------------------------------


def check_on_disk(db: Path) -> int:
    """Right after the kill, before any restart: SQLite's integrity check and the
    ledger's invariants on the file as it was left. Returns the changes committed on
    the tickets' side that the time bank had not applied yet (the window its catch-up
    at start is for)."""
    conn = read_only(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        check = ledger.check(conn)
        assert check["ok"], check
        cursor = conn.execute("SELECT coalesce(max(seq), 0) FROM timebank_cursor").fetchone()[0]
        marks = ",".join("?" * len(PAYING))
        behind: int = conn.execute(
            f"SELECT count(*) FROM ticket_events WHERE id > ? AND transition IN ({marks})",
            (cursor, *PAYING),
        ).fetchone()[0]
        return behind
    finally:
        conn.close()


def check_store(db: Path, book: Book, unanswered: int) -> None:
    """What the book says was acknowledged is in the store (the daemon restarted on
    it), with what was acknowledged; what is there unacknowledged is whole, and there
    are at most `unanswered` tickets whose answer was lost (one a client a kill)."""
    conn = read_only(db)
    try:
        _actions(conn, book)
        _tickets(conn, book, unanswered)
        _entries(conn, book)
        _edits_audited(conn)
    finally:
        conn.close()


def _actions(conn: sqlite3.Connection, book: Book) -> None:
    """Each client's answered actions are its audit rows, in order; the one whose
    answer the kill cut may follow them."""
    for who, done in book.actions.items():
        rows = [
            (what, target, json.loads(args or "{}"))
            for what, target, args in conn.execute(
                "SELECT what, target, args FROM audit WHERE who = ? AND result = 'ok' ORDER BY id",
                (who,),
            )
        ]
        assert len(done) <= len(rows) <= len(done) + 1, (who, len(done), len(rows))
        for (action, device, args), row in zip(done, rows, strict=False):
            assert row[:2] == (action, device), (who, row, action, device)
            assert {k: row[2].get(k) for k in args} == args, (who, row, args)


def _tickets(conn: sqlite3.Connection, book: Book, unanswered: int) -> None:
    stored = dict(conn.execute("SELECT idem_key, id FROM tickets WHERE idem_key IS NOT NULL"))
    lost = {k: t for k, t in book.reports.items() if stored.get(k) != t}
    assert not lost, f"{len(lost)} ticket(s) answered 201 are gone: {list(lost)[:5]}"
    assert len(stored) - len(book.reports) <= unanswered, (len(stored), len(book.reports))
    # Whole: every ticket has its creation, and its state is its last change's.
    broken = conn.execute(
        "SELECT t.id, t.state, e.to_state FROM tickets t "
        "LEFT JOIN ticket_events e ON e.id = "
        "(SELECT max(id) FROM ticket_events WHERE ticket = t.id) "
        "WHERE e.to_state IS NULL OR e.to_state != t.state "
        "OR NOT EXISTS (SELECT 1 FROM ticket_events c WHERE c.ticket = t.id "
        "AND c.transition = 'collect')"
    ).fetchall()
    assert not broken, f"tickets not whole: {broken[:5]}"
    for ticket, done in book.steps.items():
        history = conn.execute(
            "SELECT id, transition FROM ticket_events WHERE ticket = ? AND transition != "
            "'collect' ORDER BY id",
            (ticket,),
        ).fetchall()
        extra = history[len(done) :]
        assert history[: len(done)] == done, (ticket, history, done)
        # The transition sent when the kill came may be in, and nothing else.
        assert [t for _, t in extra] in ([], [book.step_in_flight.get(ticket)]), (ticket, extra)


def _entries(conn: sqlite3.Connection, book: Book) -> None:
    found = {e["id"]: e for e in ledger.entries(conn)}
    for entry_id, answered in book.entries.items():
        stored = found.get(entry_id)
        assert stored is not None, f"entry {entry_id} answered 201 is gone"
        for k in ("kind", "amount", "source", "from", "to"):
            assert stored[k] == answered[k], (entry_id, k, stored[k], answered[k])


def _edits_audited(conn: sqlite3.Connection) -> None:
    """An API edit in force has its audit row: they are one write."""
    unaudited = conn.execute(
        "SELECT kind, id FROM scenes s WHERE origin = 'api' AND NOT EXISTS (SELECT 1 FROM "
        "audit a WHERE a.what = 'edit_' || s.kind AND a.target = s.kind || ':' || s.id)"
    ).fetchall()
    unaudited += conn.execute(
        "SELECT 'schedule', id FROM schedules s WHERE seed IS NULL AND NOT EXISTS (SELECT 1 "
        "FROM audit a WHERE a.what = 'schedule.create' AND a.target = 'schedule:' || s.id)"
    ).fetchall()
    unaudited += conn.execute(
        "SELECT 'layout', id FROM seat_layouts s WHERE origin = 'api' AND owner = '' "
        "AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.what = 'save_layout' "
        "AND a.target = 'seat:' || s.seat AND json_extract(a.args, '$.layout') = s.id)"
    ).fetchall()
    unaudited += conn.execute(
        "SELECT 'login', seat FROM seat_operators s WHERE NOT EXISTS (SELECT 1 FROM audit a "
        "WHERE a.what = 'login' AND a.target = 'seat:' || s.seat AND a.who = s.operator "
        "AND a.at >= s.since)"
    ).fetchall()
    assert not unaudited, f"edits in force with no audit row: {unaudited[:5]}"


def check_api(http: httpx.Client, book: Book) -> None:
    """Through the restarted daemon: its own integrity check, the ledger's, the
    schedules and scenes it has in force, every award owed by the tickets paid once,
    and the award keys whose answers were lost paid at most once."""
    r = http.get("/api/v1/store/check")
    assert r.status_code == 200 and r.json()["ok"], r.text
    check = http.get(f"{TB}/audit/check").json()
    assert check["ok"] and check["sum"] == 0, check

    def shown(spec: dict[str, Any] | None) -> tuple[Any, ...] | None:
        return None if spec is None else tuple(spec[k] for k in ("cron", "device", "action"))

    schedules = {s["id"]: s for s in http.get("/api/v1/schedules").json()}
    for sid, spec in book.schedules.items():
        allowed = [shown(spec)]
        if sid in book.schedule_in_flight:
            allowed.append(shown(book.schedule_in_flight[sid]))
        assert shown(schedules.get(sid)) in allowed, (sid, schedules.get(sid), allowed)
    scenes = {s["id"]: s["name"] for s in http.get("/api/v1/scenes").json()}
    for sid, name in book.scenes.items():
        allowed_names = [name]
        if sid in book.scene_in_flight:
            allowed_names.append(book.scene_in_flight[sid])
        assert scenes.get(sid) in allowed_names, (sid, scenes.get(sid), allowed_names)
    r = http.get(f"/api/v1/seats/{SEAT}/layouts")
    layouts = {lay["id"] for lay in r.json()["seat"]}
    for lid, saved in book.layouts.items():
        allowed = {saved, book.layout_in_flight.get(lid, saved)}
        assert (lid in layouts) in allowed, (lid, saved, book.layout_in_flight.get(lid))
    _awards_owed(http)
    for key, body in sorted(book.keys_in_flight.items()):
        # Sent again, as a client whose answer was lost would: 200 with the entry the
        # lost answer had (committed before the kill), or 201 (it was not): paid once.
        r = http.post(f"{TB}/awards", json=body, headers={"Idempotency-Key": key})
        assert r.status_code in (200, 201), r.text
        assert r.json()["replayed"] == (r.status_code == 200), r.text
        book.entries[r.json()["id"]] = r.json()
    book.keys_in_flight.clear()


def _pages(http: httpx.Client, path: str, items: str, cursor: str, **params: Any) -> list[Any]:
    found: list[Any] = []
    while True:
        page = http.get(path, params=params).json()
        found += page[items]
        if page["next"] is None:
            return found
        params[cursor] = page["next"]


def _awards_owed(http: httpx.Client) -> None:
    """Each ticket's awards: paid when owed, once (the rules' defaults: a resident's
    report registered and not invalidated; a close on time not reopened)."""
    tickets = _pages(http, "/api/v1/tickets", "tickets", "before", limit=500)
    entries = _pages(http, f"{TB}/audit", "entries", "after", limit=1000)
    live: dict[tuple[str, str], int] = {}
    for e in entries:
        if e["subject"] and e["subject"].startswith("ticket:"):
            key = (e["subject"].removeprefix("ticket:"), e["rule"])
            live[key] = live.get(key, 0) + (1 if e["kind"] == "award" else -1)
    paid = {k for k, n in live.items() if n}
    assert set(live.values()) <= {0, 1}, "an award paid twice"
    owed = {
        (str(t["id"]), "report-verified")
        for t in tickets
        if t["channel"] == "resident" and t["state"] not in ("collected", "invalid")
    }
    owed |= {(str(t["id"]), "closed-on-time") for t in tickets if t["on_time"]}
    assert paid == owed, f"lost {sorted(owed - paid)[:5]}, unowed {sorted(paid - owed)[:5]}"
