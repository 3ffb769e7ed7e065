"""The `[timebank]` config section: units, limits, earning rules and the catalogue, as data.

Every key has a default, so a hall without the section runs the time bank with the
rules below (one hour = one credit, counted in minutes, half-hour steps). A district
that writes any `[[timebank.rule]]` replaces the default rules whole, so what is paid
is always what the file says.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.hookspecs import TICKET_FIELDS, TICKET_TRANSITIONS

# The role whose holders confirm awards, open accounts, transfer and redeem.
ORGANISER_ROLE = "timebank-organiser"

# Kinds of account. Earners are people and organisations; the pool issues rewards
# and takes redemptions back, so its balance is minus everything outstanding.
EARNER_KINDS = ("member", "resident", "organisation")
KINDS = (*EARNER_KINDS, "pool")
# Only people belong to a family (a household) and may pass credits within it.
PERSON_KINDS = ("member", "resident")

# Who a ticket rule may pay: the fields of a change's `ticket` that name a person.
# What a rule may test and which transitions it may name come from the hooks' contract
# (daemon/hookspecs.py), not from the ticket plugin: the plugins meet only through
# hooks, and a time bank must work beside any ticket plugin that keeps the contract.
TICKET_PAYEES = ("reporter", "handler", "member")

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
AccountRef = Annotated[
    str, Field(pattern=r"^(member|resident|organisation|pool):\S{1,128}$", max_length=141)
]
Scalar = str | int | bool | None


class KindLimits(BaseModel):
    """Limits for one kind of account; an account may override `min` and `max`."""

    model_config = ConfigDict(extra="forbid")
    # None: no floor for the pool, minus `debt_cap` for the others.
    min: int | None = None
    max: int | None = None  # None: no ceiling
    policy: Literal["flag", "block"] = "block"


class Rule(BaseModel):
    """An earning rule. `on = "api"`: an organiser confirms it through POST /awards;
    `on = "ticket.<transition>"`: the ticket plugin's change pays the ticket's `pay`."""

    model_config = ConfigDict(extra="forbid")
    id: Ident
    on: str
    role: Ident  # the capacity it is earned in: the leaderboards' role
    name: str | None = None
    amount: Annotated[int | None, Field(gt=0)] = None  # a fixed award
    per_hour: Annotated[int | None, Field(gt=0)] = None  # api: credits per confirmed hour
    pay: Literal["reporter", "handler", "member"] | None = None  # ticket: who earns it
    account_kind: Literal["member", "resident", "organisation"] = "member"
    # ticket: fields that must equal these (a list: be one of them)
    when: dict[str, Scalar | list[Scalar]] = {}
    # ticket: fields that must be set and equal to each other, e.g. ["handler", "member"]:
    # the ticket's own grid member handled it
    same: list[str] = []
    reversed_on: list[str] = []  # ticket: transitions that take the award back

    def matches(self, ticket: dict[str, Any]) -> bool:
        if self.same and (
            ticket.get(self.same[0]) in (None, "")
            or any(ticket.get(k) != ticket.get(self.same[0]) for k in self.same[1:])
        ):
            return False
        return all(
            ticket.get(k) in v if isinstance(v, list) else ticket.get(k) == v
            for k, v in self.when.items()
        )

    @property
    def transition(self) -> str | None:
        return self.on.removeprefix("ticket.") if self.on.startswith("ticket.") else None

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if (self.amount is None) == (self.per_hour is None):
            raise ValueError("give exactly one of amount and per_hour")
        if self.on == "api":
            if self.pay is not None or self.when or self.same or self.reversed_on:
                raise ValueError("pay, when, same and reversed_on are for ticket rules")
            return self
        if self.transition not in TICKET_TRANSITIONS:
            raise ValueError(
                f"on must be 'api' or 'ticket.<transition>' ({', '.join(TICKET_TRANSITIONS)})"
            )
        if self.pay is None:
            raise ValueError("a ticket rule names who it pays: pay = 'reporter', 'handler'...")
        if self.per_hour is not None:
            raise ValueError("a ticket rule pays a fixed amount, not per_hour")
        if unknown := sorted(set(self.when) - set(TICKET_FIELDS)):
            raise ValueError(f"when: unknown ticket field(s) {', '.join(unknown)}")
        if unknown := sorted(set(self.same) - set(TICKET_FIELDS)):
            raise ValueError(f"same: unknown ticket field(s) {', '.join(unknown)}")
        if len(set(self.same)) == 1:
            raise ValueError("same: name two or more ticket fields that must be equal")
        if unknown := sorted(set(self.reversed_on) - set(TICKET_TRANSITIONS)):
            raise ValueError(f"reversed_on: unknown transition(s) {', '.join(unknown)}")
        return self


class Item(BaseModel):
    """A service or good in the catalogue."""

    model_config = ConfigDict(extra="forbid")
    id: Ident
    name: str
    kind: Literal["service", "goods"] = "service"
    price: Annotated[int, Field(gt=0)]
    provider: AccountRef | None = None  # who is paid; None: the pool
    stock: Annotated[int | None, Field(ge=0)] = None  # None: unlimited


DEFAULT_RULES = [
    Rule(
        id="report-verified",
        name="a report accepted as a real case, to its reporter",
        on="ticket.register",
        # Residents' channels: a grid member's own report through the app is the job.
        when={"channel": ["resident", "hotline", "open311"]},
        pay="reporter",
        account_kind="resident",
        role="reporter",
        amount=30,
        reversed_on=["invalidate"],
    ),
    Rule(
        id="closed-on-time",
        name="a ticket verified and closed on time, to the grid member who handled it",
        on="ticket.verify",
        when={"on_time": True},
        # The handler is paid only when it is the ticket's own grid member (网格员自办自结,
        # seed 002): a department handles coordination and hard cases, and departments
        # are judged by the measures, not paid credits (seed 000 rewards grid members and
        # residents).
        same=["handler", "member"],
        pay="handler",
        account_kind="member",
        role="grid_member",
        amount=60,
        reversed_on=["reopen"],
    ),
    Rule(
        id="volunteer-hours",
        name="volunteer hours confirmed by an organiser",
        on="api",
        role="volunteer",
        per_hour=60,
    ),
    Rule(id="mediation", name="a dispute mediated", on="api", role="mediator", amount=60),
    Rule(id="patrol", name="a patrol walked", on="api", role="volunteer", amount=60),
]


class TimebankConfig(BaseModel):
    """The `[timebank]` section."""

    model_config = ConfigDict(extra="forbid")
    unit: Literal["minutes", "points"] = "minutes"
    step: Annotated[int | None, Field(gt=0)] = None  # None: 30 for minutes, 1 for points
    spend_threshold: Annotated[int, Field(ge=0)] = 0  # a balance below this cannot spend
    debt_cap: Annotated[int, Field(ge=0)] = 0  # how far below zero people may go
    pool: Annotated[str, Field(pattern=r"^\S{1,128}$")] = "community"
    family_transfers: bool = True
    limits: dict[str, KindLimits] = {}  # by kind of account
    rule: list[Rule] = DEFAULT_RULES
    catalogue: list[Item] = []

    @model_validator(mode="after")
    def _consistent(self) -> TimebankConfig:
        if self.step is None:
            self.step = 30 if self.unit == "minutes" else 1
        if unknown := sorted(set(self.limits) - set(KINDS)):
            raise ValueError(f"limits: unknown kind(s) {', '.join(unknown)}; kinds: {KINDS}")
        amounts = {
            "spend_threshold": self.spend_threshold,
            "debt_cap": self.debt_cap,
            **{f"rule {r.id} amount": r.amount for r in self.rule},
            **{f"catalogue {i.id} price": i.price for i in self.catalogue},
            **{f"limits.{k}.min": v.min for k, v in self.limits.items()},
            **{f"limits.{k}.max": v.max for k, v in self.limits.items()},
        }
        for what, value in amounts.items():
            if value is not None and value % self.step:
                raise ValueError(f"{what} {value} is not a multiple of the step {self.step}")
        for name, items in (("rule", self.rule), ("catalogue", self.catalogue)):
            ids = [x.id for x in items]
            if dupes := sorted({i for i in ids if ids.count(i) > 1}):
                raise ValueError(f"duplicate {name} id(s): {', '.join(dupes)}")
        return self

    @property
    def pool_account(self) -> str:
        return f"pool:{self.pool}"

    @property
    def unit_step(self) -> int:
        assert self.step is not None  # set by the validator
        return self.step

    def limits_of(self, kind: str) -> KindLimits:
        found = self.limits.get(kind) or KindLimits()
        if found.min is None and kind != "pool":
            found = found.model_copy(update={"min": -self.debt_cap})
        return found

    def listens_to(self, transition: str | None) -> bool:
        """Whether any rule pays or takes back on this ticket transition."""
        if transition is None:
            return False
        return any(r.transition == transition or transition in r.reversed_on for r in self.rule)

    def rules_on(self, on: str) -> list[Rule]:
        return [r for r in self.rule if r.on == on]

    def find_rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rule if r.id == rule_id), None)

    def find_item(self, item_id: str) -> Item | None:
        return next((i for i in self.catalogue if i.id == item_id), None)
