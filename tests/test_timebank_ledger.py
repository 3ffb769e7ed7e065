"""Property tests of the time bank's ledger (hypothesis), on a real SQLite connection
with the plugin's own schema.

A state machine posts awards, family transfers, redemptions and reversals, with keys
that repeat, against a model that applies the rules on its own (limits, policies,
threshold, replays). After every step: all movements sum to zero, every entry has two
movements that cancel, each cached balance equals the sum of its account's
movements (and each movement's balance the running sum), and the ledger agrees with
the model, refusals and flags included. The ticket feed is checked the same way:
whatever order and however often changes arrive, each pays once.
"""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daemon.errors import BadArguments, Refused
from plugins.tickets.workflow import legal_transitions, next_state
from plugins.timebank import earning, ledger
from plugins.timebank.config import KindLimits, TimebankConfig
from tests.timebank_support import balances, ledger_conn, open_accounts, transaction

POOL = "pool:community"
MEMBERS = ["member:m0", "member:m1"]
RESIDENTS = ["resident:r0", "resident:r1", "resident:r2"]
EARNERS = MEMBERS + RESIDENTS
FAMILY = {"member:m0", "resident:r0", "resident:r1"}  # one household; r2 and m1 are alone
STEP = 30

CONFIG = TimebankConfig(
    step=STEP,
    debt_cap=60,
    spend_threshold=60,
    limits={
        "member": KindLimits(max=300, policy="block"),
        "resident": KindLimits(min=-90, max=240, policy="flag"),
        "pool": KindLimits(min=-1200, policy="block"),
    },
)
LIMITS = {  # the model's own copy: (min, max, policy) by kind
    "member": (-60, 300, "block"),
    "resident": (-90, 240, "flag"),
    "pool": (-1200, None, "block"),
}


