"""Interlocks declared in the config: actions refused while another device is in a state.

A relay board's `add_guard` protects only that board's own channels. The hall's real
rules cross devices ("power-1 channel 3 may not drop while screen-1 is on or
cooling"), so they are data in the config and are checked in `Host.act`, the one path
every action takes, whoever asks (the API, a scene, a schedule, MQTT):

    [[interlock]]
    id = "projector-power"
    device = "power-1"
    action = ["off", "sequence_off"]      # one action or several
    args = { channel = 3 }                # optional; see below
    when = { device = "screen-1", state = { power = ["on", "warming", "cooling"] } }
    reason = "screen-1 must be off and cooled before its power drops"

`args` narrows the rule: each argument named must equal the action's, and an argument
the action leaves out matches any value, because in this API a missing channel or
output means "all of them" (`off` with no channel also drops channel 3). `state` maps
a state key, dotted into nested state (`"channels.3" = true`), to a value or a list of
values; every key must match for the rule to hold. A state the daemon does not know
(the other device unavailable, the key absent) refuses, unless `if_unknown = "allow"`:
an interlock that cannot be checked must not let the action through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.bounds import LIST, Short

Scalar = Short | int | float | bool | None
StateMatch = Annotated[
    dict[Short, Scalar | Annotated[list[Scalar], Field(max_length=LIST)]], Field(max_length=LIST)
]
"""`{"power": ["on", "cooling"], "channels.3": true}`: every key must match."""

ID = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=64)]
_UNKNOWN = object()


class Condition(BaseModel):
    """A device's state matching `state`."""

    model_config = ConfigDict(extra="forbid")
    device: ID
    state: Annotated[StateMatch, Field(min_length=1)]


class InterlockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: ID
    device: ID
    action: list[str]
    args: dict[str, Any] = {}
    when: Condition
    reason: str | None = None
    if_unknown: Literal["refuse", "allow"] = "refuse"

    @field_validator("action", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def applies_to(self, device_id: str, action: str, args: Mapping[str, Any]) -> bool:
        if device_id != self.device or action not in self.action:
            return False
        return all(k not in args or args[k] == v for k, v in self.args.items())

    def describe(self) -> str:
        return self.reason or (
            f"interlock {self.id}: {self.device} {'/'.join(self.action)} refused while "
            f"{self.when.device} is {_show(self.when.state)}"
        )


def lookup(state: Mapping[str, Any], key: str) -> Any:
    """`"channels.3"` -> state["channels"]["3"]; a missing key is `_UNKNOWN`."""
    value: Any = state
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _UNKNOWN
        value = value[part]
    return value


def match(state: Mapping[str, Any], want: StateMatch) -> bool | None:
    """True when every key matches, False when one does not, None when one is unknown."""
    unknown = False
    for key, expected in want.items():
        value = lookup(state, key)
        if value is _UNKNOWN:
            unknown = True
            continue
        allowed = expected if isinstance(expected, list) else [expected]
        if value not in allowed:
            return False
    return None if unknown else True


def _show(want: StateMatch) -> str:
    return ", ".join(
        f"{k} {'in ' + str(v) if isinstance(v, list) else '= ' + repr(v)}" for k, v in want.items()
    )


DeviceState = Callable[[str], "tuple[bool, Mapping[str, Any]] | None"]
"""device id -> (available, state), or None when there is no such device."""


class Interlocks:
    """The rules in force; replaced whole on SIGHUP."""

    def __init__(self, rules: Iterable[InterlockConfig] = ()) -> None:
        self.rules = list(rules)

    def replace(self, rules: Iterable[InterlockConfig]) -> None:
        self.rules = list(rules)

    def check(
        self, device_id: str, action: str, args: Mapping[str, Any], device_state: DeviceState
    ) -> str | None:
        """The reason the first rule that holds gives to refuse, or None."""
        for rule in self.rules:
            if not rule.applies_to(device_id, action, args):
                continue
            found = device_state(rule.when.device)
            held: bool | None = None
            if found is not None and found[0]:
                held = match(found[1], rule.when.state)
            if held is None:
                if rule.if_unknown == "allow":
                    continue
                return f"{rule.describe()} (refused: the state of {rule.when.device} is not known)"
            if held:
                return rule.describe()
        return None


def check_references(
    rules: list[InterlockConfig],
    actions_of: Callable[[str], Mapping[str, Any] | None],
    add: Callable[[tuple[Any, ...], str], None],
) -> None:
    """Config errors: unknown devices and actions, arguments the action does not take.

    `actions_of(device)` gives the device's actions (name -> argument model), or None
    when there is no such device."""
    for i, rule in enumerate(rules):
        actions = actions_of(rule.device)
        if actions is None:
            add(("interlock", i, "device"), f"interlock {rule.id}: no device {rule.device!r}")
        else:
            taken: set[str] = set()
            for name in rule.action:
                model = actions.get(name)
                if model is None:
                    add(
                        ("interlock", i, "action"),
                        f"interlock {rule.id}: {rule.device} has no action {name!r}; "
                        f"actions: {', '.join(sorted(actions))}",
                    )
                    continue
                taken |= set(getattr(model, "model_fields", {}))
            # An action without the argument matches any value of it (`sequence_off`
            # drops channel 3 too), so an argument need only be taken by one action.
            for arg in rule.args:
                if taken and arg not in taken:
                    add(
                        ("interlock", i, "args", arg),
                        f"interlock {rule.id}: no action of {'/'.join(rule.action)} takes "
                        f"an argument {arg!r}",
                    )
        if actions_of(rule.when.device) is None:
            add(
                ("interlock", i, "when", "device"),
                f"interlock {rule.id}: no device {rule.when.device!r}",
            )
