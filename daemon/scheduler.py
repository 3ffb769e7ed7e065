"""The scheduler: runs schedules on a clock, through the host, with their cause.

Why it is shaped this way:
- Every run goes through `Host.act` (or `Host.run_scene`) with the cause
  `schedule:<id>`, so interlocks, plugins' vetoes and the audit apply as to a person.
- The clock is injected (`daemon.clock`), so tests stand on a chosen minute.
- A transition owed to a device that is down (a catch-up at start, before the buses
  are up; a board that was unplugged at 08:30) stays *pending* and is delivered when
  the device comes back, until the next transition of its group supersedes it.
- At start, the latest transition of each group is run if it was missed (the daemon
  was down at 08:30 and up at 08:45: the hall opens), and what was missed is logged.
- A manual action on a device that a schedule drives is an *override*: it holds until
  that schedule's group next fires; meanwhile nothing pending is pushed onto the device.
- A year the calendar does not know flags the schedule (`calendar_unknown`) and the
  scheduler runs nothing it cannot place, instead of guessing.
- Schedules live in the store: the config seeds them, the API edits them; of the
  config's version and the API's, the newer change wins (see `schedule_store.seed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemon import schedule_store
from daemon.calendar import CalendarUnknown
from daemon.clock import Clock, SystemClock
from daemon.errors import BadArguments, GridhallError, NotFound, Unavailable
from daemon.schedules import ScheduleConfig, Timing

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.host import Host

log = logging.getLogger(__name__)

WHO = "scheduler"
CATCH_UP_DAYS = 45  # how far back start-up looks for a group's latest transition
MISSED_COUNT_MAX = 1000  # missed runs counted for the log, at most


def cause_of(schedule_id: str) -> str:
    return f"schedule:{schedule_id}"


def is_automated(cause: str) -> bool:
    """A cause the scheduler itself gave (or passed on: `schedule:<id>/...`)."""
    return cause.startswith("schedule:")


@dataclass
class Override:
    device: str
    by: str
    action: str
    at: dt.datetime
    until: dt.datetime | None  # the group's next transition; None: none is known

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "by": self.by,
            "action": self.action,
            "at": self.at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass
class Entry:
    """One schedule as the scheduler holds it."""

    spec: ScheduleConfig
    timing: Timing
    origin: str  # "config" or "api"
    settled_until: dt.datetime | None  # every run at or before this was dealt with
    state: str = "ok"  # ok | waiting | failed | calendar_unknown | disabled
    message: str | None = None
    next_at: dt.datetime | None = None
    pending: dt.datetime | None = None  # a run owed to a device that was down
    override: Override | None = None
    last_run: dict[str, Any] | None = None

    @property
    def group(self) -> str:
        return self.spec.group or f"~{self.spec.id}"


class Scheduler:
    def __init__(self, host: Host, clock: Clock | None = None) -> None:
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self.entries: dict[str, Entry] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        # Runs of scenes that a schedule started, by run id -> scene id: their actions
        # carry the cause `scene:<id>` and are not a person's, so they make no override.
        # Followed through the scene's own events, which the bus keeps in order.
        self._scene_runs: dict[Any, str] = {}

    # -- life -------------------------------------------------------------------------
    async def start(self) -> None:
        """Seed from the config, load from the store, catch up, then run."""
        await self.sync_config(self.host.config.schedule, fresh=True)
        await self._load()
        self._catch_up(self.clock.now())
        self._tasks = [
            asyncio.create_task(self._listen(), name="scheduler-events"),
            asyncio.create_task(self._run(), name="scheduler"),
        ]
        await self._listening.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def reload(self, config: Config | None = None) -> bool:
        """SIGHUP: the config's schedules (read again unless given), and the calendar's
        override files."""
        if config is None:
            from daemon.config import ConfigError, load

            try:
                config = load(self.host.config.file, self.host.plugins)
            except ConfigError as exc:
                log.error("reload: the config has errors; schedules unchanged:\n%s", exc)
                return False
        self.host.calendar.reload()
        changed = await self.sync_config(config.schedule, fresh=False)
        await self._load()
        log.info("reload: %d schedules (%s)", len(self.entries), changed or "no change")
        return True

    # -- the store ----------------------------------------------------------------------
    async def sync_config(self, specs: Iterable[ScheduleConfig], *, fresh: bool) -> str:
        """The config's schedules into the store (`schedule_store.seed` says how)."""
        return await schedule_store.seed(self.host.store, specs, fresh=fresh)

    async def _load(self) -> None:
        """Take the store's schedules, keeping what is known of each one unchanged."""
        old = self.entries
        entries: dict[str, Entry] = {}
        for row in await schedule_store.load(self.host.store):
            spec = row.spec
            entry = Entry(spec, Timing(spec, self.host.calendar), row.origin, row.settled_until)
            if (prev := old.get(spec.id)) is not None:
                entry.last_run, entry.override = prev.last_run, prev.override
                if prev.spec == spec:
                    entry.pending, entry.state, entry.message = (
                        prev.pending,
                        prev.state,
                        prev.message,
                    )
            entries[spec.id] = entry
        self.entries = entries
        now = self.clock.now()
        for entry in entries.values():
            self._plan(entry, now)
        self._wake.set()

    async def _settle(self, entry: Entry, slot: dt.datetime) -> None:
        entry.settled_until = slot
        await schedule_store.settle(self.host.store, entry.spec.id, slot)

    # -- edits through the API ------------------------------------------------------------
    def check(self, spec: ScheduleConfig) -> None:
        """The references a schedule makes, checked against the running hall."""
        if spec.scene is not None:
            library = getattr(self.host, "scenes", None)
            known = getattr(library, "scenes", None)
            if known is None:
                raise BadArguments("scenes are not available in this daemon")
            if spec.scene not in known:
                raise BadArguments(f"scene {spec.scene!r} does not exist")
            return
        device = self.host.devices.devices.get(spec.device or "")
        if device is None:
            raise BadArguments(f"device {spec.device!r} does not exist")
        try:
            device.parse_args(spec.action or "", spec.args)
        except NotFound as exc:
            raise BadArguments(exc.message) from exc

    async def create(self, spec: ScheduleConfig, who: str) -> Entry:
        self.check(spec)
        await schedule_store.insert(self.host.store, spec, who)
        await self._load()
        return self.entries[spec.id]

    async def update(self, spec: ScheduleConfig, who: str) -> Entry:
        self.check(spec)
        if not await schedule_store.replace(self.host.store, spec, who):
            raise NotFound(f"no schedule {spec.id!r}")
        await self._load()
        return self.entries[spec.id]

    async def delete(self, schedule_id: str, who: str) -> None:
        if not await schedule_store.remove(self.host.store, schedule_id, who):
            raise NotFound(f"no schedule {schedule_id!r}")
        await self._load()

    # -- what the API shows ---------------------------------------------------------------
    def describe(self, entry: Entry, runs: int = 5) -> dict[str, Any]:
        now = self.clock.now()
        upcoming: list[str] = []
        state, message = entry.state, entry.message
        if entry.spec.enabled:
            try:
                for t in entry.timing.after(now):
                    upcoming.append(t.isoformat())
                    if len(upcoming) >= runs:
                        break
            except CalendarUnknown as exc:
                state, message = "calendar_unknown", exc.message
        return {
            **entry.spec.model_dump(),
            "tz": entry.timing.tz.key,
            "origin": entry.origin,
            "state": state,
            "message": message,
            "next_run": upcoming[0] if upcoming else None,
            "next_runs": upcoming,
            "pending": entry.pending.isoformat() if entry.pending else None,
            "override": entry.override.to_dict() if entry.override else None,
            "last_run": entry.last_run,
        }

    def get(self, schedule_id: str) -> Entry:
        entry = self.entries.get(schedule_id)
        if entry is None:
            raise NotFound(f"no schedule {schedule_id!r}")
        return entry

    # -- planning ---------------------------------------------------------------------
    def _plan(self, entry: Entry, now: dt.datetime) -> None:
        """The entry's next run after `now`, or its flag."""
        entry.next_at = None
        if not entry.spec.enabled:
            entry.state, entry.message = "disabled", None
            return
        try:
            # Five runs ahead, so a year without data is flagged before it arrives.
            runs = entry.timing.next_runs(now, 5)
        except CalendarUnknown as exc:
            runs = []
            with contextlib.suppress(CalendarUnknown):
                runs = entry.timing.next_runs(now, 1)  # a run before the unknown year
            self._flag(entry, exc)
        else:
            if entry.state in ("calendar_unknown", "disabled"):
                entry.state, entry.message = "ok", None
        entry.next_at = runs[0] if runs else None

    def _flag(self, entry: Entry, exc: CalendarUnknown) -> None:
        if entry.state != "calendar_unknown":
            log.error("schedule %s: %s", entry.spec.id, exc.message)
            self.host.events.publish(
                "schedule",
                entry.spec.id,
                {"event": "calendar_unknown", "year": exc.year, "message": exc.message},
            )
        entry.state, entry.message = "calendar_unknown", exc.message

    def _latest_due(self, entry: Entry, slot: dt.datetime, now: dt.datetime) -> dt.datetime:
        """When the clock jumped over several runs (a suspended board, an NTP step),
        only the latest one is run: the state it sets is the one that should hold."""
        days = min(CATCH_UP_DAYS, (now - slot).days + 1)
        with contextlib.suppress(CalendarUnknown):
            latest = next(entry.timing.before(now, days), None)
            if latest is not None and latest > slot:
                log.warning(
                    "schedule %s: runs from %s to %s were missed; running the latest",
                    entry.spec.id,
                    slot.isoformat(),
                    latest.isoformat(),
                )
                return latest
        return slot

    def _group_next(self, entry: Entry) -> dt.datetime | None:
        times = [
            e.next_at
            for e in self.entries.values()
            if e.group == entry.group and e.next_at is not None
        ]
        return min(times) if times else None

    def _catch_up(self, now: dt.datetime) -> None:
        """Log what was missed while the daemon was down; owe each group its latest
        transition when that one was missed."""
        latest: dict[str, tuple[dt.datetime, Entry]] = {}
        for entry in self.entries.values():
            if not entry.spec.enabled:
                continue
            settled, missed, newest = entry.settled_until, 0, None
            try:
                for t in entry.timing.before(now, CATCH_UP_DAYS):
                    if settled is not None and t <= settled:
                        break
                    if entry.spec.group and (
                        entry.group not in latest or t > latest[entry.group][0]
                    ):
                        latest[entry.group] = (t, entry)
                    if settled is None:
                        break  # never run yet: nothing to call missed
                    missed, newest = missed + 1, newest or t
                    if entry.spec.group or missed >= MISSED_COUNT_MAX:
                        break  # a group needs only its latest; the log, a bound
            except CalendarUnknown as exc:
                self._flag(entry, exc)
                continue
            if newest is not None:
                log.warning(
                    "schedule %s (%s): missed %s run(s) while down, the latest due %s",
                    entry.spec.id,
                    entry.spec.target,
                    f"{missed}+" if missed >= MISSED_COUNT_MAX or entry.spec.group else missed,
                    newest.isoformat(),
                )
        for group, (slot, entry) in latest.items():
            # The group's latest transition across all members: owed only if it is
            # this member's and it was not run (a later member's run settles it).
            newest = max(
                (
                    e.settled_until
                    for e in self.entries.values()
                    if e.group == group and e.settled_until is not None
                ),
                default=None,
            )
            if newest is not None and newest >= slot:
                continue
            log.warning(
                "catch-up: group %s missed %s due %s; running it now",
                group,
                entry.spec.id,
                slot.isoformat(),
            )
            entry.pending = slot
            self.host.events.publish(
                "schedule",
                entry.spec.id,
                {"event": "catch_up", "group": group, "due": slot.isoformat()},
            )

    # -- running ------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._pass(self.clock.now())
            except Exception:  # the scheduler must outlive any one schedule's failure
                log.exception("scheduler pass failed")
            times = [e.next_at for e in self.entries.values() if e.next_at is not None]
            await self.clock.sleep_until(min(times) if times else None, self._wake)

    async def _pass(self, now: dt.datetime) -> None:
        due = sorted(
            (e for e in self.entries.values() if e.next_at is not None and e.next_at <= now),
            key=lambda e: e.next_at or now,
        )
        for entry in due:
            slot = entry.next_at
            assert slot is not None
            slot = self._latest_due(entry, slot, now)
            self._plan(entry, now)
            # This transition ends overrides and supersedes what its group still owed.
            for other in self.entries.values():
                if other.group == entry.group or (
                    entry.spec.device and other.spec.device == entry.spec.device
                ):
                    other.override = None
                    if other.pending is not None and other.pending <= slot:
                        other.pending = None
                        if other.state == "waiting":
                            other.state, other.message = "ok", None
            entry.pending = slot
        for entry in sorted(
            (e for e in self.entries.values() if e.pending is not None),
            key=lambda e: e.pending or now,
        ):
            await self._deliver(entry)

    async def _deliver(self, entry: Entry) -> None:
        slot = entry.pending
        assert slot is not None
        spec, cause = entry.spec, cause_of(entry.spec.id)
        detail: str | None
        if spec.device is not None:
            device = self.host.devices.devices.get(spec.device)
            if device is not None and not device.available:
                self._wait(entry, f"device {spec.device} is unavailable; runs when it is back")
                return
        try:
            if spec.scene is not None:
                runner: Callable[..., Awaitable[Any]] | None = getattr(self.host, "run_scene", None)
                if runner is None:
                    raise NotFound("scenes are not available in this daemon")
                await runner(spec.scene, who=WHO, cause=cause)
            else:
                assert spec.device is not None and spec.action is not None
                await self.host.act(spec.device, spec.action, spec.args, who=WHO, cause=cause)
        except Unavailable as exc:  # went down between the check and the send
            self._wait(entry, exc.message)
            return
        except GridhallError as exc:
            result, detail = exc.code, exc.message
        except Exception as exc:
            log.exception("schedule %s failed", spec.id)
            result, detail = "internal", f"{type(exc).__name__}: {exc}"
        else:
            result, detail = "ok", None
        entry.pending = None
        entry.last_run = {
            "due": slot.isoformat(),
            "at": self.clock.now().isoformat(),
            "result": result,
            "detail": detail,
        }
        if entry.state in ("waiting", "failed", "ok"):
            entry.state, entry.message = ("ok", None) if result == "ok" else ("failed", detail)
        await self._settle(entry, slot)
        self.host.events.publish("schedule", spec.id, {"event": "ran", **entry.last_run})
        if result != "ok":
            log.error("schedule %s (%s): %s: %s", spec.id, spec.target, result, detail)

    def _wait(self, entry: Entry, why: str) -> None:
        if entry.state != "waiting":
            log.warning("schedule %s: %s", entry.spec.id, why)
        entry.state, entry.message = "waiting", why

    # -- events: devices coming back, people acting ---------------------------------
    async def _listen(self) -> None:
        async with self.host.events.subscribe(maxsize=10_000) as sub:
            self._listening.set()
            async for event in sub:
                if event.type == "availability" and event.data.get("available"):
                    if any(
                        e.pending and e.spec.device == event.source for e in self.entries.values()
                    ):
                        self._wake.set()
                elif event.type.startswith("scene."):
                    self._follow_scenes(event)
                elif event.type == "action" and not self._automated(event.data):
                    await self._override(event.source, event.data)

    def _automated(self, data: dict[str, Any]) -> bool:
        cause = str(data.get("cause", ""))
        if cause.startswith("scene:"):
            return cause.removeprefix("scene:") in self._scene_runs.values()
        return is_automated(cause)

    def _follow_scenes(self, event: Any) -> None:
        """`scene.started` by a schedule, until `scene.done`/`failed`/`cancelled`."""
        run = event.data.get("run")
        if event.type == "scene.started":
            if is_automated(str(event.data.get("cause", ""))):
                self._scene_runs[run] = event.source
        elif event.type in ("scene.done", "scene.failed", "scene.cancelled"):
            self._scene_runs.pop(run, None)

    @staticmethod
    def _touches(entry: Entry, device: str, args: dict[str, Any]) -> bool:
        """Does a person's action on `device` touch what this schedule sets? On a relay
        board, a schedule of channel 1 is not overridden by a hand on channel 5."""
        if entry.spec.device != device or not entry.spec.enabled:
            return False
        mine, theirs = entry.spec.args.get("channel"), args.get("channel")
        return mine is None or theirs is None or mine == theirs

    async def _override(self, device: str, data: dict[str, Any]) -> None:
        now = self.clock.now()
        for entry in self.entries.values():
            if not self._touches(entry, device, data.get("args") or {}):
                continue
            entry.override = Override(
                device,
                str(data.get("who", "")),
                str(data.get("action", "")),
                now,
                self._group_next(entry),
            )
            if entry.pending is not None:
                log.info(
                    "schedule %s: %s acted on %s by hand; the pending run is dropped",
                    entry.spec.id,
                    entry.override.by,
                    device,
                )
                slot, entry.pending = entry.pending, None
                if entry.state == "waiting":
                    entry.state, entry.message = "ok", None
                await self._settle(entry, slot)  # dealt with: by the operator
            self.host.events.publish(
                "schedule", entry.spec.id, {"event": "override", **entry.override.to_dict()}
            )
