"""The device kinds of the contract: their actions, the actions' arguments, their state.

Arguments are pydantic models so a bad body gets a 422 naming the field. A driver may
add actions of its own, but every driver of a kind answers the kind's actions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Kind(StrEnum):
    MATRIX = "matrix"
    POWER = "power"
    FAN = "fan"
    CURTAIN = "curtain"
    SCREEN = "screen"


class Args(BaseModel):
    """Base of every action's arguments: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    pass


class ChannelArgs(Args):
    channel: Annotated[int, Field(ge=1, le=256)] | None = None


class RouteArgs(Args):
    input: Annotated[int, Field(ge=0, le=4096)]
    output: Annotated[int, Field(ge=1, le=4096)] | None = None
    mode: Annotated[str, Field(pattern="^(full|video|private)$", max_length=7)] | None = None


class PresetArgs(Args):
    preset: Annotated[int, Field(ge=0, le=999)]


class SpeedArgs(Args):
    percent: Annotated[int, Field(ge=0, le=100)]


class PositionArgs(Args):
    position: Annotated[int, Field(ge=0, le=100)]


class InputArgs(Args):
    input: Annotated[str, Field(min_length=1, max_length=64)]


class MuteArgs(Args):
    on: bool


ACTIONS: dict[Kind, dict[str, type[Args]]] = {
    Kind.MATRIX: {"route": RouteArgs, "recall_preset": PresetArgs},
    Kind.POWER: {
        "on": ChannelArgs,
        "off": ChannelArgs,
        "sequence_on": NoArgs,
        "sequence_off": NoArgs,
    },
    Kind.FAN: {"on": NoArgs, "off": NoArgs, "set_speed": SpeedArgs},
    Kind.CURTAIN: {
        "open": NoArgs,
        "close": NoArgs,
        "stop": NoArgs,
        "set_position": PositionArgs,
    },
    Kind.SCREEN: {"on": NoArgs, "off": NoArgs, "set_input": InputArgs, "mute": MuteArgs},
}

State = dict[str, Any]


def known_count(*candidates: Any) -> int:
    """The first positive int of the candidates (0: none known)."""
    for c in candidates:
        if isinstance(c, int) and not isinstance(c, bool) and c > 0:
            return c
    return 0


def matrix_size(options: Any, driver: Any, state: State) -> tuple[int, int]:
    """A matrix's (inputs, outputs) as far as known (0: unknown): options, what the
    driver learnt from the device (an Extron asked with `I`), the outputs in the state."""
    routes = state.get("routes") or {}
    inputs = known_count(
        getattr(driver, "inputs", None),
        getattr(options, "inputs", None),
        getattr(options, "cpus", None),
    )
    outputs = known_count(
        getattr(driver, "outputs", None),
        getattr(options, "outputs", None),
        getattr(options, "consoles", None),
        len(routes),
    )
    return inputs, outputs
