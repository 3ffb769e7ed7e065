"""API tokens and roles.

A token is shown once and stored only as its SHA-256: tokens are 256 random bits, so a
fast hash is enough (no password stretching needed), and lookup is one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from daemon.store import Store

BUILTIN_ROLES: dict[str, list[str]] = {
    "viewer": [],
    "operator": ["viewer"],
    "facility": ["operator"],
    "admin": ["facility"],
}
TOKEN_PREFIX = "gh_"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    token_id: int


class Roles:
    """Which roles a role includes, the built-in ones plus those plugins add."""

    def __init__(self, extra: dict[str, list[str]] | None = None) -> None:
        self.includes = {**BUILTIN_ROLES, **(extra or {})}

    def __contains__(self, role: str) -> bool:
        return role in self.includes

    def grants(self, role: str, required: str) -> bool:
        """Does `role` have the rights of `required`? admin has every right."""
        if role == "admin":
            return True
        seen, todo = set(), [role]
        while todo:
            r = todo.pop()
            if r == required:
                return True
            if r not in seen:
                seen.add(r)
                todo.extend(self.includes.get(r, []))
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(store: Store, name: str, role: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)",
            (name, role, hash_token(token), time.time()),
        )

    await store.write(insert)
    return token


class TokenCache:
    """Recently seen tokens, so a request costs no store round trip. A token revoked
    in the store (by another process) stops working within `ttl_s`."""

    def __init__(self, store: Store, ttl_s: float = 10.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._seen: dict[str, tuple[Principal, float]] = {}

    async def lookup(self, token: str) -> Principal | None:
        key = hash_token(token)
        now = time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal = await lookup(self.store, token)
        if principal is None:
            self._seen.pop(key, None)
        else:
            if len(self._seen) > 1000:  # bounded: tokens are few; drop all if not
                self._seen.clear()
            self._seen[key] = (principal, now + self.ttl_s)
        return principal


async def lookup(store: Store, token: str) -> Principal | None:
    rows = await store.fetchall(
        "SELECT id, name, role FROM tokens WHERE hash = ? AND revoked_at IS NULL",
        (hash_token(token),),
    )
    if not rows:
        return None
    return Principal(name=rows[0]["name"], role=rows[0]["role"], token_id=rows[0]["id"])
