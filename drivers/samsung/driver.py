"""`samsung-mdc`: a Samsung display over MDC, on TCP 1515 or an RS-232 daisy chain.

The display id is the device's `unit` (default 1); several displays on one chain are
several devices on one `[[bus]]`, each parsing only the replies with its own id, and
the bus serialises their requests. The broadcast id 0xFE is refused: no display
answers it, so nothing could be confirmed or read back.

State comes from the display: STATUS (0x00) on every (re)connect and poll, and each
action answers only once the display acked it, taking the value from the ack. MDC
has no warming or cooling states, so `power` is only ever `"on"` or `"off"` as the
display reports it; a display that acked "on" is reported on at once, even while its
panel is still lighting up. `input` is the configured name of the display's input
source code, or the code in decimal as a string when no name maps to it.

A nak is the display's own refusal: `BadArguments` (422) when its code says the value
was bad, else `DeviceRejected` (502); either way the device stays available.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, StringConstraints, field_validator

from daemon.errors import BadArguments, DeviceRejected, ProtocolError
from daemon.kinds import InputArgs, Kind, MuteArgs, NoArgs, State
from drivers.base import DeviceIO, Options
from drivers.samsung import protocol as mdc
from drivers.stream import StreamDriver, StreamLink

if TYPE_CHECKING:
    from daemon.config import Config, DeviceConfig

InputName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# Strict: a PJLink-style "31" must not pass as decimal 31 (0x1F) instead of 0x31.
Code = Annotated[int, Field(strict=True, ge=0, le=255)]


class MDCOptions(Options):
    # Input names to MDC input source codes, e.g. { hdmi1 = 0x21, dp = 0x25 }.
    inputs: dict[InputName, Code] = {}

    @field_validator("inputs")
    @classmethod
    def _one_name_per_code(cls, inputs: dict[str, int]) -> dict[str, int]:
        # The state names the input the display reports; two names for one code would
        # make that name a guess.
        seen: dict[int, str] = {}
        for name, code in inputs.items():
            if code in seen:
                raise ValueError(f"inputs {seen[code]!r} and {name!r} both have code 0x{code:02X}")
            seen[code] = name
        return inputs


class SamsungMDC(StreamDriver[mdc.Reply]):
    name: ClassVar[str] = "samsung-mdc"
    kind: ClassVar[Kind] = Kind.SCREEN
    Options = MDCOptions
    options: MDCOptions

    def __init__(self, config: DeviceConfig, options: Any, io: DeviceIO[StreamLink] | None) -> None:
        # The parser exists before the base class registers it on the link.
        self.display_id: int = 1 if config.unit is None else config.unit
        self.parser = mdc.ReplyParser(self.display_id)
        self._expected: int | None = None  # the command whose reply a request awaits
        super().__init__(config, options, io)
        self.power = False
        self.input = 0
        self.muted = False

    @classmethod
    def check_device(
        cls, device: DeviceConfig, options: Any, config: Config
    ) -> Iterable[tuple[tuple[Any, ...], str]]:
        if device.unit in (mdc.BROADCAST, 0xFF):
            yield (
                ("unit",),
                f"unit {device.unit} is not a display id: 0xFE is the broadcast id, which "
                "no display answers, and 0xFF marks replies; use the display's id (0-253)",
            )

    # -- the protocol on the link -----------------------------------------------------
    def parse(self, data: bytes) -> list[mdc.Reply]:
        return self.parser.feed(data)

    def reset_parser(self) -> None:
        self.parser.reset()

    def is_reply(self, event: mdc.Reply) -> bool:
        # A late answer to an earlier, timed-out request must not answer this one.
        return isinstance(event, ProtocolError) or event.cmd == self._expected

    def before_request(self, frame: bytes) -> None:
        # Half a frame left by a reply that came too late is stale now; dropping it
        # keeps it from swallowing the start of this request's answer.
        self.reset_parser()
        self._expected = frame[1]

    def after_request(self) -> None:
        self._expected = None

    async def _ask(self, frame: bytes) -> mdc.Ack:
        """One request and its ack; a nak raises the typed error it means."""
        reply = await self.request(frame)
        if isinstance(reply, mdc.Nak):
            message = f"display {self.display_id}: {reply.describe()}"
            if reply.code == mdc.NAK_BAD_VALUE:
                raise BadArguments(message)
            raise DeviceRejected(message)
        if not isinstance(reply, mdc.Ack):  # request() raised any parse error already
            raise ProtocolError(f"display {self.display_id}: unexpected reply {reply!r}")
        return reply

    async def _set(self, cmd: int, value: int) -> int:
        """Set a one-byte value and return the value in force: from the ack, or read
        back when a model acks without one."""
        ack = await self._ask(mdc.set_value(cmd, self.display_id, value))
        if not ack.data:
            ack = await self._ask(mdc.get(cmd, self.display_id))
        if not ack.data:
            raise ProtocolError(f"display {self.display_id}: ack of 0x{cmd:02X} without a value")
        if ack.data[0] != value:
            # It answered, so it is alive, but it did not do what was asked.
            raise DeviceRejected(
                f"display {self.display_id}: set 0x{cmd:02X} to 0x{value:02X}, "
                f"it reports 0x{ack.data[0]:02X}"
            )
        return ack.data[0]

    # -- state ----------------------------------------------------------------------------
    def _state(self) -> State:
        names = {code: name for name, code in self.options.inputs.items()}
        return {
            "power": "on" if self.power else "off",
            "input": names.get(self.input, str(self.input)),
            "muted": self.muted,
        }

    async def read_state(self) -> State:
        ack = await self._ask(mdc.get(mdc.STATUS, self.display_id))
        status = mdc.Status.from_data(ack.data)
        # Power 1 is on; a model's other non-zero codes (2, reboot) mean it is not off.
        self.power = status.power != 0
        self.input = status.input
        self.muted = status.mute != 0
        return self._state()

    # -- actions --------------------------------------------------------------------------
    async def do_on(self, args: NoArgs) -> State:
        self.power = await self._set(mdc.POWER, 1) != 0
        return self._state()

    async def do_off(self, args: NoArgs) -> State:
        self.power = await self._set(mdc.POWER, 0) != 0
        return self._state()

    async def do_set_input(self, args: InputArgs) -> State:
        code = self.options.inputs.get(args.input)
        if code is None:
            known = ", ".join(sorted(self.options.inputs)) or "none configured"
            raise BadArguments(f"unknown input {args.input!r}; inputs: {known}")
        self.input = await self._set(mdc.INPUT, code)
        return self._state()

    async def do_mute(self, args: MuteArgs) -> State:
        self.muted = await self._set(mdc.MUTE, int(args.on)) != 0
        return self._state()
