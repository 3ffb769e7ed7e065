"""The seats at run time: routing a seat's consoles, layouts, logins, pushes, and the
seats' state as their matrices change.

Every route goes through `Host.act` (cause `seat:<id>`), so the rights on computers,
interlocks, vetoes and the audit apply as to any other action. A layout is checked
whole before anything is sent (a layout naming one computer outside the caller's
rights routes nothing), then every console is routed at once: the routes go to the
bus together and the matrix's link takes them back to back, with no API or scheduling
round trip between them.

The seats' state is derived from their matrices' state (`view`): each state change of
a matrix re-derives the seats on it and publishes `seats.state` (and `seats.watchers`
when who watches changed) on the event bus, for SSE, plugins and MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from daemon import audit
from daemon.devices import describe_validation
from daemon.errors import BadArguments, Forbidden, GridhallError, NotFound, Refused
from daemon.events import Event
from daemon.seats.commands import (
    LoginCommand,
    PushCommand,
    RecallCommand,
    RouteCommand,
)
from daemon.seats.config import (
    ComputerConfig,
    LayoutRoute,
    SeatConfig,
    WallConfig,
)
from daemon.seats.layouts import PROFILE, SEAT, Also, Layout, Layouts, Presence
from daemon.seats.view import Matrix, Share, matching_layout, output_dict, watchers

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.host import Host

log = logging.getLogger(__name__)
SOURCE = "seats"  # the source of the seats' events


class SeatService:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.layouts = Layouts(host.store)
        self.presence = Presence(host.store)
        self.shares: dict[tuple[str, int], Share] = {}
        self._published: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._watching = asyncio.Event()
        self._take(host.config)

    def _take(self, config: Config) -> None:
        self.seats: dict[str, SeatConfig] = {s.id: s for s in config.seat}
        self.walls: dict[str, WallConfig] = {w.id: w for w in config.wall}

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        await self.layouts.seed(self.seats.values())
        await self.presence.load()
        observing = self.host.events.observe(self._on_event, self._watching)
        self._task = asyncio.create_task(observing, name="seats")
        await self._watching.wait()
        for seat_id in self.seats:
            self._publish(seat_id)

    async def reload(self, config: Config) -> None:
        """SIGHUP: the config's computers (rights), seats, walls and layouts."""
        self.host.rights.replace(config.computer)
        self._take(config)
        await self.layouts.seed(self.seats.values())
        for seat_id in self.seats:
            self._publish(seat_id)
        self.host.events.publish("seats.layouts", SOURCE, {"seat": None})

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_event(self, event: Event) -> None:
        if event.type == "lagged":
            for seat_id in self.seats:
                self._publish(seat_id)
        elif event.type in ("state", "availability"):
            self._prune_shares(event.source)
            for seat in self.seats.values():
                if seat.matrix == event.source:
                    self._publish(seat.id)

    def _prune_shares(self, matrix_id: str) -> None:
        matrix = self._matrix(matrix_id)
        for key, share in list(self.shares.items()):
            if key[0] == matrix_id and matrix.input(key[1]) != share.input:
                del self.shares[key]

    def _publish(self, seat_id: str) -> None:
        """`seats.state` when the seat's state changed, `seats.watchers` when who
        watches its computers did."""
        state = self.state(seat_id)
        before = self._published.get(seat_id)
        if state == before:
            return
        self._published[seat_id] = state
        self.host.events.publish("seats.state", SOURCE, {"seat": seat_id, "state": state})
        if before is None or before["watchers"] != state["watchers"]:
            data = {"seat": seat_id, "watchers": state["watchers"]}
            self.host.events.publish("seats.watchers", SOURCE, data)

    # -- reading -----------------------------------------------------------------------
    def get(self, seat_id: str) -> SeatConfig:
        try:
            return self.seats[seat_id]
        except KeyError:
            raise NotFound(f"no seat {seat_id!r}") from None

    def computer(self, computer_id: str) -> ComputerConfig:
        try:
            return self.host.rights.by_id[computer_id]
        except KeyError:
            raise NotFound(f"no computer {computer_id!r}") from None

    def _matrix(self, matrix_id: str) -> Matrix:
        device = self.host.devices.devices.get(matrix_id)
        return Matrix.of(matrix_id, device.state if device else {})

    def state(
        self, seat_id: str, who: str | None = None, role: str | None = None
    ) -> dict[str, Any]:
        """The seat as it is now; with a caller, each computer says the modes the
        caller may connect and push it in."""
        seat = self.get(seat_id)
        matrix = self._matrix(seat.matrix)
        device = self.host.devices.devices.get(seat.matrix)
        at = self.host.rights.computer_at
        consoles = [output_dict(c, matrix, at) for c in seat.consoles]
        layouts = self.layouts.of(seat.id)
        seated = self.presence.at.get(seat.id)
        places: list[SeatConfig | WallConfig] = [*self.seats.values(), *self.walls.values()]
        return {
            "id": seat.id,
            "name": seat.name or seat.id,
            "matrix": seat.matrix,
            "available": bool(device and device.available),
            "operator": seated.to_dict() if seated else None,
            "layout": matching_layout(layouts, consoles),
            "consoles": consoles,
            "computers": [self._computer_dict(self.computer(c), who, role) for c in seat.computers],
            "layouts": [{"id": lay.id, "name": lay.name or lay.id} for lay in layouts],
            "watchers": watchers(seat, matrix, places, at, self.shares, self.presence.at),
        }

    def _computer_dict(
        self, computer: ComputerConfig, who: str | None, role: str | None
    ) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": computer.id,
            "name": computer.name or computer.id,
            "input": computer.input,
            "secure": computer.secure,
        }
        if who is not None:
            found["modes"] = self.host.rights.modes(computer, who, role)
            found["share"] = self.host.rights.share_modes(computer, who, role)
        return found

    def overview(self, who: str, role: str | None) -> dict[str, Any]:
        matrices = {w.matrix for w in self.walls.values()}
        states = {m: self._matrix(m) for m in matrices}
        at = self.host.rights.computer_at
        return {
            "seats": [self.state(s, who, role) for s in self.seats],
            "walls": [
                {
                    "id": w.id,
                    "name": w.name or w.id,
                    "matrix": w.matrix,
                    "outputs": [output_dict(o, states[w.matrix], at) for o in w.outputs],
                }
                for w in self.walls.values()
            ],
        }

    # -- acting --------------------------------------------------------------------------
    async def route(
        self, seat_id: str, cmd: RouteCommand, who: str, role: str | None
    ) -> dict[str, Any]:
        """One console of the seat to one of its computers (or none)."""
        seat = self.get(seat_id)
        [planned] = await self._plan(seat, [LayoutRoute(**cmd.model_dump())], who, role, "route")
        await self.host.act(seat.matrix, "route", planned, who=who, cause=_cause(seat), role=role)
        self._publish(seat.id)
        return self.state(seat.id, who, role)

    async def recall(
        self, seat_id: str, cmd: RecallCommand, who: str, role: str | None
    ) -> dict[str, Any]:
        """Route every console of a layout at once; answers once every console's route
        was confirmed, or with the first failure and every console's outcome."""
        seat = self.get(seat_id)
        layout = self.layouts.get(seat.id, who if cmd.mine else SEAT, cmd.layout)
        results = await self._apply(seat, layout, who, role)
        return {**self.state(seat.id, who, role), "results": results}

    async def _apply(
        self, seat: SeatConfig, layout: Layout, who: str, role: str | None
    ) -> list[dict[str, Any]]:
        what = {"layout": layout.id, "owner": layout.owner or None}
        plan = await self._plan(seat, list(layout.routes), who, role, "recall_layout", what)
        outcomes = await asyncio.gather(
            *(
                self.host.act(seat.matrix, "route", args, who=who, cause=_cause(seat), role=role)
                for args in plan
            ),
            return_exceptions=True,
        )
        results: list[dict[str, Any]] = []
        failed: GridhallError | None = None
        for args, outcome in zip(plan, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, GridhallError):
                    raise outcome
                failed = failed or outcome
                error = {"code": outcome.code, "message": outcome.message}
                results.append({"console": args["output"], "status": "error", "error": error})
            else:
                results.append({"console": args["output"], "status": "ok"})
        detail = "; ".join(
            f"console {r['console']}: {r['error']['message'] if 'error' in r else 'ok'}"
            for r in results
        )
        await self._audit(who, "recall_layout", seat, what, failed.code if failed else "ok", detail)
        self._publish(seat.id)
        self.host.events.publish(
            "seats.layout_recalled",
            SOURCE,
            {"seat": seat.id, **what, "who": who, "results": results},
        )
        if failed is not None:
            raise type(failed)(f"layout {layout.id} on {seat.id}: {detail}")
        return results

    async def _plan(
        self,
        seat: SeatConfig,
        routes: list[LayoutRoute],
        who: str,
        role: str | None,
        what: str,
        args: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The route actions for `routes`, checked whole first: consoles and computers
        of the seat (422, 403) and the caller's rights (403). A refusal is audited and
        nothing is sent."""
        plan: list[dict[str, Any]] = []
        bad: list[str] = []
        forbidden: list[str] = []
        for r in routes:
            if seat.console(r.console) is None:
                bad.append(f"console {r.console} is not one of {seat.id}'s")
                continue
            if r.computer is None:
                plan.append({"input": 0, "output": r.console})
                continue
            computer = self.computer(r.computer)
            if r.computer not in seat.computers:
                forbidden.append(f"the computer {r.computer} is not one of {seat.id}'s")
                continue
            action = {"input": computer.input, "output": r.console, "mode": r.mode}
            if reason := self.host.rights.check(seat.matrix, "route", action, who, role):
                forbidden.append(reason)
            plan.append(action)
        if bad:
            raise BadArguments("; ".join(bad))
        if forbidden:
            detail = "; ".join(forbidden)
            await self._audit(who, what, seat, args, "forbidden", detail)
            raise Forbidden(detail)
        return plan

    async def save(
        self, seat_id: str, layout_id: str, name: str | None, who: str, owner: str
    ) -> dict[str, Any]:
        """Save the consoles' current routes as a layout. Consoles whose route is
        unknown, or that show a computer that is not the seat's, are left out and named."""
        seat = self.get(seat_id)
        routes, skipped = self._current(seat)
        if not routes:
            raise Refused(f"nothing to save at {seat.id}: " + "; ".join(skipped))
        what = {"layout": layout_id, "owner": owner or None, "skipped": skipped}
        also = self._edit_row(who, "save_layout", seat, what)
        layout = await self.layouts.put(seat.id, owner, layout_id, name, routes, who, also)
        self._layouts_changed(seat, owner)
        return {"layout": layout.to_dict(), "skipped": skipped}

    def _current(self, seat: SeatConfig) -> tuple[list[LayoutRoute], list[str]]:
        matrix = self._matrix(seat.matrix)
        routes, skipped = [], []
        for console in seat.consoles:
            input_ = matrix.input(console.output)
            computer = self.host.rights.computer_at(seat.matrix, input_)
            if input_ is None:
                skipped.append(
                    f"console {console.output}: its route is unknown (not reported by the "
                    "matrix since it reconnected)"
                )
            elif input_ == 0:
                routes.append(LayoutRoute(console=console.output))
            elif computer is None or computer.id not in seat.computers:
                skipped.append(
                    f"console {console.output}: input {input_} is not one of {seat.id}'s computers"
                )
            else:
                mode = matrix.mode(console.output) or "full"
                routes.append(
                    LayoutRoute.model_validate(
                        {"console": console.output, "computer": computer.id, "mode": mode}
                    )
                )
        return routes, skipped

    async def delete(self, seat_id: str, layout_id: str, who: str, owner: str) -> None:
        seat = self.get(seat_id)
        what = {"layout": layout_id, "owner": owner or None}
        await self.layouts.delete(
            seat.id, owner, layout_id, self._edit_row(who, "delete_layout", seat, what)
        )
        self._layouts_changed(seat, owner)

    def _layouts_changed(self, seat: SeatConfig, owner: str) -> None:
        if owner == SEAT:  # the seat's own: its state and Home Assistant's buttons change
            self.host.events.publish("seats.layouts", SOURCE, {"seat": seat.id})
            self._publish(seat.id)

    async def login(
        self, seat_id: str, cmd: LoginCommand, who: str, role: str | None
    ) -> dict[str, Any]:
        """`who` sits down at the seat: the one seated before has their profile kept,
        and `who`'s own layout is restored: the one named, else their profile, else the
        seat's default. The login stands even if the restore fails; `restore` says."""
        seat = self.get(seat_id)
        layout = self._to_restore(seat, who, cmd.layout)
        before = self.presence.at.get(seat.id)
        if before is not None and before.operator != who:
            await self._keep_profile(seat, before.operator)
        what = {"layout": layout.id if layout else None}
        await self.presence.sit(seat.id, who, self._edit_row(who, "login", seat, what))
        self.host.events.publish("seats.login", SOURCE, {"seat": seat.id, "operator": who})
        self._publish(seat.id)
        restore: dict[str, Any] | None = None
        if layout is not None:
            restore = {"layout": layout.id, "owner": layout.owner or None, "status": "ok"}
            try:
                restore["results"] = await self._apply(seat, layout, who, role)
            except GridhallError as exc:
                restore |= {"status": "error", "error": {"code": exc.code, "message": exc.message}}
        return {**self.state(seat.id, who, role), "restore": restore}

    def _to_restore(self, seat: SeatConfig, who: str, named: str | None) -> Layout | None:
        if named is not None:
            found = self.layouts.find(seat.id, who, named) or self.layouts.find(
                seat.id, SEAT, named
            )
            if found is None:
                raise NotFound(f"neither {who} nor {seat.id} has a layout {named!r}")
            return found
        profile = self.layouts.find(seat.id, who, PROFILE)
        if profile is not None or seat.default_layout is None:
            return profile
        return self.layouts.find(seat.id, SEAT, seat.default_layout)

    async def logout(self, seat_id: str, who: str, role: str | None) -> dict[str, Any]:
        """The seated operator leaves: their consoles are kept as their profile."""
        seat = self.get(seat_id)
        seated = self.presence.at.get(seat.id)
        if seated is None:
            raise Refused(f"nobody is logged in at {seat.id}")
        kept = await self._keep_profile(seat, seated.operator)
        what = {"operator": seated.operator}
        await self.presence.leave(seat.id, self._edit_row(who, "logout", seat, what))
        data = {"seat": seat.id, "operator": seated.operator, "by": who}
        self.host.events.publish("seats.logout", SOURCE, data)
        self._publish(seat.id)
        return {**self.state(seat.id, who, role), "profile": kept}

    async def _keep_profile(self, seat: SeatConfig, operator: str) -> dict[str, Any] | None:
        routes, skipped = self._current(seat)
        if not routes:
            log.info("seat %s: no known route to keep as %s's profile", seat.id, operator)
            return None
        layout = await self.layouts.put(seat.id, operator, PROFILE, None, routes, operator)
        return {"layout": layout.to_dict(), "skipped": skipped}

    async def push(
        self, seat_id: str, cmd: PushCommand, who: str, role: str | None
    ) -> dict[str, Any]:
        """Put one of the seat's computers on another seat's console or a wall output,
        in video mode unless the caller's rights let it be pushed in full."""
        seat = self.get(seat_id)
        computer = self.computer(cmd.computer)
        target = self.seats.get(cmd.target) or self.walls.get(cmd.target)
        if target is None:
            raise NotFound(f"no seat or wall {cmd.target!r}")
        outputs = [
            o.output
            for o in (target.consoles if isinstance(target, SeatConfig) else target.outputs)
        ]
        output = cmd.output or outputs[0]
        problems = []
        if target.id == seat.id:
            problems.append("push to another seat or a wall, not the seat itself")
        if output not in outputs:
            problems.append(f"output {output} is not one of {target.id}'s ({outputs})")
        if target.matrix != computer.matrix:
            problems.append(
                f"{target.id} is on {target.matrix}, {computer.id} on {computer.matrix}"
            )
        if problems:
            raise BadArguments("; ".join(problems))
        what = cmd.model_dump() | {"output": output}
        reason = None
        if computer.id not in seat.computers:
            reason = f"the computer {computer.id} is not one of {seat.id}'s"
        elif cmd.mode not in (allowed := self.host.rights.share_modes(computer, who, role)):
            reason = f"{who} may not push {computer.id} in {cmd.mode} mode" + (
                f"; only in: {', '.join(allowed)}" if allowed else ""
            )
        if reason:
            await self._audit(who, "push", seat, what, "forbidden", reason)
            raise Forbidden(reason)
        args = {"input": computer.input, "output": output, "mode": cmd.mode}
        # Known before the matrix's state changes, so the first watchers published
        # already say who pushed; set again after, in case a state change between
        # (another console's) pruned it.
        key = (target.matrix, output)
        share = Share(seat.id, computer.id, computer.input, cmd.mode, who, time.time())
        self.shares[key] = share
        try:
            await self.host.act(
                target.matrix, "route", args, who=who, cause=_cause(seat), role=role
            )
        except BaseException:
            if self.shares.get(key) is share:
                del self.shares[key]
            raise
        self.shares[key] = share
        await self._audit(who, "push", seat, what, "ok", None)
        self.host.events.publish("seats.pushed", SOURCE, {"seat": seat.id, **what, "who": who})
        self._publish(seat.id)
        if isinstance(target, SeatConfig):
            self._publish(target.id)
        return self.state(seat.id, who, role)

    async def command(
        self, seat_id: str, name: str, body: Mapping[str, Any], who: str, role: str | None
    ) -> dict[str, Any]:
        """A seat command by name (MQTT): `route`, `recall` or `push`."""
        models: dict[str, type[BaseModel]] = {
            "route": RouteCommand,
            "recall": RecallCommand,
            "push": PushCommand,
        }
        model = models.get(name)
        if model is None:
            raise NotFound(f"seats have no command {name!r}; commands: {', '.join(models)}")
        try:
            cmd = model.model_validate(body)
        except ValidationError as exc:
            raise BadArguments(f"{name}: {describe_validation(exc)}") from exc
        if isinstance(cmd, RouteCommand):
            return await self.route(seat_id, cmd, who, role)
        if isinstance(cmd, RecallCommand):
            return await self.recall(seat_id, cmd, who, role)
        assert isinstance(cmd, PushCommand)
        return await self.push(seat_id, cmd, who, role)

    @staticmethod
    def _edit_row(who: str, what: str, seat: SeatConfig, args: dict[str, Any]) -> Also:
        """An edit's audit row, for the edit's own transaction."""

        def row(conn: sqlite3.Connection) -> None:
            audit.insert(conn, who=who, what=what, target=f"seat:{seat.id}", cause=_cause(seat),
                         args=args)  # fmt: skip

        return row

    async def _audit(
        self,
        who: str,
        what: str,
        seat: SeatConfig,
        args: dict[str, Any] | None,
        result: str,
        detail: str | None,
    ) -> None:
        await audit.record(
            self.host.store, who=who, what=what, target=f"seat:{seat.id}", args=args,
            cause=_cause(seat), result=result, detail=detail,
        )  # fmt: skip


def _cause(seat: SeatConfig) -> str:
    return f"seat:{seat.id}"
