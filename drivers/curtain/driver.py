"""`relay-curtain`: a curtain motor on an (open, close) channel pair of a relay board.

The board is any power device whose driver is a `RelayBoard` (`drivers.relays`): a
Modbus relay board, or relays that are themselves on MQTT (a Tasmota, a Shelly). The
curtain has no link of its own: it switches the board's channels through the board's
driver (`switch`, on the board's link) and is available when the board is. The pair
is never on together: the other channel is switched off, verified, before one is
switched on, and the board itself refuses any write that would put both on (a guard
this driver adds to it), so a direct `on` through the API gets 409 too.

An action answers once the board confirmed the motor started (`moving` "opening" or
"closing"). A background task then follows the run, reporting the estimated position
every half second, and switches the motor off when the run is done. A new command
takes over: it cancels that task while it waits (never mid-write) and switches what it
needs itself. The position is saved when a run ends, so it survives a restart; a daemon
that stops mid-run switches the motor off first.

What is not known is not guessed: when the board drops mid-run, the run ends with the
position estimated up to then; when the curtain (re)connects and finds a channel of its
pair on with no run of its own going, it switches it off (nobody knows how long it has
run) and keeps the estimate. The next run to an end stop re-synchronises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast

from pydantic import Field, model_validator

from daemon.errors import DeviceError, GridhallError, NotFound, Refused, Unavailable
from daemon.kinds import Kind, NoArgs, PositionArgs, State
from drivers.base import Driver, Options
from drivers.curtain import travel
from drivers.relays import RelayBoard

if TYPE_CHECKING:
    from daemon.config import Config, DeviceConfig
    from daemon.devices import Device

log = logging.getLogger(__name__)

REPORT_EVERY_S = 0.5
Channel = Annotated[int, Field(ge=1, le=256)]


RELAY = ("options", "relay")  # where config errors about the relay reference point


class CurtainOptions(Options):
    relay: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=64)]
    open_channel: Channel
    close_channel: Channel
    travel_s: Annotated[float, Field(gt=0, le=600)]
    # A run to an end stop lasts this much longer than travel_s, so a drifted estimate
    # or a motor slowed by the cold still reaches the stop.
    end_margin_percent: Annotated[int, Field(ge=0, le=100)] = 10
    # A reversing motor is left to stop before it is driven the other way.
    reverse_pause_ms: Annotated[int, Field(ge=0, le=10_000)] = 500

    @model_validator(mode="after")
    def _two_channels(self) -> CurtainOptions:
        if self.open_channel == self.close_channel:
            raise ValueError("open_channel and close_channel are the same channel")
        return self


class RelayCurtain(Driver[None]):
    name: ClassVar[str] = "relay-curtain"
    kind: ClassVar[Kind] = Kind.CURTAIN
    Options = CurtainOptions
    options: CurtainOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._board: Device | None = None
        self._position = travel.CLOSED  # a curtain never seen is taken as closed
        self._run: travel.Run | None = None
        self._follower: asyncio.Task[None] | None = None
        # One command (or the end of a run) at a time drives the motor.
        self._lock = asyncio.Lock()
        self._saved: float | None = None
        self._loaded = False
        # Set when a switch of ours did not complete: the pair's coils are unknown until
        # read_state has read them back, so polls fail and the device re-syncs.
        self._doubt: str | None = None

    # -- the board -------------------------------------------------------------------
    def bind(self, devices: Any) -> None:
        try:
            board = devices.get(self.options.relay)
        except NotFound:
            return  # check-config reports it; read_state says so
        if isinstance(board.driver, RelayBoard):
            self._board = board
            board.driver.add_guard(self._interlock)

    @classmethod
    def check_device(
        cls, device: DeviceConfig, options: Any, config: Config
    ) -> Iterable[tuple[tuple[Any, ...], str]]:
        o = cast(CurtainOptions, options)
        classes = config.driver_classes

        def is_board(dev: DeviceConfig) -> bool:
            cls = classes.get(dev.id)
            return dev.kind is Kind.POWER and cls is not None and issubclass(cls, RelayBoard)

        boards = sorted(d.id for d in config.device if is_board(d))
        board = next((d for d in config.device if d.id == o.relay), None)
        if board is None:
            known = ", ".join(boards) or "none"
            yield RELAY, f"relay {o.relay!r} is not a device (relay boards: {known})"
            return
        if not is_board(board):
            yield (
                ("options", "relay"),
                f"device {o.relay!r} is a {board.driver!r}, which has no relays a curtain "
                "can drive",
            )
            return
        board_options = config.driver_options.get(board.id)
        if board_options is None:
            return  # the board's own options are wrong, and reported there
        channels = classes[board.id].relay_channels(board_options)
        for key in ("open_channel", "close_channel"):
            channel = getattr(o, key)
            if channel > channels:
                yield (
                    ("options", key),
                    f"{key} {channel}: relay {o.relay!r} has {channels}",
                )
        pair = {o.open_channel, o.close_channel}
        sequence = getattr(board_options, "sequence", [])
        if pair <= {step.channel for step in sequence}:
            message = f"the sequence of relay {o.relay!r} switches on both of these channels"
            yield RELAY, f"{message}: its sequence_on would be refused"
        for dev in config.device:
            other = config.driver_options.get(dev.id)
            if dev.id == device.id:
                break  # a clash is reported on the later of the two curtains
            if isinstance(other, CurtainOptions) and other.relay == o.relay:
                if shared := pair & {other.open_channel, other.close_channel}:
                    yield (
                        ("options", "relay"),
                        f"channels {sorted(shared)} already drive {dev.id!r}",
                    )

    def _interlock(self, switching_on: set[int], on_after: set[int]) -> str | None:
        o = self.options
        pair = {o.open_channel, o.close_channel}
        if pair <= on_after and pair & switching_on:
            return (
                f"channels {o.open_channel} and {o.close_channel} open and close curtain "
                f"{self.config.id!r}: never both on"
            )
        return None

    def _live_board(self) -> Device:
        if self._board is None:
            raise Unavailable(f"relay {self.options.relay!r} is not a relay board")
        if not self._board.available:
            raise Unavailable(f"relay {self._board.id!r} is unavailable: {self._board.error}")
        return self._board

    @property
    def _relay(self) -> RelayBoard:
        assert self._board is not None  # every caller went through _live_board
        return cast(RelayBoard, self._board.driver)

    async def _board_up(self) -> None:
        """Wait for the board: the curtain has no link to back off on, so it comes back
        the moment its board does."""
        if self._board is None:
            raise Unavailable(f"relay {self.options.relay!r} is not a relay board")
        board = self._board
        async with board.events.subscribe() as events:
            while not board.available:
                await events.get()

    async def _switch(self, channel: int, on: bool) -> None:
        """Every switch of the pair goes through here: one that did not complete leaves
        the coils in doubt, so polls fail until read_state has read them back."""
        try:
            await self._relay.switch(channel, on)
        except Refused:
            raise  # nothing was written
        except BaseException as exc:
            what = exc.message if isinstance(exc, GridhallError) else type(exc).__name__
            self._doubt = f"channel {channel} may not be {'on' if on else 'off'}: {what}"
            raise

    def _channels(self, direction: travel.Direction) -> tuple[int, int]:
        """(the channel that runs this way, the other one)."""
        o = self.options
        if direction == "opening":
            return o.open_channel, o.close_channel
        return o.close_channel, o.open_channel

    # -- state -----------------------------------------------------------------------
    def _estimate(self, now: float | None = None) -> float:
        if self._run is None:
            return self._position
        return self._run.position(time.monotonic() if now is None else now, self.options.travel_s)

    def _state(self) -> State:
        return {
            "position": round(self._estimate()),
            "moving": self._run.direction if self._run else None,
        }

    def _settle(self, position: float | None = None) -> None:
        """The run is over: the curtain is at `position`, or where it is estimated now."""
        self._position = self._estimate() if position is None else position
        self._run = None
        self.report(self._state())

    async def _remember(self) -> None:
        position = round(self._position, 1)
        if position != self._saved:
            await self.memory.save({"position": position})
            self._saved = position

    async def read_state(self) -> State:
        await self._board_up()
        if not self._loaded:
            saved = (await self.memory.load()).get("position")
            if isinstance(saved, int | float) and travel.CLOSED <= saved <= travel.OPEN:
                self._position = self._saved = float(saved)
            self._loaded = True
        async with self._lock:
            if self._run is None:
                board = await self._relay.read_state()
                assert self._board is not None
                self._board.driver.report(board)
                for channel in (self.options.open_channel, self.options.close_channel):
                    if board["channels"].get(str(channel)):
                        await self._switch(channel, False)
            self._doubt = None
        return self._state()

    async def poll(self) -> State:
        self._live_board()
        if self._doubt is not None:
            raise DeviceError(self._doubt)
        return self._state()

    # -- actions ---------------------------------------------------------------------
    async def do_open(self, args: NoArgs) -> State:
        return await self._go(travel.OPEN)

    async def do_close(self, args: NoArgs) -> State:
        return await self._go(travel.CLOSED)

    async def do_set_position(self, args: PositionArgs) -> State:
        return await self._go(float(args.position))

    async def do_stop(self, args: NoArgs) -> State:
        self._live_board()
        async with self._lock:
            await self._cancel_follower()
            await self._stop(both=True)
        return self._state()

    async def _go(self, target: float) -> State:
        self._live_board()
        async with self._lock:
            await self._cancel_follower()
            direction = travel.heading(self._estimate(), target)
            if direction is None:
                if self._run is not None:
                    await self._stop()
                return self._state()
            run = await self._start(direction, target)
            self._follower = asyncio.create_task(
                self._follow(run), name=f"curtain:{self.config.id}"
            )
        return self._state()

    async def _start(self, direction: travel.Direction, target: float) -> travel.Run:
        """Run the motor `direction` until `target`. A run the same way goes on (only its
        end changes); otherwise the other channel goes off, verified, first."""
        o = self.options
        ours, other = self._channels(direction)
        running = self._run
        if running is None or running.direction != direction:
            try:
                await self._switch(other, False)
            finally:
                if running is not None:
                    self._settle()  # reversing: the motor stopped (or may have)
            if running is not None:
                await asyncio.sleep(o.reverse_pause_ms / 1000)
            await self._switch(ours, True)
        now = time.monotonic()
        start = self._estimate(now)
        self._run = travel.run_toward(
            direction, start, target, now, o.travel_s, o.end_margin_percent / 100
        )
        self.report(self._state())
        return self._run

    async def _stop(self, position: float | None = None, both: bool = False) -> None:
        """Switch the motor off (the running channel first) and keep where it stopped."""
        o = self.options
        channels = [self._channels(self._run.direction)[0]] if self._run else []
        if both:
            channels += [c for c in (o.open_channel, o.close_channel) if c not in channels]
        stopped = False
        try:
            for channel in channels:
                await self._switch(channel, False)
            stopped = True
        finally:
            self._settle(position if stopped else None)
        await self._remember()

    async def _cancel_follower(self) -> None:
        """Called with the lock held, so the follower is sleeping or waiting for the lock:
        cancelling it never interrupts a write."""
        task, self._follower = self._follower, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _follow(self, run: travel.Run) -> None:
        """Report the run as it goes and switch the motor off when its time is up."""
        try:
            while (left := run.ends - time.monotonic()) > 0:
                await asyncio.sleep(min(REPORT_EVERY_S, left))
                if self._board is None or not self._board.available:
                    # Nothing can be switched now: the run ends where it is believed to be,
                    # and the coils are in doubt until read back (the board may be back
                    # before the next poll would notice it went).
                    self._doubt = "the relay board dropped mid-run"
                    self._settle()
                    await self._remember()
                    return
                self.report(self._state())
            async with self._lock:
                if self._run is run:
                    await self._stop(run.target)
        except GridhallError as exc:
            log.warning("curtain %s: stopping the motor failed: %s", self.config.id, exc.message)
        except Exception:  # a bug must not leave a task failing silently
            log.exception("curtain %s: following the run failed", self.config.id)

    async def close(self) -> None:
        """The daemon is stopping: a running motor is switched off and its position
        kept, so nothing runs on unattended."""
        try:
            async with asyncio.timeout(5), self._lock:
                await self._cancel_follower()
                if self._run is not None:
                    await self._stop()
        except Exception as exc:  # the board may be gone; stop anyway
            log.warning("curtain %s: stopping on shutdown failed: %s", self.config.id, exc)
            await self._remember()
