"""The workflow as a service: one transition, its arguments, who may make it, and its
effect on the ticket, in ONE transaction with its history row.

`workflow.next_state` says what is legal (409 with its reason otherwise); this module
says what each step does to the row: times, handler, parties told, deadline (set again
at registration and on a reopen), rework and reopen counts. After the commit the
change goes to `gridhall_ticket_changed` and out as `tickets.changed`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon import bounds
from daemon.bounds import LIST
from daemon.errors import BadArguments, NotFound, Refused
from plugins.tickets import changes, live, workflow
from plugins.tickets.config import TicketsConfig, Tier
from plugins.tickets.deadlines import Deadline
from plugins.tickets.intake import category_row, ticket_row
from plugins.tickets.routing import default_handler, parties

if TYPE_CHECKING:
    from daemon.calendar import Calendar
    from daemon.host import Host
    from plugins.tickets.alerts import Ladder

Conn = sqlite3.Connection
Row = dict[str, Any]
Told = list[tuple[str, str]]  # (party, role) told of the ticket by this transition
Party = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$", max_length=64)]
Note = Annotated[str, Field(min_length=1, max_length=2000)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note | None = None


class RegisterArgs(Args):
    """Accept the report as a case (立案), correcting what the reporter got wrong."""

    category: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    tier: Tier | None = None
    major: bool | None = None
    days: Annotated[float, Field(gt=0)] | None = None  # within a ranged deadline ("10-15wd")
    lead: Party | None = None  # a hard case's lead department (会商确定牵头部门)
    co: Annotated[list[Party], Field(max_length=LIST)] = []  # the other responsible departments


class DispatchArgs(Args):
    handler: Party | None = None  # default: by tier (the member, the department, the lead)
    co: Annotated[list[Party], Field(max_length=LIST)] = []


class ReportArgs(Args):
    media_url: Annotated[str, Field(max_length=2000)] | None = None


class ReasonArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class EvaluateArgs(Args):
    satisfaction: Literal["satisfied", "basic", "unsatisfied"]


class MergeArgs(Args):
    into: bounds.RowId


ARGS: dict[str, type[BaseModel]] = {
    "register": RegisterArgs,
    "dispatch": DispatchArgs,
    "accept": Args,
    "report": ReportArgs,
    "verify": Args,
    "rework": ReasonArgs,
    "evaluate": EvaluateArgs,
    "reopen": ReasonArgs,
    "merge": MergeArgs,
    "decline": ReasonArgs,
    "invalidate": ReasonArgs,
}
# The least role for each transition: the handler takes the ticket and reports back;
# the command center's dispatcher does the rest, and records a resident's evaluation.
ROLES: dict[str, str] = {
    name: ("handler" if name in ("accept", "report") else "dispatcher") for name in ARGS
}
assert set(ARGS) == set(workflow.TRANSITIONS)


async def apply(
    host: Host, ticket_id: int, transition: str, args: BaseModel, *, actor: str
) -> dict[str, Any]:
    """Make one transition; the change record once it is committed and told.
    NotFound (404), Refused (409, the workflow's reason), BadArguments (422)."""
    state = live.get(host)
    now_dt = host.clock.now()
    step = _Step(state.config, state.ladder, host.calendar, now_dt)

    def write(conn: sqlite3.Connection) -> tuple[dict[str, Any], float | None]:
        return step.run(conn, ticket_id, transition, args, actor)

    change, next_alert = await host.store.write_grouped(write)
    state.wake_for(next_alert)
    await changes.announce(host, change)
    return change


class _Step:
    """One transition inside its transaction."""

    def __init__(
        self, config: TicketsConfig, ladder: Ladder, calendar: Calendar, now: dt.datetime
    ) -> None:
        self.config, self.ladder, self.calendar = config, ladder, calendar
        self.now_dt, self.now = now, now.timestamp()

    def run(
        self,
        conn: sqlite3.Connection,
        ticket_id: int,
        transition: str,
        args: BaseModel,
        actor: str,
    ) -> tuple[dict[str, Any], float | None]:
        row = ticket_row(conn, ticket_id)
        if row is None:
            raise NotFound(f"no ticket {ticket_id}")
        to = workflow.next_state(row["state"], transition)
        sets: dict[str, Any] = {"state": to, "updated_at": self.now}
        told: list[tuple[str, str]] = []
        effect = getattr(self, f"_{transition}")
        effect(conn, row, args, sets, told)
        if to in workflow.DONE and row["done_at"] is None:
            sets["done_at"] = self.now
        assignments = ", ".join(f"{k} = ?" for k in sets)
        conn.execute(f"UPDATE tickets SET {assignments} WHERE id = ?", (*sets.values(), ticket_id))
        conn.executemany(
            "INSERT OR IGNORE INTO ticket_parties (ticket, party, role, at) VALUES (?, ?, ?, ?)",
            [(ticket_id, party, role, self.now) for party, role in told],
        )
        event = changes.event_values(
            None,
            ticket_id,
            at=self.now,
            actor=actor,
            transition=transition,
            from_state=row["state"],
            to_state=to,
            note=getattr(args, "note", None) or getattr(args, "reason", None),
            data=args.model_dump(exclude_none=True, exclude_defaults=True),
        )
        change = changes.record(conn, event)
        return change, sets.get("next_alert_at")

    # -- each transition's effect on the row ------------------------------------------
    def _register(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        sets["registered_at"] = self.now
        changed = args.category is not None and args.category != row["category"]
        cat = category_row(conn, args.category if changed else row["category"], retired=not changed)
        tier = args.tier or (cat["tier"] if changed else row["tier"])
        if changed:
            sets.update(category=cat["code"], department=cat["department"], major=cat["major"])
        if args.major is not None:
            sets["major"] = int(args.major)
        if tier != row["tier"]:
            sets["tier"] = tier
        competent = cat["competent"] if tier == "coordination" else None
        if competent != row["competent"]:
            sets["competent"] = competent  # only a coordination case goes there too
        for dept in [args.lead, *args.co]:
            if dept is not None:
                self._department(conn, dept)
        if args.lead is not None:
            sets["lead"] = args.lead
            told.append((args.lead, "lead"))
        told.extend((dept, "co") for dept in args.co)
        if changed or tier != row["tier"] or args.days is not None:
            # Counted from the report's collection, as the first deadline was.
            spec = cat["deadline"] if tier == cat["tier"] else self.config.tiers[tier]
            self._deadline(sets, Deadline.parse(spec), args.days, row["created_at"])

    def _dispatch(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        handler = args.handler or default_handler(
            row["tier"], row["member"], row["department"], row["lead"]
        )
        if handler is None:
            raise BadArguments(
                "handler: the ticket has no grid member and its category no department; "
                "name the handler"
            )
        if args.handler is not None and args.handler != row["member"]:
            self._party(conn, args.handler)
        for dept in args.co:
            self._department(conn, dept)
        sets["handler"] = handler
        if row["dispatched_at"] is None:
            sets["dispatched_at"] = self.now
        told.extend(
            parties(
                row["tier"], handler, member=row["member"], competent=row["competent"], co=args.co
            )
        )

    def _accept(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        if row["accepted_at"] is None:
            sets["accepted_at"] = self.now  # the response time ends at the first acceptance

    def _report(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        sets["reported_at"] = self.now
        if args.media_url is not None:
            sets["media_url"] = args.media_url

    def _verify(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        sets["closed_at"] = self.now
        sets["on_time"] = int(self.now <= row["due_at"])

    def _rework(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        sets["reworks"] = row["reworks"] + 1  # counts against the handler

    def _evaluate(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        sets["evaluated_at"] = self.now
        sets["satisfaction"] = args.satisfaction

    def _reopen(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        # Back to its handler with a fresh deadline, counted from the reopening.
        sets.update(reopens=row["reopens"] + 1, closed_at=None, on_time=None, done_at=None)
        cat = category_row(conn, row["category"], retired=True)
        spec = cat["deadline"] if cat["tier"] == row["tier"] else self.config.tiers[row["tier"]]
        self._deadline(sets, Deadline.parse(spec), None, self.now)

    def _merge(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        if args.into == row["id"]:
            raise BadArguments("into: a ticket cannot be merged into itself")
        target = conn.execute(
            "SELECT state, merged_into FROM tickets WHERE id = ?", (args.into,)
        ).fetchone()
        if target is None:
            raise BadArguments(f"into: no ticket {args.into}")
        if target[0] == workflow.DUPLICATE:
            raise Refused(
                f"ticket {args.into} is itself a duplicate of {target[1]}; merge into {target[1]}"
            )
        sets["merged_into"] = args.into

    def _decline(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        pass  # not this district's responsibility: the reason is in the history

    def _invalidate(self, conn: Conn, row: Row, args: Any, sets: Row, told: Told) -> None:
        pass  # the report was not real: the reason is in the history

    # -- helpers ----------------------------------------------------------------------
    def _deadline(
        self,
        sets: dict[str, Any],
        spec: Deadline,
        days: float | None,
        start: float,
    ) -> None:
        """A new deadline: reminders and supervision start over."""
        try:
            due = spec.after(dt.datetime.fromtimestamp(start, dt.UTC), self.calendar, days)
        except ValueError as exc:
            raise BadArguments(f"days: {exc}") from None
        due_at = due.timestamp()
        sets.update(due_at=due_at, reminded_at=None, escalation=0)
        sets["next_alert_at"] = self.ladder.first_alert(start, due_at)

    def _department(self, conn: sqlite3.Connection, dept: str) -> None:
        known = conn.execute("SELECT 1 FROM ticket_departments WHERE id = ?", (dept,))
        if known.fetchone() is None:
            raise BadArguments(f"no department {dept!r}")

    def _party(self, conn: sqlite3.Connection, party: str) -> None:
        """A handler is a department, or a person of the grid registry."""
        if conn.execute("SELECT 1 FROM ticket_departments WHERE id = ?", (party,)).fetchone():
            return
        try:
            person = conn.execute("SELECT 1 FROM grid_people WHERE id = ?", (party,)).fetchone()
        except sqlite3.OperationalError:  # no grid plugin: only departments are known
            person = None
        if person is None:
            raise BadArguments(f"handler: {party!r} is neither a department nor a grid person")
