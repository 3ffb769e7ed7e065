"""Earning rules applied to the ticket plugin's changes, inside one store transaction.

What "the same event" is: one change record, named by its `seq`. An award's source is
`ticket:<id>:<rule>:<seq>` and so is a reversal's (with the seq of the change that
took the award back). So a ticket closed on time (seq 10), reopened (seq 11) and
closed on time again (seq 12) is paid, taken back and paid again: three entries, one
award outstanding; and any of those changes delivered twice (the hook, then a
catch-up) is applied once. On top of the sources, a rule keeps at most one live
(unreversed) award per ticket, whatever the order changes arrive in.

The feed's cursor (the last `seq` applied) is written in the same transaction as the
entries, so a crash leaves either both or neither.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from daemon.errors import GridhallError, Refused
from plugins.timebank import accounts, ledger
from plugins.timebank.config import Rule, TimebankConfig

log = logging.getLogger(__name__)

FEED = "tickets"
ACTOR = "timebank:tickets"  # who opens an account for a ticket's earner


@dataclass(frozen=True)
class Award:
    rule: Rule
    account: str
    source: str
    subject: str


@dataclass(frozen=True)
class TakeBack:
    rule: Rule
    source: str
    subject: str


@dataclass
class Applied:
    """What applying a batch of changes did."""

    changes: int = 0
    cursor: int = 0  # the last seq applied, once the batch is
    gap: bool = False  # a change came before one the cursor has not seen
    posted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


def intents(change: dict[str, Any], config: TimebankConfig) -> list[Award | TakeBack]:
    """What the rules say a change should do: take-backs first, then awards."""
    ticket = change.get("ticket") or {}
    if ticket.get("id") is None or change.get("seq") is None:
        return []
    subject, transition = f"ticket:{ticket['id']}", change.get("transition")
    backs: list[Award | TakeBack] = []
    awards: list[Award | TakeBack] = []
    for rule in config.rule:
        if rule.transition is None:
            continue
        source = f"{subject}:{rule.id}:{change['seq']}"
        if transition in rule.reversed_on:
            backs.append(TakeBack(rule, source, subject))
        if rule.transition == transition and rule.matches(ticket):
            payee = ticket.get(rule.pay or "")
            if payee not in (None, ""):
                awards.append(Award(rule, f"{rule.account_kind}:{payee}", source, subject))
    return backs + awards


def cursor(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM timebank_cursor WHERE feed = ?", (FEED,)).fetchone()
    return int(row[0]) if row else 0


def apply_changes(
    conn: sqlite3.Connection,
    config: TimebankConfig,
    changes: list[dict[str, Any]],
    *,
    contiguous: bool,
    now: float,
    after: int | None = None,
) -> Applied:
    """Apply the changes after the cursor, in order, and move the cursor past them.
    `after`: a seq the caller knows is applied although the stored cursor may be behind
    it (changes no rule listens to, let through without a write). With `contiguous`,
    stop at the first change that is not the cursor's next one (`gap`): the caller
    catches up first, so nothing in between is skipped."""
    done, out = max(cursor(conn), after or 0), Applied()
    for change in changes:
        seq = int(change["seq"])
        if seq <= done:
            continue
        if contiguous and seq != done + 1:
            out.gap = True
            break
        _apply_one(conn, config, change, now, out)
        done = seq
        out.changes += 1
    if out.changes:
        conn.execute(
            "INSERT INTO timebank_cursor (feed, seq) VALUES (?, ?) "
            "ON CONFLICT (feed) DO UPDATE SET seq = excluded.seq",
            (FEED, done),
        )
    out.cursor = done
    return out


def _apply_one(
    conn: sqlite3.Connection,
    config: TimebankConfig,
    change: dict[str, Any],
    now: float,
    out: Applied,
) -> None:
    # Entries are dated when they are written, so `at` follows the ledger's order; a
    # change caught up after a restart counts in the period it was paid.
    at = now
    actor = f"tickets:{change.get('actor') or 'unknown'}"
    memo = f"ticket {change['ticket']['id']} {change.get('transition')}"
    if reason := (change.get("data") or {}).get("reason"):
        memo += f": {reason}"
    for intent in intents(change, config):
        if ledger.find_source(conn, intent.source) is not None:
            continue  # applied before: one event, one entry
        live = ledger.live_award(conn, intent.subject, intent.rule.id)
        try:
            if isinstance(intent, TakeBack):
                if live is not None:
                    out.posted.append(
                        ledger.reverse(
                            conn,
                            config,
                            live["id"],
                            source=intent.source,
                            actor=actor,
                            at=at,
                            memo=memo,
                        ).entry
                    )
            elif live is None:
                accounts.open_account(conn, intent.account, by=ACTOR, at=now)
                posting = ledger.Posting(
                    kind="award",
                    source=intent.source,
                    debit=config.pool_account,
                    credit=intent.account,
                    amount=intent.rule.amount or 0,
                    actor=actor,
                    at=at,
                    memo=memo,
                    rule=intent.rule.id,
                    role=intent.rule.role,
                    subject=intent.subject,
                )
                out.posted.append(ledger.post(conn, config, posting).entry)
        except Refused as exc:
            _refuse(conn, intent, at, exc.message, out)
        except GridhallError as exc:  # a change the rules cannot apply must not stop the feed
            log.warning("ticket change %s: %s not applied: %s", change["seq"], intent.source, exc)
            _refuse(conn, intent, at, exc.message, out)


def _refuse(
    conn: sqlite3.Connection, intent: Award | TakeBack, at: float, reason: str, out: Applied
) -> None:
    account = intent.account if isinstance(intent, Award) else ""
    amount = intent.rule.amount or 0
    conn.execute(
        "INSERT OR IGNORE INTO timebank_refused (source, at, account, amount, rule, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (intent.source, at, account, amount, intent.rule.id, reason),
    )
    out.refused.append({"source": intent.source, "account": account, "reason": reason})