def invariants(conn: sqlite3.Connection) -> None:
    """Measured with plain SQL here, not with ledger.check, which is tested apart."""
    assert conn.execute("SELECT COALESCE(SUM(amount), 0) FROM timebank_movements").fetchone() == (
        0,
    )
    bad = conn.execute(
        "SELECT e.id FROM timebank_entries e LEFT JOIN timebank_movements m ON m.entry = e.id "
        "GROUP BY e.id HAVING count(m.id) != 2 OR SUM(m.amount) != 0 OR max(m.amount) != e.amount"
    ).fetchall()
    assert bad == []
    sums = dict(
        conn.execute(
            "SELECT a.id, COALESCE(SUM(m.amount), 0) FROM timebank_accounts a "
            "LEFT JOIN timebank_movements m ON m.account = a.id GROUP BY a.id"
        ).fetchall()
    )
    assert sums == balances(conn)
    running: dict[str, int] = {}
    for account, amount, balance in conn.execute(
        "SELECT account, amount, balance FROM timebank_movements ORDER BY id"
    ):
        running[account] = running.get(account, 0) + amount
        assert balance == running[account]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.conn = ledger_conn()
        open_accounts(self.conn, POOL, "member:m1", "resident:r2")
        open_accounts(self.conn, "member:m0", "resident:r0", "resident:r1", family="f-1")
        self.model = dict.fromkeys([POOL, *EARNERS], 0)
        self.sources: dict[str, tuple[int, str | None]] = {}  # source -> (entry id, fingerprint)
        self.entries: dict[int, tuple[str, str, int, str]] = {}  # id -> debit, credit, amount, kind
        self.reversed: set[int] = set()

    # -- the model's rules -------------------------------------------------------------
    def expect(self, kind: str, debit: str, credit: str, amount: int) -> tuple[str, bool]:
        """("refused" | "posted", flagged), as the rules say."""
        if kind in ledger.SPENDING and self.model[debit] < CONFIG.spend_threshold:
            return "refused", False
        flagged = blocked = False
        for account, after, side in (
            (debit, self.model[debit] - amount, 0),
            (credit, self.model[credit] + amount, 1),
        ):
            low, high, policy = LIMITS[account.split(":")[0]]
            limit = low if side == 0 else high
            if limit is not None and (after < limit if side == 0 else after > limit):
                if policy == "block" and kind != "reversal":
                    blocked = True
                else:
                    flagged = True
        return ("refused", False) if blocked else ("posted", flagged)

    def attempt(self, p: ledger.Posting, *, reverses: int | None = None) -> None:
        before = balances(self.conn)
        known = self.sources.get(p.source)
        if known is not None:
            outcome, flagged = ("replayed" if known[1] == p.fingerprint else "reused"), False
        elif reverses is not None and (
            self.entries[reverses][3] == "reversal" or reverses in self.reversed
        ):
            outcome, flagged = "refused", False
        else:
            outcome, flagged = self.expect(p.kind, p.debit, p.credit, p.amount)
        event(f"{p.kind}: {outcome}{', flagged' if flagged else ''}")
        try:
            with transaction(self.conn):
                if reverses is None:
                    result = ledger.post(self.conn, CONFIG, p)
                else:
                    result = ledger.reverse(
                        self.conn,
                        CONFIG,
                        reverses,
                        source=p.source,
                        actor="t",
                        at=p.at,
                        fingerprint=p.fingerprint,
                    )
        except ledger.KeyReused:
            assert outcome == "reused"
        except Refused:
            assert outcome == "refused"
        else:
            if outcome == "replayed":
                assert result.replayed and result.entry["id"] == known[0]  # type: ignore[index]
            else:
                assert outcome == "posted" and not result.replayed
                assert bool(result.entry["flagged"]) == flagged
                entry_id = result.entry["id"]
                self.sources[p.source] = (entry_id, p.fingerprint)
                self.entries[entry_id] = (p.debit, p.credit, p.amount, p.kind)
                if reverses is not None:
                    self.reversed.add(reverses)
                self.model[p.debit] -= p.amount
                self.model[p.credit] += p.amount
                return
        assert balances(self.conn) == before  # refused or replayed: nothing moved

    def posting(self, kind: str, key: int, debit: str, credit: str, steps: int) -> ledger.Posting:
        return ledger.Posting(
            kind=kind,
            source=f"{kind}:{key}",
            debit=debit,
            credit=credit,
            amount=steps * STEP,
            actor="t",
            at=0.0,
            fingerprint=f"{debit}>{credit}:{steps}",
        )

    # -- rules -------------------------------------------------------------------------
    @rule(to=st.sampled_from(EARNERS), steps=st.integers(1, 6), key=st.integers(0, 12))
    def award(self, to: str, steps: int, key: int) -> None:
        self.attempt(self.posting("award", key, POOL, to, steps))

    @rule(
        giver=st.sampled_from(sorted(FAMILY)),
        taker=st.sampled_from(sorted(FAMILY)),
        steps=st.integers(1, 4),
        key=st.integers(0, 12),
    )
    def transfer(self, giver: str, taker: str, steps: int, key: int) -> None:
        if giver != taker:
            self.attempt(self.posting("transfer", key, giver, taker, steps))

    @rule(who=st.sampled_from(EARNERS), steps=st.integers(1, 3), key=st.integers(0, 12))
    def redeem(self, who: str, steps: int, key: int) -> None:
        self.attempt(self.posting("redemption", key, who, POOL, steps))

    @precondition(lambda self: bool(self.entries))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(sorted(self.entries)))
        debit, credit, amount, _ = self.entries[target]
        p = ledger.Posting(
            kind="reversal",
            source=f"reverse:{target}",
            debit=credit,
            credit=debit,
            amount=amount,
            actor="t",
            at=0.0,
        )
        self.attempt(p, reverses=target)

    @invariant()
    def ledger_holds(self) -> None:
        invariants(self.conn)
        assert balances(self.conn) == self.model
        assert ledger.check(self.conn)["ok"]


