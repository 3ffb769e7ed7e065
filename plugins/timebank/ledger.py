"""The ledger: every transfer is one entry of two movements that sum to zero.

`post` is the only writer of entries and movements, and it runs inside the caller's
store transaction, so an entry, its two movements and the two cached balances are
committed together or not at all. An entry's `source` is the event that caused it
(an API idempotency key, a ticket change): posting a source again answers the entry
already there, so one event never pays twice. Limits are checked in the same
transaction: under the `block` policy a breach refuses the entry (409 with the
reason); under `flag` the entry is kept and carries the reason. A reversal is never
blocked, only flagged: taking back a wrong award must always be possible.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from daemon.errors import BadArguments, NotFound, Refused
from plugins.timebank import accounts
from plugins.timebank.config import TimebankConfig

# Entries that spend an earner's credits: they wait for the spending threshold.
SPENDING = frozenset({"transfer", "redemption"})


class KeyReused(BadArguments):
    """An idempotency key sent again with a different request."""


@dataclass(frozen=True)
class Posting:
    kind: str  # award, reversal, transfer, redemption
    source: str  # the event: unique in the ledger
    debit: str  # the account that gives
    credit: str  # the account that receives
    amount: int
    actor: str
    at: float
    memo: str | None = None
    rule: str | None = None
    role: str | None = None
    subject: str | None = None
    reversal_of: int | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class Posted:
    entry: dict[str, Any]
    replayed: bool  # the source was posted before; this is that entry


def check_amount(amount: int, config: TimebankConfig) -> None:
    step = config.unit_step
    if amount <= 0 or amount % step:
        raise BadArguments(
            f"amount {amount} must be a positive multiple of the step, {step} {config.unit}"
        )


def post(conn: sqlite3.Connection, config: TimebankConfig, p: Posting) -> Posted:
    """Write `p` as an entry and its two movements, or answer the entry its source has."""
    found = find_source(conn, p.source)
    if found is not None:
        if p.fingerprint is not None and found["fingerprint"] != p.fingerprint:
            raise KeyReused(
                f"the key of {p.source} was used for a different request (entry {found['id']})"
            )
        return Posted(found, replayed=True)
    check_amount(p.amount, config)
    if p.debit == p.credit:
        raise BadArguments(f"an entry moves credits between two accounts, not {p.debit} to itself")
    debit, credit = accounts.get(conn, p.debit), accounts.get(conn, p.credit)
    if p.kind in SPENDING and debit["balance"] < config.spend_threshold:
        raise Refused(
            f"{p.debit} has {debit['balance']} {config.unit}; it may spend once it has "
            f"{config.spend_threshold}"
        )
    after_debit, after_credit = debit["balance"] - p.amount, credit["balance"] + p.amount
    # A debit can only pass a floor and a credit only a ceiling; an account already
    # past its limit (by a flagged entry) may still move back towards it.
    low, _, debit_policy = accounts.bounds(debit, config)
    _, high, credit_policy = accounts.bounds(credit, config)
    breaches = []
    if low is not None and after_debit < low:
        reason = f"{p.debit} would have {after_debit} {config.unit}, below its limit {low}"
        breaches.append((debit_policy, reason))
    if high is not None and after_credit > high:
        reason = f"{p.credit} would have {after_credit} {config.unit}, above its limit {high}"
        breaches.append((credit_policy, reason))
    blocking = [r for policy, r in breaches if policy == "block" and p.kind != "reversal"]
    flags = [r for _, r in breaches if r not in blocking]
    if blocking:
        raise Refused("; ".join(blocking))
    cur = conn.execute(
        "INSERT INTO timebank_entries (at, kind, source, fingerprint, amount, rule, role, "
        "subject, actor, memo, reversal_of, flagged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            p.at,
            p.kind,
            p.source,
            p.fingerprint,
            p.amount,
            p.rule,
            p.role,
            p.subject,
            p.actor,
            p.memo,
            p.reversal_of,
            "; ".join(flags) or None,
        ),
    )
    entry_id = cur.lastrowid
    conn.executemany(
        "INSERT INTO timebank_movements (entry, account, amount, balance) VALUES (?, ?, ?, ?)",
        [(entry_id, p.debit, -p.amount, after_debit), (entry_id, p.credit, p.amount, after_credit)],
    )
    conn.executemany(
        "UPDATE timebank_accounts SET balance = ? WHERE id = ?",
        [(after_debit, p.debit), (after_credit, p.credit)],
    )
    assert entry_id is not None
    return Posted(get_entry(conn, entry_id), replayed=False)


def reverse(
    conn: sqlite3.Connection,
    config: TimebankConfig,
    entry_id: int,
    *,
    source: str,
    actor: str,
    at: float,
    memo: str | None = None,
    fingerprint: str | None = None,
) -> Posted:
    """A new entry that takes `entry_id` back: the same amount, the other way."""
    found = find_source(conn, source)
    if found is not None and found["reversal_of"] == entry_id:
        return Posted(found, replayed=True)
    original = get_entry(conn, entry_id)
    if original["kind"] == "reversal":
        raise Refused(f"entry {entry_id} is itself a reversal; post a new entry instead")
    if original["reversed_by"] is not None:
        raise Refused(f"entry {entry_id} was reversed already, by entry {original['reversed_by']}")
    return post(
        conn,
        config,
        Posting(
            kind="reversal",
            source=source,
            debit=original["to"],
            credit=original["from"],
            amount=original["amount"],
            actor=actor,
            at=at,
            memo=memo,
            rule=original["rule"],
            role=original["role"],
            subject=original["subject"],
            reversal_of=entry_id,
            fingerprint=fingerprint,
        ),
    )


# -- reading entries -----------------------------------------------------------------

_ENTRY = """
SELECT e.id, e.at, e.kind, e.source, e.fingerprint, e.amount, e.rule, e.role, e.subject,
       e.actor, e.memo, e.reversal_of, r.id AS reversed_by, e.flagged,
       d.account AS "from", d.balance AS from_balance, c.account AS "to",
       c.balance AS to_balance
