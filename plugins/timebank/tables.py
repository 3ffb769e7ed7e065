"""The time bank's tables, in its own migration namespace `timebank`.

Double entry, as TimeOverflow keeps it: an entry is one transfer, and it has exactly
two movements, one taking from an account and one giving to another, that sum to
zero. A balance is the sum of an account's movements; `timebank_accounts.balance`
caches it and is changed in the same transaction as the movements, and each movement
keeps the balance it left, so a statement needs no running sum. Entries and movements
are append-only (triggers refuse UPDATE and DELETE): a mistake is undone by a new
entry that reverses it, never by editing or deleting one.

Amounts are integers (minutes or points, `[timebank] unit`). Times are epoch seconds.
"""

from __future__ import annotations

from daemon.store import Migration

NAME = "timebank"

MIGRATIONS = [
    Migration(
        NAME,
        1,
        """
        CREATE TABLE timebank_accounts (
            id TEXT PRIMARY KEY,               -- "<kind>:<holder>", e.g. "member:p-0001"
            kind TEXT NOT NULL CHECK (kind IN ('member', 'resident', 'organisation', 'pool')),
            holder TEXT NOT NULL,              -- the grid registry's id for the person or body
            name TEXT,
            family TEXT,                       -- a household: its accounts may pass credits
            min_balance INTEGER,               -- NULL: the kind's limit from the config
            max_balance INTEGER,
            balance INTEGER NOT NULL DEFAULT 0,  -- = the sum of its movements, same transaction
            opened_at REAL NOT NULL,
            opened_by TEXT NOT NULL
        );
        CREATE INDEX timebank_accounts_family ON timebank_accounts(family)
            WHERE family IS NOT NULL;
        CREATE TABLE timebank_entries (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL
                CHECK (kind IN ('award', 'reversal', 'transfer', 'redemption')),
            source TEXT NOT NULL UNIQUE,       -- the event that caused it: one event, one entry
            fingerprint TEXT,                  -- the request behind an API key, to spot reuse
            amount INTEGER NOT NULL CHECK (amount > 0),
            rule TEXT,                         -- award: its earning rule; redemption: the item
            role TEXT,                         -- award: the capacity it was earned in
            subject TEXT,                      -- what it is about, e.g. "ticket:17"
            actor TEXT NOT NULL,
            memo TEXT,
            reversal_of INTEGER UNIQUE REFERENCES timebank_entries(id),
            flagged TEXT                       -- a limit passed under the flag policy: why
        );
        CREATE INDEX timebank_entries_at ON timebank_entries(at);
        CREATE INDEX timebank_entries_subject ON timebank_entries(subject, rule)
            WHERE subject IS NOT NULL;
        CREATE INDEX timebank_entries_flagged ON timebank_entries(id) WHERE flagged IS NOT NULL;
        CREATE TABLE timebank_movements (
            id INTEGER PRIMARY KEY,
            entry INTEGER NOT NULL REFERENCES timebank_entries(id),
            account TEXT NOT NULL REFERENCES timebank_accounts(id),
            amount INTEGER NOT NULL CHECK (amount <> 0),  -- signed: + receives, - gives
            balance INTEGER NOT NULL                      -- the account's balance after it
        );
        CREATE INDEX timebank_movements_account ON timebank_movements(account, id);
        CREATE INDEX timebank_movements_entry ON timebank_movements(entry);
        CREATE TABLE timebank_refused (        -- automatic awards a `block` limit kept out
            source TEXT PRIMARY KEY,
            at REAL NOT NULL,
            account TEXT NOT NULL,
            amount INTEGER NOT NULL,
            rule TEXT,
            reason TEXT NOT NULL
        );
        CREATE TABLE timebank_cursor (         -- the last change of a feed applied
            feed TEXT PRIMARY KEY,             -- "tickets"
            seq INTEGER NOT NULL
        );
        CREATE TRIGGER timebank_entries_append_only_u BEFORE UPDATE ON timebank_entries
            BEGIN SELECT RAISE(ABORT, 'timebank entries are append-only'); END;
        CREATE TRIGGER timebank_entries_append_only_d BEFORE DELETE ON timebank_entries
            BEGIN SELECT RAISE(ABORT, 'timebank entries are append-only'); END;
        CREATE TRIGGER timebank_movements_append_only_u BEFORE UPDATE ON timebank_movements
            BEGIN SELECT RAISE(ABORT, 'timebank movements are append-only'); END;
        CREATE TRIGGER timebank_movements_append_only_d BEFORE DELETE ON timebank_movements
            BEGIN SELECT RAISE(ABORT, 'timebank movements are append-only'); END;
        """,
        "time bank: accounts, double-entry ledger, refused awards, the ticket feed's cursor",
    ),
]
