"""The arguments of the seats' commands, one model each, shared by the HTTP API (as
request bodies) and MQTT (`<base>/seats/<id>/set/<command>`), so both check alike."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from daemon.interlocks import ID
from daemon.seats.config import Mode, Number, ShareMode


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteCommand(Command):
    console: Number  # the console's output number
    computer: ID | None = None  # none: disconnect the console
    mode: Mode = "full"


class RecallCommand(Command):
    layout: ID
    mine: bool = False  # the caller's own layout of that id, not the seat's


class PushCommand(Command):
    computer: ID
    target: ID  # another seat, or a wall
    output: Number | None = None  # the target's console or wall output; default its first
    mode: ShareMode = "video"


class LoginCommand(Command):
    layout: ID | None = None  # restore this layout (the operator's own first), not the profile


class SaveCommand(Command):
    name: Annotated[str, Field(max_length=100)] | None = None