TestLedger = LedgerMachine.TestCase
TestLedger.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@given(
    awards=st.lists(st.tuples(st.sampled_from(EARNERS), st.integers(1, 4)), min_size=1, max_size=8)
)
@settings(max_examples=100, deadline=None)
def test_a_reversal_restores_every_balance(awards: list[tuple[str, int]]) -> None:
    conn = ledger_conn()
    open_accounts(conn, POOL, *EARNERS)
    config = TimebankConfig(step=STEP)
    posted = []
    for i, (to, steps) in enumerate(awards):
        with transaction(conn):
            p = ledger.Posting("award", f"a:{i}", POOL, to, steps * STEP, "t", 0.0)
            posted.append(ledger.post(conn, config, p).entry)
    before = balances(conn)
    for entry in posted:
        with transaction(conn):
            ledger.reverse(conn, config, entry["id"], source=f"r:{entry['id']}", actor="t", at=0)
    assert set(balances(conn).values()) == {0}
    assert before != balances(conn)
    invariants(conn)


def test_check_finds_what_is_wrong() -> None:
    """ledger.check is what GET /audit/check answers: it must see a broken ledger (rows
    written around `post`, as a bug or a hand edit would)."""
    conn = ledger_conn()
    open_accounts(conn, POOL, "resident:r0")
    with transaction(conn):
        ledger.post(conn, CONFIG, ledger.Posting("award", "a", POOL, "resident:r0", 60, "t", 0))
    assert ledger.check(conn)["ok"]
    conn.execute(
        "INSERT INTO timebank_movements (entry, account, amount, balance) "
        "VALUES (1, 'resident:r0', 30, 90)"
    )
    found = ledger.check(conn)
    assert not found["ok"]
    assert found["sum"] == 30
    assert [u["entry"] for u in found["unbalanced"]] == [1]
    assert [d["account"] for d in found["drifted"]] == ["resident:r0"]


def test_entries_and_movements_are_append_only() -> None:
    conn = ledger_conn()
    open_accounts(conn, POOL, "resident:r0")
    with transaction(conn):
        ledger.post(conn, CONFIG, ledger.Posting("award", "a", POOL, "resident:r0", 60, "t", 0))
    for sql in (
        "UPDATE timebank_entries SET amount = 30",
        "DELETE FROM timebank_entries",
        "UPDATE timebank_movements SET amount = 30",
        "DELETE FROM timebank_movements",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)


def test_amounts_are_whole_steps() -> None:
    conn = ledger_conn()
    open_accounts(conn, POOL, "resident:r0")
    for amount in (0, -30, 45):
        with pytest.raises(BadArguments, match="multiple of the step, 30 minutes"):
            ledger.post(
                conn, CONFIG, ledger.Posting("award", "a", POOL, "resident:r0", amount, "t", 0)
            )


# -- the ticket feed -------------------------------------------------------------------


@st.composite
def ticket_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Changes of a few tickets, each walked through the real workflow, interleaved
    into one feed with increasing seq; each change carries the ticket after it."""
    walks = []
    for ticket_id in range(1, draw(st.integers(1, 4)) + 1):
        ticket = {
            "id": ticket_id,
            "reporter": draw(st.sampled_from(["r0", "r1", None])),
            "channel": draw(st.sampled_from(["resident", "hotline", "grid_app"])),
            "member": draw(st.sampled_from(["m0", None])),  # the grid's member on duty
        }
        state, steps = "collected", [("collect", dict(ticket, state="collected", on_time=None))]
        for _ in range(draw(st.integers(0, 9))):
            legal = legal_transitions(state)
            if not legal:
                break
            transition = draw(st.sampled_from(legal))
            state = next_state(state, transition)
            ticket = dict(ticket, state=state)
            if transition == "dispatch":
                ticket["handler"] = draw(st.sampled_from(["m0", "m1", "police"]))
            if transition == "verify":
                ticket["on_time"] = draw(st.booleans())
            if transition == "reopen":
                ticket["on_time"] = None
            steps.append((transition, ticket))
        walks.append(steps)
    feed: list[dict[str, Any]] = []
    while any(walks):
        walk = draw(st.sampled_from([w for w in walks if w]))
        transition, ticket = walk.pop(0)
        feed.append(
            {
                "seq": len(feed) + 1,
                "at": 0.0,
                "actor": "desk",
                "transition": transition,
                "data": {},
                "ticket": ticket,
            }
        )
    return feed


def expected_from(feed: list[dict[str, Any]]) -> dict[str, int]:
    """The default rules, applied by hand: 30 to a resident who reported (not through
    the grid app) at register, taken back at invalidate; 60 to the handler at an
    on-time verify when it is the ticket's own grid member, taken back at reopen."""
    paid: dict[str, int] = {}
    live: dict[tuple[int, str], str] = {}  # (ticket, rule) -> account holding the award
    for c in feed:
        t, tr = c["ticket"], c["transition"]
        for name, on, back, pay, kind, amount in (
            ("report", "register", "invalidate", "reporter", "resident", 30),
            ("close", "verify", "reopen", "handler", "member", 60),
        ):
            key = (t["id"], name)
            if tr == back and key in live:
                account = live.pop(key)
                paid[account] -= amount
            if name == "close":
                earns = t.get("on_time") and t.get("handler") == t.get("member")
            else:
                earns = t["channel"] != "grid_app"
            if tr == on and t.get(pay) and earns and key not in live:
                live[key] = f"{kind}:{t[pay]}"
                paid[live[key]] = paid.get(live[key], 0) + amount
    return paid


