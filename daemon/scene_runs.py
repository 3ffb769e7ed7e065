"""One run of a scene: its steps at their planned times, its outcome step by step.

Every action goes through `Host.act` with cause `scene:<id>`, so interlocks, plugin
vetoes and the audit apply to a scene exactly as to an operator's click.

Timing: each step has a planned start, the previous step's end (or, after a plain
wait, its planned end) plus its `delay_ms`. The run sleeps until that absolute time on
the loop's monotonic clock, so sleep errors never add up along a sequence, and every
step reports `late_ms`, how far its start landed from its plan.

Cancelling is cooperative: waits (delays, `wait_ms`, `until`) stop at once, but an
action already sent to a device is let finish, because cutting it short (a Modbus write
sent, its read-back not) would leave the device's state unknown. So a cancelled run
reports exactly which steps were done, and the devices are in the state those steps
left them in.

Progress is published on the event bus (and so SSE) as `scene.started`,
`scene.step_started`, `scene.step_done`, `scene.step_failed`, `scene.step_skipped`,
`scene.step_cancelled`, then `scene.done`, `scene.failed` or `scene.cancelled`; the
source is the scene's id and every event carries the run's id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daemon.errors import GridhallError
from daemon.interlocks import match
from daemon.scenes import SceneConfig, Step

if TYPE_CHECKING:
    from daemon.host import Host

log = logging.getLogger(__name__)
STATE_CHECK_S = 0.02  # how often an `until` looks at the device's state


@dataclass
class StepOutcome:
    path: str  # "3", or "3.1" for the first branch of the parallel group at step 3
    what: str
    status: str = "pending"  # running, done, failed, skipped, cancelled
    planned_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    late_ms: float | None = None
    error: str | None = None
    # For a step with an action: whether the device confirmed it. A step cancelled
    # while it waited for its `until` has its action done: the outcome says so.
    action_done: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Run:
    host: Host
    scene: SceneConfig
    who: str
    cause: str
    role: str | None = None  # the role of whoever started it: the rights of its actions
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = "running"  # done, failed, cancelled
    error: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    steps: list[StepOutcome] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    # Awaited as the run ends, before anyone awaiting it wakes: a caller that saw the
    # run end must find the scene free and its outcome kept (a done-callback would
    # come a loop turn late).
    on_end: Callable[[Run], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self._cancel = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        # Epoch times for the outcome, from the loop's monotonic clock, so the two agree.
        self._mono0 = self._loop.time()
        self._wall0 = time.time()
        self.started_at = self._wall0
        self._outcomes: dict[int, StepOutcome] = {}
        self._add_outcomes(self.scene.step, "")

    def _add_outcomes(self, steps: list[Step], prefix: str) -> None:
        for i, s in enumerate(steps, start=1):
            out = StepOutcome(f"{prefix}{i}", s.describe())
            if s.action is not None:
                out.action_done = False
            self.steps.append(out)
            self._outcomes[id(s)] = out
            if s.parallel:
                self._add_outcomes(s.parallel, f"{prefix}{i}.")

    # -- the public side ------------------------------------------------------------------
    @property
    def cause_of_actions(self) -> str:
        return f"scene:{self.scene.id}"

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"scene:{self.scene.id}")

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.shield(self.task)

    async def cancel(self) -> None:
        """Stop at the next wait; an action in flight finishes first. Returns once the
        run has stopped."""
        self._cancel.set()
        await self.wait()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "scene": self.scene.id,
            "status": self.status,
            "who": self.who,
            "cause": self.cause,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps],
        }

    # -- running --------------------------------------------------------------------------
    def _wall(self, mono: float) -> float:
        return self._wall0 + (mono - self._mono0)

    def _publish(self, name: str, **data: Any) -> None:
        self.host.events.publish(f"scene.{name}", self.scene.id, {"run": self.id, **data})

    async def _sleep_until(self, deadline: float) -> bool:
        """Sleep until `deadline` (loop time); False when cancelled first."""
        delay = deadline - self._loop.time()
        if self._cancel.is_set():
            return False
        if delay <= 0:
            return True
        try:
            await asyncio.wait_for(self._cancel.wait(), delay)
        except TimeoutError:
            return True
        return False

    async def _run(self) -> None:
        try:
            await self._steps()
        finally:
            if self.on_end is not None:
                await self.on_end(self)

    async def _steps(self) -> None:
        self._publish("started", who=self.who, cause=self.cause, steps=len(self.scene.step))
        next_at = self._loop.time()
        failed = False
        try:
            for s in self.scene.step:
                out = self._outcomes[id(s)]
                if failed:
                    self._finish(s, "skipped")
                    continue
                if self._cancel.is_set() or not await self._sleep_until(next_at):
                    self._finish(s, "cancelled")
                    continue
                ok, ended = await self._step(s, next_at)
                if out.status == "cancelled":
                    continue
                next_at = ended + s.delay_ms / 1000
                if not ok and self.scene.on_error == "stop":
                    failed = True
                    self.error = f"step {out.path} ({out.what}) failed: {out.error}"
        except Exception as exc:  # a bug here must end the run reported, not silently
            log.exception("scene %s: run failed", self.scene.id)
            failed, self.error = True, f"{type(exc).__name__}: {exc}"
        if self._cancel.is_set():
            self.status = "cancelled"
        elif failed:
            self.status = "failed"
        else:
            self.status = "done"
        self.ended_at = time.time()
        self.host.metrics.scenes.labels(self.scene.id, self.status).inc()
        summary = {s.status for s in self.steps}
        self._publish(
            self.status,
            error=self.error,
            failed_steps=[s.path for s in self.steps if s.status == "failed"],
            statuses=sorted(summary),
        )

    def _finish(self, s: Step, status: str) -> None:
        """Mark a step that did not run (and the branches of a group) skipped or cancelled."""
        out = self._outcomes[id(s)]
        if out.status in ("pending", "running"):
            out.status = status
            self._publish(f"step_{status}", step=out.path, what=out.what)
        for branch in s.parallel or []:
            self._finish(branch, status)

    async def _step(self, s: Step, planned: float) -> tuple[bool, float]:
        """Run one step planned at `planned` (loop time); (succeeded, loop time it ended)."""
        out = self._outcomes[id(s)]
        started = self._loop.time()
        out.status = "running"
        out.planned_at = self._wall(planned)
        out.started_at = self._wall(started)
        out.late_ms = round((started - planned) * 1000, 3)
        self._publish("step_started", step=out.path, what=out.what, late_ms=out.late_ms)
        ok = True
        try:
            if s.parallel is not None:
                results = await asyncio.gather(*(self._step(b, planned) for b in s.parallel))
                ok = all(r for r, _ in results)
                if not ok:
                    out.error = "; ".join(
                        f"{o.path}: {o.error}"
                        for b in s.parallel
                        if (o := self._outcomes[id(b)]).status == "failed"
                    )
            elif s.wait_ms is not None:
                if not await self._sleep_until(planned + s.wait_ms / 1000):
                    return self._cancelled(s)
                ended = planned + s.wait_ms / 1000
                return self._done(s, True, ended)
            else:
                if s.action is not None:
                    if self._cancel.is_set():
                        return self._cancelled(s)
                    await self.host.act(
                        s.device or "",
                        s.action,
                        s.args,
                        who=self.who,
                        cause=self.cause_of_actions,
                        role=self.role,
                    )
                    out.action_done = True
                if s.until is not None:
                    reached = await self._until(s)
                    if reached is None:
                        return self._cancelled(s)
                    if not reached:
                        ok = False
                        out.error = (
                            f"{s.device} did not reach {s.until_text()} in {s.timeout_s:g} s"
                        )
        except GridhallError as exc:
            ok, out.error = False, f"{exc.code}: {exc.message}"
        except Exception as exc:
            log.exception("scene %s: step %s raised", self.scene.id, out.path)
            ok, out.error = False, f"{type(exc).__name__}: {exc}"
        if self._cancel.is_set() and s.parallel is not None:
            if any(self._outcomes[id(b)].status == "cancelled" for b in s.parallel):
                return self._cancelled(s)
        return self._done(s, ok, self._loop.time())

    def _done(self, s: Step, ok: bool, ended: float) -> tuple[bool, float]:
        out = self._outcomes[id(s)]
        out.status = "done" if ok else "failed"
        out.ended_at = self._wall(ended)
        if ok:
            self._publish("step_done", step=out.path, what=out.what)
        else:
            self._publish("step_failed", step=out.path, what=out.what, error=out.error)
        return ok, ended

    def _cancelled(self, s: Step) -> tuple[bool, float]:
        out = self._outcomes[id(s)]
        out.ended_at = time.time()
        self._finish(s, "cancelled")
        return False, self._loop.time()

    async def _until(self, s: Step) -> bool | None:
        """Wait for the device's state to match; True, False on timeout, None cancelled."""
        assert s.device is not None and s.until is not None
        device = self.host.devices.get(s.device)
        deadline = self._loop.time() + s.timeout_s
        while True:
            if device.available and match(device.state, s.until):
                return True
            now = self._loop.time()
            if now >= deadline:
                return False
            if not await self._sleep_until(min(deadline, now + STATE_CHECK_S)):
                return None
