"""`ihse-draco`: an IHSE Draco tera KVM matrix over TCP or RS-232.

Outputs are consoles, inputs CPUs; `route` connects a CPU to a console in one of three
modes (full access, video only, private), and the state reports each console's CPU in
`routes` and its mode in `modes`.

The matrix has no command we know of that reads its connections back (see
`protocol`), so the state is what it ACKed and what it echoed: a switch made elsewhere
reaches every LAN client as the connect frame itself and updates the state at once.
After every (re)connect nothing is known, so each console shows `null` until it is
routed again or an echo names it; a keep-alive exchange proves the matrix answers, on
connect and on every poll (which also keeps an idle TCP session open).

`07` (busy, not executed) is retried a few times after a short pause; `15` (NAK) is
the matrix refusing the connection, most often because another console holds the CPU
privately: 409 with the reason, the device stays available.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Annotated, Any, ClassVar

from pydantic import Field, StrictInt

from daemon.errors import BadArguments, ProtocolError, Refused
from daemon.kinds import Kind, RouteArgs, State
from drivers.base import Options
from drivers.ihse import protocol as draco
from drivers.ihse.protocol import (
    MODE_NAMES,
    Ack,
    Busy,
    Connection,
    DeviceBusy,
    Event,
    KeepAlive,
    Mode,
    Nak,
)
from drivers.stream import StreamDriver

log = logging.getLogger(__name__)

Count = Annotated[StrictInt, Field(ge=1, le=4096)]
_ANSWERS = (Ack, Nak, Busy, ProtocolError)


class DracoOptions(Options):
    cpus: Count
    consoles: Count
    busy_retries: Annotated[StrictInt, Field(ge=0, le=10)] = 3
    busy_delay_ms: Annotated[StrictInt, Field(ge=0, le=5000)] = 100


class IhseDraco(StreamDriver[Event]):
    name: ClassVar[str] = "ihse-draco"
    kind: ClassVar[Kind] = Kind.MATRIX
    Options = DracoOptions
    options: DracoOptions
    route_modes: ClassVar[tuple[str, ...]] = tuple(MODE_NAMES.values())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parser = draco.Parser()
        # console -> (cpu, mode); None: unknown since the last connect.
        self.consoles: dict[int, tuple[int, Mode | None] | None] = {}
        self._keep_alive = False  # which answer the request on the wire waits for
        self._pending = False
        self._garbage_logged = False

    # -- the protocol on the link ------------------------------------------------------
    def parse(self, data: bytes) -> list[Event]:
        return self.parser.feed(data)

    def reset_parser(self) -> None:
        self.parser.reset()
        self._garbage_logged = False

    def is_reply(self, event: Event) -> bool:
        # A connect frame is never a reply: the matrix echoes only switches made
        # elsewhere, which must update the state even while our request waits.
        if not self._pending:
            return False
        if isinstance(event, ProtocolError):
            return True
        return isinstance(event, KeepAlive) if self._keep_alive else isinstance(event, _ANSWERS)

    def before_request(self, frame: bytes) -> None:
        self._pending = True
        self._keep_alive = frame == draco.keep_alive()

    def after_request(self) -> None:
        self._pending = False

    def on_unsolicited(self, event: Event) -> None:
        if isinstance(event, Connection):
            if self._apply(event.cpu, event.con, MODE_NAMES.get(event.mode)):
                self.report(self._state())
        elif isinstance(event, ProtocolError):
            level = logging.DEBUG if self._garbage_logged else logging.WARNING
            log.log(level, "%s: %s", self.config.id, event.message)
            self._garbage_logged = True
        else:
            log.debug("%s: unsolicited %r", self.config.id, event)

    # -- state -------------------------------------------------------------------------
    def _state(self) -> State:
        known = {c: self.consoles.get(c) for c in range(1, self.options.consoles + 1)}
        return {
            "routes": {str(c): None if v is None else v[0] for c, v in known.items()},
            "modes": {str(c): None if v is None or not v[0] else v[1] for c, v in known.items()},
        }

    def _apply(self, cpu: int, con: int, mode: Mode | None) -> bool:
        """Take a connection into the state; False if nothing changed."""
        if not 1 <= con <= self.options.consoles:
            return False
        before = self.consoles.get(con)
        self.consoles[con] = (cpu, mode if cpu else None)
        return self.consoles[con] != before

    # -- requests ------------------------------------------------------------------------
    async def _connect(self, cpu: int, con: int, mode: Mode) -> None:
        what = (
            f"connect CPU {cpu} to console {con} ({mode})" if cpu else f"disconnect console {con}"
        )
        frame = draco.connect(cpu, con, mode)
        for attempt in itertools.count():
            reply = await self.request(frame)
            if isinstance(reply, Ack):
                self._apply(cpu, con, mode)
                return
            if isinstance(reply, Nak):
                raise Refused(f"{what}: the matrix refused it (NAK){self._why(cpu, con)}")
            if not isinstance(reply, Busy):
                raise ProtocolError(f"{what}: unexpected answer {reply!r}")
            if attempt >= self.options.busy_retries:
                raise DeviceBusy(f"{what}: still busy after {attempt + 1} tries")
            log.debug("%s: %s: busy, retrying", self.config.id, what)
            await asyncio.sleep(self.options.busy_delay_ms / 1000)

    def _why(self, cpu: int, con: int) -> str:
        """The likely reason for a NAK, from what the state knows."""
        for other, known in sorted(self.consoles.items()):
            if other != con and known is not None and known == (cpu, "private"):
                return f": console {other} holds CPU {cpu} in private mode"
        return ""

    async def _alive(self) -> None:
        reply = await self.request(draco.keep_alive())
        if not isinstance(reply, KeepAlive):
            raise ProtocolError(f"keep-alive: unexpected answer {reply!r}")

    async def read_state(self) -> State:
        await self._alive()
        self.consoles = {}  # a new connection: whatever happened meanwhile is unknown
        return self._state()

    async def poll(self) -> State:
        await self._alive()
        return self._state()

    # -- actions -------------------------------------------------------------------------
    async def do_route(self, args: RouteArgs) -> State:
        mode: Mode = "full" if args.mode is None else _mode(args.mode)
        if args.input > self.options.cpus:
            raise BadArguments(f"input {args.input}: the matrix has {self.options.cpus} CPUs")
        if args.output is not None and args.output > self.options.consoles:
            raise BadArguments(
                f"output {args.output}: the matrix has {self.options.consoles} consoles"
            )
        outputs = range(1, self.options.consoles + 1) if args.output is None else [args.output]
        for con in outputs:
            await self._connect(args.input, con, mode)
        return self._state()


def _mode(name: str) -> Mode:
    for mode in draco.MODE_CODES:
        if mode == name:
            return mode
    raise BadArguments(f"mode {name!r}: full, video or private")
