"""Open311 api_keys: what an app (a WeChat mini program, a resident's app, a
partner's platform) files reports with.

Kept like the daemon's API tokens: 256 random bits, shown once, stored only as their
SHA-256 (a fast hash is enough for random keys; lookup is one indexed read). A key
has a name (the app it was handed to), which is the ticket's actor
(`open311:<name>`), and can be revoked. They are made with the CLI on the controller:
`gridhall tickets open311-key create --name APP` (docs/open311.md).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

from daemon.auth import hash_token

PREFIX = "o311_"


def create(conn: sqlite3.Connection, name: str) -> str:
    """A new key for `name` (inside a `Store.write`); ValueError if the name is taken."""
    key = PREFIX + secrets.token_urlsafe(32)
    try:
        conn.execute(
            "INSERT INTO ticket_open311_keys (name, hash, created_at) VALUES (?, ?, ?)",
            (name, hash_token(key), time.time()),
        )
    except sqlite3.IntegrityError:
        raise ValueError(f"a key named {name!r} exists; revoke it first") from None
    return key


def lookup(conn: sqlite3.Connection, key: str) -> str | None:
    """The name of a live key, or None."""
    row = conn.execute(
        "SELECT name FROM ticket_open311_keys WHERE hash = ? AND revoked_at IS NULL",
        (hash_token(key),),
    ).fetchone()
    return None if row is None else str(row[0])


def revoke(conn: sqlite3.Connection, name: str) -> bool:
    cur = conn.execute(
        "UPDATE ticket_open311_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
        (time.time(), name),
    )
    if cur.rowcount:
        # Revoked keys keep their row (the history says who filed what); the name is
        # free again for a new key.
        conn.execute(
            "UPDATE ticket_open311_keys SET name = name || '#' || id WHERE name = ?", (name,)
        )
    return cur.rowcount > 0


def listed(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT name, created_at, revoked_at FROM ticket_open311_keys ORDER BY created_at"
    )
    return [dict(zip(("name", "created_at", "revoked_at"), r, strict=True)) for r in cur]
