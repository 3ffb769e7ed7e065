"""The time bank's API under /api/v1/timebank/.

Reads (accounts, leaderboards, rules, the catalogue) are the viewer's; everything that
writes the ledger, statements and the audit need `timebank-organiser`. Every write is
one store transaction (`Store.write`) holding its checks, the entry, its movements and
the cached balances. A posting route answers 201 with the entry, or 200 with the
entry an `Idempotency-Key` already posted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from daemon import bounds
from daemon.api.deps import Viewer, error_responses, require
from daemon.auth import Principal
from daemon.bounds import Short
from daemon.errors import BadArguments, NotFound, Refused
from daemon.host import Host
from plugins.timebank import accounts, ledger, reports
from plugins.timebank.config import ORGANISER_ROLE, PERSON_KINDS, AccountRef, TimebankConfig
from plugins.timebank.feed import config_of, now, publish_entry
from plugins.timebank.tables import NAME

Organiser = Annotated[Principal, Depends(require(ORGANISER_ROLE))]
# What a posting may answer: 201 with its entry, or 200 with the entry its
# Idempotency-Key posted already.
POSTED = {
    200: {"description": "the entry this Idempotency-Key posted already (`replayed`)"},
    **error_responses(404, 409),
}
AccountPath = Annotated[str, Path(description="<kind>:<holder>, e.g. resident:r-0001")]
Key = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="names the event: the same key posts once",
    ),
]
Memo = Annotated[str | None, Field(max_length=500)]


class AccountChange(BaseModel):
    """Only the fields given change; null clears a family or a limit."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str | None, Field(max_length=200)] = None
    family: Annotated[str | None, Field(min_length=1, max_length=128)] = None
    min_balance: bounds.Int64 | None = None
    max_balance: bounds.Int64 | None = None


class OpenAccount(AccountChange):
    id: AccountRef


class AwardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: Short
    account: AccountRef
    minutes: Annotated[int | None, Field(gt=0, le=24 * 60)] = None  # per_hour rules
    memo: Memo = None


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: Annotated[AccountRef, Field(alias="from")]
    to: AccountRef
    amount: bounds.Int64
    memo: Memo = None


class RedemptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: AccountRef
    item: Short
    memo: Memo = None


class Reversal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=500)]