def earned(conn: sqlite3.Connection) -> dict[str, int]:
    return {a: b for a, b in balances(conn).items() if not a.startswith("pool:")}


@given(feed=ticket_histories(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_ticket_changes_pay_once_however_they_arrive(feed: list[dict[str, Any]], seed: int) -> None:
    config = TimebankConfig()
    expected = expected_from(feed)

    in_order = ledger_conn()
    open_accounts(in_order, POOL)
    with transaction(in_order):
        earning.apply_changes(in_order, config, feed, contiguous=False, now=0.0)
    assert {a: v for a, v in earned(in_order).items() if v or a in expected} == expected

    # The same feed heard as the hook hears it: duplicated, out of order, in pieces,
    # with catch-ups over everything after the cursor in between.
    rnd = random.Random(seed)
    noisy = ledger_conn()
    open_accounts(noisy, POOL)
    deliveries = feed + rnd.sample(feed, k=len(feed) // 2)
    rnd.shuffle(deliveries)
    for change in deliveries:
        with transaction(noisy):
            applied = earning.apply_changes(noisy, config, [change], contiguous=True, now=0.0)
        if applied.gap:
            with transaction(noisy):
                after = earning.cursor(noisy)
                catch_up = [c for c in feed if c["seq"] > after][: rnd.randint(1, 5)]
                earning.apply_changes(noisy, config, catch_up, contiguous=False, now=0.0)
    with transaction(noisy):  # the startup catch-up
        earning.apply_changes(noisy, config, feed, contiguous=False, now=0.0)
    # Replaying the whole feed again pays nothing more.
    with transaction(noisy):
        again = earning.apply_changes(noisy, config, feed, contiguous=False, now=0.0)
    assert again.changes == 0 and again.posted == []

    assert balances(noisy) == balances(in_order)
    sources = "SELECT source FROM timebank_entries ORDER BY source"
    assert noisy.execute(sources).fetchall() == in_order.execute(sources).fetchall()
    invariants(noisy)


def test_a_reversal_is_flagged_never_blocked() -> None:
    """Taking back an award the member has spent puts the member past the debt cap of
    a `block` policy: the reversal still lands, flagged, because it corrects the
    ledger; the same debit as a spend is refused."""
    conn = ledger_conn()
    open_accounts(conn, POOL, "member:m1")
    with transaction(conn):
        award = ledger.post(
            conn, CONFIG, ledger.Posting("award", "a", POOL, "member:m1", 180, "t", 0)
        ).entry
        ledger.post(
            conn, CONFIG, ledger.Posting("redemption", "spend", "member:m1", POOL, 120, "t", 0)
        )
    with pytest.raises(Refused, match="member:m1 would have -90 minutes, below its limit -60"):
        ledger.post(
            conn, CONFIG, ledger.Posting("redemption", "more", "member:m1", POOL, 150, "t", 0)
        )
    with transaction(conn):
        back = ledger.reverse(conn, CONFIG, award["id"], source="r", actor="t", at=0).entry
    assert back["flagged"] == "member:m1 would have -120 minutes, below its limit -60"
    assert balances(conn)["member:m1"] == -120
    invariants(conn)