FROM timebank_entries e
JOIN timebank_movements d ON d.entry = e.id AND d.amount < 0
JOIN timebank_movements c ON c.entry = e.id AND c.amount > 0
LEFT JOIN timebank_entries r ON r.reversal_of = e.id
"""


def entries(
    conn: sqlite3.Connection, where: str = "1", params: tuple[Any, ...] = (), limit: int = -1
) -> list[dict[str, Any]]:
    """Entries, oldest first, with their two movements (`from`, `to` and the balance
    each left) and the entry that reversed each, if any."""
    cur = conn.execute(f"{_ENTRY} WHERE {where} ORDER BY e.id LIMIT ?", (*params, limit))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def find_source(conn: sqlite3.Connection, source: str) -> dict[str, Any] | None:
    found = entries(conn, "e.source = ?", (source,))
    return found[0] if found else None


def get_entry(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any]:
    found = entries(conn, "e.id = ?", (entry_id,))
    if not found:
        raise NotFound(f"no entry {entry_id}")
    return found[0]


def live_award(conn: sqlite3.Connection, subject: str, rule: str) -> dict[str, Any] | None:
    """The award of `rule` about `subject` that no reversal has taken back, if any."""
    found = entries(
        conn,
        "e.subject = ? AND e.rule = ? AND e.kind = 'award' AND r.id IS NULL",
        (subject, rule),
    )
    return found[-1] if found else None


# -- the invariants ------------------------------------------------------------------


def check(conn: sqlite3.Connection) -> dict[str, Any]:
    """The ledger's invariants, measured now: every entry has two movements summing to
    zero, all movements sum to zero, each cached balance is the sum of the account's
    movements, and each movement's balance is the running sum up to it."""
    total, movements = conn.execute(
        "SELECT COALESCE(SUM(amount), 0), count(*) FROM timebank_movements"
    ).fetchone()
    count = conn.execute("SELECT count(*) FROM timebank_entries").fetchone()[0]
    unbalanced = [
        {"entry": e, "movements": n, "sum": s}
        for e, n, s in conn.execute(
            "SELECT e.id, count(m.id), COALESCE(SUM(m.amount), 0) FROM timebank_entries e "
            "LEFT JOIN timebank_movements m ON m.entry = e.id GROUP BY e.id "
            "HAVING count(m.id) != 2 OR COALESCE(SUM(m.amount), 0) != 0 "
            "OR max(m.amount) != e.amount"
        )
    ]
    drifted = [
        {"account": a, "balance": b, "movements": s}
        for a, b, s in conn.execute(
            "SELECT a.id, a.balance, COALESCE(SUM(m.amount), 0) FROM timebank_accounts a "
            "LEFT JOIN timebank_movements m ON m.account = a.id GROUP BY a.id "
            "HAVING a.balance != COALESCE(SUM(m.amount), 0)"
        )
    ]
    running = [
        {"movement": m, "account": a, "balance": b, "running": r}
        for m, a, b, r in conn.execute(
            "SELECT id, account, balance, running FROM (SELECT id, account, balance, "
            "SUM(amount) OVER (PARTITION BY account ORDER BY id) AS running "
            "FROM timebank_movements) WHERE balance != running"
        )
    ]
    return {
        "ok": total == 0 and not unbalanced and not drifted and not running,
        "entries": count,
        "movements": movements,
        "sum": total,
        "unbalanced": unbalanced,
        "drifted": drifted,
        "running": running,
    }