def fingerprint(what: str, body: BaseModel) -> str:
    text = json.dumps([what, body.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def check_limits(body: AccountChange, config: TimebankConfig) -> None:
    for name in ("min_balance", "max_balance"):
        value = getattr(body, name)
        if value is not None and value % config.unit_step:
            raise BadArguments(f"{name} {value} is not a multiple of the step {config.unit_step}")


def build_router(host: Host) -> APIRouter:
    router = APIRouter(tags=[NAME])
    config = config_of(host)
    tz = host.calendar.tz

    async def posted(result: ledger.Posted, response: Response) -> dict[str, Any]:
        if result.replayed:
            response.status_code = 200
        else:
            publish_entry(host, result.entry)
        entry = {k: v for k, v in result.entry.items() if k != "fingerprint"}
        return {**entry, "replayed": result.replayed}

    @router.get("/")
    async def summary(who: Viewer) -> dict[str, Any]:
        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            def one(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            pool = accounts.find(conn, config.pool_account)
            return {
                "accounts": one("SELECT count(*) FROM timebank_accounts"),
                "entries": one("SELECT count(*) FROM timebank_entries"),
                "flagged": one("SELECT count(*) FROM timebank_entries WHERE flagged IS NOT NULL"),
                # Everything the pool has paid out and not got back is held by earners.
                "outstanding": -(pool["balance"] if pool else 0),
            }

        return {
            "unit": config.unit,
            "step": config.unit_step,
            "spend_threshold": config.spend_threshold,
            "debt_cap": config.debt_cap,
            "family_transfers": config.family_transfers,
            "pool": config.pool_account,
            **await host.store.read(read),
        }

    # -- accounts --------------------------------------------------------------------

    @router.get("/accounts")
    async def list_accounts(
        who: Viewer,
        kind: Literal["member", "resident", "organisation", "pool"] | None = None,
        family: str | None = None,
        after: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        rows = await host.store.fetchall(
            f"SELECT {accounts.COLUMNS} FROM timebank_accounts WHERE id > ?1 "
            "AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR family = ?3) ORDER BY id LIMIT ?4",
            (after, kind, family, limit),
        )
        return [accounts.public(dict(r), config) for r in rows]

    @router.post(
        "/accounts",
        status_code=201,
        responses=error_responses(409, described={409: "the account is open already"}),
    )
    async def open_account(body: OpenAccount, who: Organiser) -> dict[str, Any]:
        check_limits(body, config)

        def write(conn: sqlite3.Connection) -> dict[str, Any]:
            if not accounts.open_account(
                conn, body.id, by=who.name, at=now(host), name=body.name, family=body.family
            ):
                raise Refused(f"account {body.id} is open already")
            conn.execute(
                "UPDATE timebank_accounts SET min_balance = ?, max_balance = ? WHERE id = ?",
                (body.min_balance, body.max_balance, body.id),
            )
            return accounts.get(conn, body.id)

        return accounts.public(await host.store.write(write), config)

    @router.get("/accounts/{account}", responses=error_responses(404))
    async def get_account(account: AccountPath, who: Viewer) -> dict[str, Any]:
        found = await host.store.read(lambda conn: accounts.get(conn, account))
        return accounts.public(found, config)

    @router.patch("/accounts/{account}", responses=error_responses(404))
    async def change_account(
        account: AccountPath, body: AccountChange, who: Organiser
    ) -> dict[str, Any]:
        check_limits(body, config)
        changes = body.model_dump(include=body.model_fields_set)
        if not changes:
            raise BadArguments("nothing to change: give name, family, min_balance or max_balance")

        def write(conn: sqlite3.Connection) -> dict[str, Any]:
            found = accounts.get(conn, account)
            if changes.get("family") is not None and found["kind"] not in PERSON_KINDS:
                raise BadArguments(f"{account}: only people belong to a family")
            sets = ", ".join(f"{column} = ?" for column in changes)
            conn.execute(
                f"UPDATE timebank_accounts SET {sets} WHERE id = ?", (*changes.values(), account)
            )
            return accounts.get(conn, account)

        return accounts.public(await host.store.write(write), config)

    @router.get(
        "/accounts/{account}/statement",
        response_model=None,
        responses={
            200: {
                "description": "the statement, as JSON or CSV (`format`)",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            **error_responses(404),
        },
    )
    async def statement(
        account: AccountPath,
        who: Organiser,
        period: str | None = None,
        since: Annotated[dt.date | None, Query(alias="from")] = None,
        until: Annotated[dt.date | None, Query(alias="to")] = None,
        format: Literal["json", "csv"] = "json",
    ) -> dict[str, Any] | Response:
        """A period (`2026`, `2026-03`, `2026-Q1`, `all`), or days `from` .. `to`."""
        if period is not None and (since or until):
            raise BadArguments("give a period, or from/to, not both")
        span = (
            reports.period(period, tz)
            if period is not None
            else reports.day_range(since, until, tz)
        )

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            accounts.get(conn, account)
            return reports.statement(conn, account, span, tz)

        found = await host.store.read(read)
        if format == "json":
            return {**found, "unit": config.unit}
        filename = f"statement-{account.replace(':', '-')}-{span.label.replace('..', '_')}.csv"
        return Response(
            reports.statement_csv(found, config.unit),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    # -- postings --------------------------------------------------------------------

    @router.post(
        "/awards",
        status_code=201,
        responses=POSTED,
    )
    async def award(
        body: AwardRequest,
        who: Organiser,
        response: Response,
        key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)],
    ) -> dict[str, Any]:
        """Volunteer hours, a patrol, a mediation, confirmed by an organiser. The key
        names the event (e.g. `volunteer:2026-03-08-park:r-0001`): from anyone, the
        same key pays once."""
        rule = config.find_rule(body.rule)
        if rule is None or rule.on != "api":
            names = ", ".join(r.id for r in config.rule if r.on == "api")
            raise BadArguments(f"rule {body.rule!r} is not confirmed through the API ({names})")
        if rule.per_hour is not None:
            if body.minutes is None:
                raise BadArguments(f"rule {rule.id} pays per hour: give minutes")
            amount, rest = divmod(body.minutes * rule.per_hour, 60)
            if rest or amount % config.unit_step:
                raise BadArguments(
                    f"{body.minutes} minutes at {rule.per_hour} per hour is not a multiple "
                    f"of the step, {config.unit_step} {config.unit}"
                )
        elif body.minutes is not None:
            raise BadArguments(f"rule {rule.id} pays a fixed {rule.amount}: no minutes")
        else:
            amount = rule.amount or 0
        posting = ledger.Posting(
            kind="award",
            source=f"award:{key}",
            debit=config.pool_account,
            credit=body.account,
            amount=amount,
            actor=who.name,
            at=now(host),
            memo=body.memo or rule.name,
            rule=rule.id,
            role=rule.role,
            fingerprint=fingerprint("award", body),
        )
        return await posted(
            await host.store.write(lambda c: ledger.post(c, config, posting)), response
        )

    @router.post(
        "/transfers",
        status_code=201,
        responses=POSTED,
    )
    async def transfer(
        body: TransferRequest, who: Organiser, response: Response, key: Key = None
    ) -> dict[str, Any]:
        """Credits passed to a member of the same family (household)."""
        if not config.family_transfers:
            raise Refused("this district does not allow transfers between family members")

        def write(conn: sqlite3.Connection) -> ledger.Posted:
            giver, taker = accounts.get(conn, body.from_), accounts.get(conn, body.to)
            if (
                giver["family"] is None
                or giver["family"] != taker["family"]
                or giver["kind"] not in PERSON_KINDS
            ):
                raise Refused(f"{body.from_} and {body.to} are not members of one family")
            return ledger.post(
                conn,
                config,
                ledger.Posting(
                    kind="transfer",
                    source=f"transfer:{key or uuid.uuid4()}",
                    debit=body.from_,
                    credit=body.to,
                    amount=body.amount,
                    actor=who.name,
                    at=now(host),
                    memo=body.memo,
                    fingerprint=fingerprint("transfer", body),
                ),
            )

        return await posted(await host.store.write(write), response)

    @router.post(
        "/redemptions",
        status_code=201,
        responses=POSTED,
    )
    async def redeem(
        body: RedemptionRequest, who: Organiser, response: Response, key: Key = None
    ) -> dict[str, Any]:
        """A service or good from the catalogue, paid to its provider (or the pool)."""
        item = config.find_item(body.item)
        if item is None:
            raise NotFound(f"no item {body.item!r} in the catalogue")

        def write(conn: sqlite3.Connection) -> ledger.Posted:
            source = f"redemption:{key or uuid.uuid4()}"
            if item.stock is not None and ledger.find_source(conn, source) is None:
                if taken(conn, item.id) >= item.stock:
                    raise Refused(f"{item.name} is out of stock ({item.stock} redeemed)")
            return ledger.post(
                conn,
                config,
                ledger.Posting(
                    kind="redemption",
                    source=source,
                    debit=body.account,
                    credit=item.provider or config.pool_account,
                    amount=item.price,
                    actor=who.name,
                    at=now(host),
                    memo=body.memo or item.name,
                    rule=item.id,
                    fingerprint=fingerprint("redemption", body),
                ),
            )

        return await posted(await host.store.write(write), response)

    @router.post(
        "/entries/{entry_id}/reverse",
        status_code=201,
        responses=POSTED,
    )
    async def reverse(
        entry_id: Annotated[int, Path(ge=1, le=bounds.INT64)],
        body: Reversal,
        who: Organiser,
        response: Response,
    ) -> dict[str, Any]:
        """Take an entry back with a new entry the other way (a wrong confirmation, a
        refund); the entry itself stays in the ledger."""
        result = await host.store.write(
            lambda conn: ledger.reverse(
                conn,
                config,
                entry_id,
                source=f"reverse:{entry_id}",
                actor=who.name,
                at=now(host),
                memo=body.reason,
            )
        )
        return await posted(result, response)

    # -- reading the ledger ------------------------------------------------------------

    @router.get("/entries/{entry_id}", responses=error_responses(404))
    async def entry(
        entry_id: Annotated[int, Path(ge=1, le=bounds.INT64)], who: Organiser
    ) -> dict[str, Any]:
        found = await host.store.read(lambda conn: ledger.get_entry(conn, entry_id))
        return {k: v for k, v in found.items() if k != "fingerprint"}

    @router.get("/audit")
    async def audit(
        who: Organiser,
        after: Annotated[int, Query(ge=0, le=bounds.INT64)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        account: str | None = None,
        flagged: bool = False,
    ) -> dict[str, Any]:
        """Every entry, oldest first, paged by id (`next`), with its two movements."""
        return await host.store.read(
            lambda conn: reports.audit(
                conn, after=after, limit=limit, account=account, flagged=flagged
            )
        )

    @router.get("/audit/check")
    async def check(who: Organiser) -> dict[str, Any]:
        """The ledger's invariants, measured on the store now."""
        return await host.store.read(ledger.check)

    @router.get("/leaderboard")
    async def leaderboard(
        who: Viewer,
        period: str | None = None,
        role: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        """The top ten (`limit`) earners of each role in a period (default: this year)."""
        span = reports.period(period or str(host.clock.now().astimezone(tz).year), tz)
        boards = await host.store.read(lambda conn: reports.leaderboards(conn, span, role, limit))
        return {**span.to_dict(tz), "unit": config.unit, "boards": boards}

    @router.get("/rules")
    async def rules(who: Viewer) -> list[dict[str, Any]]:
        return [r.model_dump() for r in config.rule]

    @router.get("/catalogue")
    async def catalogue(who: Viewer) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [
                {
                    **i.model_dump(),
                    "left": None if i.stock is None else max(0, i.stock - taken(conn, i.id)),
                }
                for i in config.catalogue
            ]

        return await host.store.read(read)

    return router


def taken(conn: sqlite3.Connection, item: str) -> int:
    """Redemptions of an item that no reversal has refunded."""
    row = conn.execute(
        "SELECT count(*) FROM timebank_entries e WHERE e.kind = 'redemption' AND e.rule = ? "
        "AND NOT EXISTS (SELECT 1 FROM timebank_entries r WHERE r.reversal_of = e.id)",
        (item,),
    ).fetchone()
    return int(row[0])
