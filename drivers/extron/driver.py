"""`extron-sis`: an Extron matrix switcher (CrossPoint, MAV, DXP...) over RS-232 or telnet.

The switcher's own answers are the state: a tie is reported from the `Out02 In03 All`
the switcher sends back, a preset recall from the ties read after it, and on every
(re)connect and poll each output's tie is read with `O%`. Reading every tie on each
poll also keeps a telnet link busy, so the switcher's idle timeout never drops it.

The switcher sends the same tie lines unsolicited when its front panel is used, so a
reply is paired with its request by what it is (the tie of the output asked about, the
preset recalled), not by arriving next; anything else is a front-panel report and
updates the state at once. `E22` (busy, not executed) is retried a few times after a
short pause, off the bus so the other devices on the line go on meanwhile.

A password-protected switcher asks `Password:` after the banner on each telnet
connect, and takes any bytes before the password as a wrong attempt, so nothing is
sent until the login is done; a serial port never asks. A wrong or missing password
makes the device unavailable with a `login_failed` error naming the option to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import Field, StrictInt, field_validator

from daemon.errors import BadArguments, DeviceError, ProtocolError
from daemon.kinds import Args, Kind, PresetArgs, RouteArgs, State
from drivers.base import Options
from drivers.extron import protocol as sis
from drivers.extron.protocol import (
    BUSY,
    VIDEO_KINDS,
    Error,
    Event,
    LoginFailed,
    LoginOk,
    PasswordPrompt,
    PresetRecalled,
    PresetSaved,
    Size,
    Tie,
    TieAll,
    TieKind,
    TieRead,
)
from drivers.stream import StreamDriver

log = logging.getLogger(__name__)

E = TypeVar("E")
Count = Annotated[StrictInt, Field(ge=1, le=9999)]

# Answers that end any request: the switcher refused it, could not be understood, or
# locked the connection and wants its password first.
_ALWAYS_REPLIES = (Error, ProtocolError, PasswordPrompt)
# A route's `mode`, for a switcher that is no KVM: `video` is a video-only (breakaway) tie.
_MODES: dict[str | None, TieKind] = {None: "All", "full": "All", "video": "Vid"}


class ExtronOptions(Options):
    inputs: Count | None = None  # None: asked of the switcher with `I`
    outputs: Count | None = None
    password: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    busy_retries: Annotated[StrictInt, Field(ge=0, le=10)] = 3
    busy_delay_ms: Annotated[StrictInt, Field(ge=0, le=5000)] = 100

    @field_validator("password")
    @classmethod
    def _one_line(cls, password: str | None) -> str | None:
        # The password goes out as one line: a line end in it would split it.
        if password is not None and not (password.isascii() and password.isprintable()):
            raise ValueError("printable ASCII only")
        return password


class ExtronSIS(StreamDriver[Event]):
    name: ClassVar[str] = "extron-sis"
    kind: ClassVar[Kind] = Kind.MATRIX
    Options = ExtronOptions
    extra_actions: ClassVar[dict[str, type[Args]]] = {"save_preset": PresetArgs}
    route_modes: ClassVar[tuple[str, ...]] = tuple(m for m in _MODES if m)
    options: ExtronOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parser = sis.Parser()
        self.inputs: int = self.options.inputs or 0  # 0 until `I` answered
        self.outputs: int = self.options.outputs or 0
        self.routes: dict[int, int] = {}
        self._wanted: Callable[[Event], bool] | None = None  # what answers the request
        self._replied = False
        self._prompted = asyncio.Event()  # `Password:` seen on this connection
        self._logged_in = False
        self._garbage_logged = False

    # -- the protocol on the link ------------------------------------------------------
    def parse(self, data: bytes) -> list[Event]:
        return self.parser.feed(data)

    def reset_parser(self) -> None:
        """A new connection: a new banner, and a new login if the switcher asks."""
        self.parser.reset()
        self._prompted.clear()
        self._logged_in = False
        self._garbage_logged = False

    def is_reply(self, event: Event) -> bool:
        # Only while one of our requests is on the wire: outside an exchange every line
        # is a report, even if a waiter was left behind by a write that failed.
        if self._wanted is None:
            return False
        if isinstance(event, _ALWAYS_REPLIES) or self._wanted(event):
            self._replied = True
            return True
        return False

    def before_request(self, frame: bytes) -> None:
        self._wanted = sis.answers(frame)
        self._replied = False

    def after_request(self) -> None:
        if not self._replied:
            # No answer in time: half of one may sit in the parser and would become the
            # head of the next. Dropped only then, so a front-panel report arriving in
            # pieces while a request is answered is never cut.
            self.parser.reset()
        self._wanted = None

    def on_unsolicited(self, event: Event) -> None:
        if isinstance(event, Tie | TieAll):
            if self._apply(event):
                self.report(self._state())
        elif isinstance(event, PasswordPrompt):
            self._prompted.set()
            self._logged_in = False
        elif isinstance(event, ProtocolError):
            # Loud once per connection; a noisy line must not flood the journal.
            level = logging.DEBUG if self._garbage_logged else logging.WARNING
            log.log(level, "%s: %s", self.config.id, event.message)
            self._garbage_logged = True
        else:
            log.debug("%s: unsolicited %r", self.config.id, event)

    # -- requests ------------------------------------------------------------------------
    async def _ask(self, frame: bytes) -> Event:
        reply = await self.request(frame)
        if isinstance(reply, PasswordPrompt):
            self._prompted.set()
            self._logged_in = False
        return reply

    async def _command(self, frame: bytes, what: str) -> Event:
        """`_ask`, retrying on E22 and raising the typed error of any other E-code."""
        if self._prompted.is_set():
            # Locked: the switcher would take the command for a password attempt and
            # spoil the real one. Fault the device so it logs in again first.
            raise LoginFailed(f"{what}: {self._asks_password()}")
        for attempt in itertools.count():
            reply = await self._ask(frame)
            if isinstance(reply, PasswordPrompt):
                raise LoginFailed(f"{what}: {self._asks_password()}")
            if not isinstance(reply, Error):
                return reply
            if reply.code != BUSY or attempt >= self.options.busy_retries:
                raise sis.exception_for(reply, what)
            log.debug("%s: %s: busy, retrying", self.config.id, what)
            await asyncio.sleep(self.options.busy_delay_ms / 1000)
        raise AssertionError("unreachable")

    async def _expect(self, frame: bytes, kind: type[E], what: str) -> E:
        reply = await self._command(frame, what)
        if not isinstance(reply, kind):  # `answers` lets only the right kind through
            raise ProtocolError(f"{what}: unexpected answer {reply!r}")
        return reply

    async def _login(self) -> None:
        if self._logged_in:
            return
        password = self.options.password
        if password is not None and not self._prompted.is_set():
            # Over TCP `Password:` follows the banner at once; a serial line sends none,
            # so after one timeout the switcher is taken to need no password.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._prompted.wait(), self.io.bus.timeout_s)
        if self._prompted.is_set():
            if password is None:
                raise LoginFailed(self._asks_password())
            self._prompted.clear()
            reply = await self._ask(sis.login(password))
            if not isinstance(reply, LoginOk):
                raise LoginFailed(f"the switcher refused options.password ({_describe(reply)})")
            log.info("%s: logged in (%s)", self.config.id, reply.level)
        self._logged_in = True

    def _asks_password(self) -> str:
        if self.options.password is None:
            return "the switcher asks for a password: set options.password"
        return "the switcher asks for its password: logging in again"

    # -- state -----------------------------------------------------------------------
    def _state(self) -> State:
        return {"routes": {str(o): i for o, i in sorted(self.routes.items())}}

    def _apply(self, event: Tie | TieAll) -> bool:
        """Take a tie the switcher reported into the routes; False if none changed."""
        if event.kind not in VIDEO_KINDS:
            return False  # an audio-only tie: `routes` are the video path
        before = dict(self.routes)
        if isinstance(event, TieAll):
            self.routes = {o: event.input for o in range(1, self.outputs + 1)}
        elif 1 <= event.output <= self.outputs:
            self.routes[event.output] = event.input
        return self.routes != before

    async def _read_tie(self, output: int) -> None:
        what = f"read the tie of output {output}"
        try:
            reply = await self._command(sis.read_tie(output), what)
        except BadArguments as exc:
            # E12 on a read: the config, not a caller, is wrong, and no poll will fix it.
            raise DeviceError(f"{exc.message}; check options.outputs") from exc
        if not isinstance(reply, TieRead | Tie):
            raise ProtocolError(f"{what}: unexpected answer {reply!r}")
        self.routes[output] = reply.input

    async def _read_ties(self) -> None:
        # One output at a time, in place: a front-panel report that arrives meanwhile is
        # newer than what was read before it and must not be overwritten by it.
        self.routes = {o: i for o, i in self.routes.items() if o <= self.outputs}
        for output in range(1, self.outputs + 1):
            await self._read_tie(output)

    async def read_state(self) -> State:
        await self._login()
        if self.options.inputs is None or self.options.outputs is None:
            size = await self._expect(sis.read_size(), Size, "read the size (I)")
            self.inputs = self.options.inputs or size.inputs
            self.outputs = self.options.outputs or size.outputs
        await self._read_ties()
        return self._state()

    async def poll(self) -> State:
        await self._read_ties()
        return self._state()

    # -- actions -------------------------------------------------------------------------
    async def do_route(self, args: RouteArgs) -> State:
        kind = _MODES.get(args.mode)
        if kind is None:
            raise BadArguments(f"mode {args.mode!r}: an Extron matrix ties full or video")
        if args.input > self.inputs:
            raise BadArguments(f"input {args.input}: the matrix has {self.inputs} inputs")
        frame = sis.tie(args.input, args.output, kind)
        if args.output is None:
            what = f"tie input {args.input} to every output"
            self._apply(await self._expect(frame, TieAll, what))
            return self._state()
        output = args.output
        if output > self.outputs:
            raise BadArguments(f"output {output}: the matrix has {self.outputs} outputs")
        what = f"tie input {args.input} to output {output}"
        tied = await self._expect(frame, Tie, what)
        self._apply(tied)
        return self._state()

    async def do_recall_preset(self, args: PresetArgs) -> State:
        n = _preset(args)
        await self._expect(sis.recall_preset(n), PresetRecalled, f"recall preset {n}")
        await self._read_ties()  # the preset's ties are whatever the switcher holds
        return self._state()

    async def do_save_preset(self, args: PresetArgs) -> State:
        n = _preset(args)
        await self._expect(sis.save_preset(n), PresetSaved, f"save preset {n}")
        return self._state()


def _preset(args: PresetArgs) -> int:
    if args.preset < 1:
        raise BadArguments("preset: presets count from 1 (0 is the live state)")
    return args.preset


def _describe(event: Event) -> str:
    return "it asked for the password again" if isinstance(event, PasswordPrompt) else repr(event)
