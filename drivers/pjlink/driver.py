"""`pjlink`: a projector or display over PJLink class 1 (TCP 4352), kind `screen`.

State, read from the projector on every poll:
- `power`: "off", "on", "warming" or "cooling" (`POWR ?` 0, 1, 3, 2);
- `input`: the name the `inputs` option gives the projector's input code, or the raw
  code (e.g. "12") when it has no name there;
- `muted`: whether the picture is muted (`AVMT ?` 11 or 31; audio alone is not);
- `errors`: the `ERST ?` items that are not ok, e.g. `{"lamp": "warning"}`; items are
  fan, lamp, temperature, cover, filter, other; levels "warning" and "error"; `{}`
  when all six are ok.
Many projectors answer ERR3 to `INPT ?` and `AVMT ?` while off or warming up: `input`
and `muted` then keep the last values read, null until one is.

A command answered ERR3 ("unavailable now") while the projector warms up or cools down
is not a failure: the driver polls `POWR ?` every `busy_poll_ms` until the transition
ends (at most `warmup_s` or `cooldown_s`) and sends the command again. ERR3 twice, the
second time in a steady state (an input while off), is 409; ERR2 to an input is 422
naming it; ERR1, ERR4 and other ERR2 are 502. A wrong password is 503 `auth_failed`
and leaves the device unavailable ("authentication failed ...") until the projector
accepts it; its poll loop tries again with backoff.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from daemon.errors import BadArguments, DeviceRejected, GridhallError, ProtocolError, Refused
from daemon.kinds import InputArgs, Kind, MuteArgs, NoArgs, State
from drivers.base import Driver, Options
from drivers.pjlink.link import PJLinkLink
from drivers.pjlink.protocol import (
    DEVICE_ERRORS,
    INPUT_CODE,
    Reply,
    parse_errors,
    parse_input,
    parse_power,
    parse_video_muted,
)

# An exchange that finds its connection dropped connects, reads the greeting and then
# waits for the reply: up to three of the link's timeouts.
EXCHANGE_STEPS = 3
TRANSITIONS = ("warming", "cooling")


class PJLinkOptions(Options):
    password: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    # Input names -> PJLink codes: type 1 RGB, 2 video, 3 digital, 4 storage, 5 network
    # (6 internal, class 2), then the input's number, e.g. { hdmi1 = "31", vga = "11" }.
    inputs: dict[Annotated[str, Field(min_length=1, max_length=64)], str] = {}
    warmup_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    cooldown_s: Annotated[float, Field(gt=0, le=600)] = 90.0
    busy_poll_ms: Annotated[int, Field(ge=50, le=10_000)] = 1000

    @field_validator("inputs")
    @classmethod
    def _codes(cls, inputs: dict[str, str]) -> dict[str, str]:
        named: dict[str, str] = {}
        for name, code in inputs.items():
            if not INPUT_CODE.fullmatch(code.upper()):
                raise ValueError(
                    f"input {name!r}: {code!r} is not a PJLink input code "
                    '(type 1-6 and number 1-9, e.g. "31")'
                )
            if code.upper() in named:
                raise ValueError(f"inputs {named[code.upper()]!r} and {name!r} have one code")
            named[code.upper()] = name
        return {name: code for code, name in named.items()}


class PJLink(Driver[PJLinkLink]):
    name: ClassVar[str] = "pjlink"
    kind: ClassVar[Kind] = Kind.SCREEN
    Options = PJLinkOptions
    link_type = PJLinkLink
    options: PJLinkOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.power: str | None = None
        self.input_code: str | None = None
        self.muted: bool | None = None
        self.errors: dict[str, str] = {}
        self._names = {code: name for name, code in self.options.inputs.items()}

    def _state(self) -> State:
        code = self.input_code
        return {
            "power": self.power,
            "input": self._names.get(code, code) if code is not None else None,
            "muted": self.muted,
            "errors": dict(self.errors),
        }

    # -- exchanges ----------------------------------------------------------------------
    async def _ask(self, body: str, param: str) -> Reply:
        password = self.options.password
        return await self.io.exchange(
            lambda link: link.ask(body, param, password),
            timeout=self.io.bus.timeout_s * EXCHANGE_STEPS,
        )

    async def _get(self, body: str) -> str:
        reply = await self._ask(body, "?")
        if reply.error is not None:
            raise _rejected(f"{body} ?", reply.error)
        return reply.param

    async def _get_unless_busy(self, body: str) -> str | None:
        """None when the projector answers ERR3, as many do while off or warming up."""
        reply = await self._ask(body, "?")
        if reply.error == "ERR3":
            return None
        if reply.error is not None:
            raise _rejected(f"{body} ?", reply.error)
        return reply.param

    async def _command(self, what: str, body: str, param: str, bad_param: str = "") -> None:
        """Send a command and check its OK. After an ERR3 the command is sent once more,
        when a warm-up or cool-down has been waited out, or at once if none runs (the
        ERR3 may have come from the last moment of one)."""
        retried = False
        while True:
            reply = await self._ask(body, param)
            if reply.error is None:
                if reply.param.upper() != "OK":
                    raise ProtocolError(f"{what}: {body} answered {reply.param!r}, not OK")
                return
            if reply.error == "ERR3" and not retried:
                await self._wait_out_transition(what)
                retried = True
                continue
            if reply.error == "ERR3":
                raise Refused(f"{what}: the projector cannot do this while {self.power} (ERR3)")
            if reply.error == "ERR2" and bad_param:
                raise BadArguments(f"{what}: {bad_param} (ERR2)")
            raise _rejected(what, reply.error)

    async def _wait_out_transition(self, what: str) -> None:
        """Poll the power until a running warm-up or cool-down ends."""
        power = await self._read_power()
        if power not in TRANSITIONS:
            return
        limit = self.options.warmup_s if power == "warming" else self.options.cooldown_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while power in TRANSITIONS:
            self.report(self._state())
            if loop.time() >= deadline:
                raise DeviceRejected(f"{what}: the projector was still {power} after {limit:g} s")
            await asyncio.sleep(self.options.busy_poll_ms / 1000)
            power = await self._read_power()

    # -- reading ------------------------------------------------------------------------
    async def _read_power(self) -> str:
        self.power = parse_power(await self._get("POWR"))
        return self.power

    async def _read_input(self) -> None:
        if (code := await self._get_unless_busy("INPT")) is not None:
            self.input_code = parse_input(code)

    async def _read_muted(self) -> None:
        if (status := await self._get_unless_busy("AVMT")) is not None:
            self.muted = parse_video_muted(status)

    async def read_state(self) -> State:
        await self._read_power()
        await self._read_input()
        await self._read_muted()
        self.errors = parse_errors(await self._get("ERST"))
        return self._state()

    # -- actions ------------------------------------------------------------------------
    async def do_on(self, args: NoArgs) -> State:
        await self._command("on", "POWR", "1")
        await self._read_power()
        return self._state()

    async def do_off(self, args: NoArgs) -> State:
        await self._command("off", "POWR", "0")
        await self._read_power()
        return self._state()

    async def do_set_input(self, args: InputArgs) -> State:
        code = self._code_for(args.input)
        await self._command(
            f"set_input {args.input!r}",
            "INPT",
            code,
            bad_param=f"the projector has no input {args.input!r} (code {code})",
        )
        await self._read_input()
        return self._state()

    async def do_mute(self, args: MuteArgs) -> State:
        await self._command("mute" if args.on else "unmute", "AVMT", "31" if args.on else "30")
        await self._read_muted()
        return self._state()

    def _code_for(self, name: str) -> str:
        """A name from `inputs`, or a raw code as the state reports an unnamed input."""
        if (code := self.options.inputs.get(name)) is not None:
            return code
        if INPUT_CODE.fullmatch(name):
            return name
        known = ", ".join(sorted(self.options.inputs)) or "none configured"
        raise BadArguments(f"set_input: unknown input {name!r}; inputs: {known}")


def _rejected(what: str, code: str) -> GridhallError:
    return DeviceRejected(f"{what}: the projector answered {code} ({DEVICE_ERRORS[code]})")
