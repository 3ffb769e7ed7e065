"""Scenes and sequences as data: what the config's `[[scene]]` and `[[sequence]]` say.

A scene is a list of steps run one after another. A step is one of:
- an action: `device`, `action`, `args`; with `until`, it then waits for the device's
  state (`screen-1` off *and cooled*: `until = { power = "off" }`, `timeout_s`);
- a wait for a state alone: `device` and `until`, no action;
- a plain wait: `wait_ms`;
- a group run in parallel: `parallel = [ step, ... ]`; it ends when all its steps end.
`delay_ms` is the pause after a step is done before the next one starts (as a relay
board's own `sequence`). Each step is planned at an exact time (the previous step's end
plus its delay) and its outcome reports how late it started, so timing is visible.

A sequence is the hall's power-up and power-down written once: an ordered list of
devices with their `up` and `down` actions. It becomes two scenes, `<id>-up` running
the list in order and `<id>-down` running it in reverse, each step followed by its
`up_until` / `down_until` wait and its `delay_ms`. That is how "screens off and cooled
before their power channel drops; amplifiers last on, first off" is said: the screen
comes after its power channel in the list, its `down_until = { power = "off" }`.
Scenes made from sequences are exclusive: while one runs, actions on its devices from
anything but the sequence itself are refused (409).

This module is pure (no I/O): models, the sequence-to-scenes compiler, and reference
checks used both by the config loader (errors with lines) and by API edits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daemon.bounds import STEPS, ActionArgs, Name, Short
from daemon.interlocks import ID, StateMatch

OnError = Literal["stop", "skip"]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    device: ID | None = None
    action: Short | None = None
    args: ActionArgs = {}
    until: Annotated[StateMatch, Field(min_length=1)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    wait_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = None
    parallel: Annotated[list[Step], Field(min_length=1, max_length=STEPS)] | None = None
    delay_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 0

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [
            k
            for k, present in (
                ("a device", self.device is not None),
                ("wait_ms", self.wait_ms is not None),
                ("parallel", self.parallel is not None),
            )
            if present
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a step is one of: a device with an action and/or until, wait_ms, or "
                f"parallel; this one has {' and '.join(kinds) or 'none of them'}"
            )
        if self.device is not None and self.action is None and self.until is None:
            raise ValueError(f"step on {self.device}: give an action, an until, or both")
        if self.device is None and (self.action or self.until or self.args):
            raise ValueError("action, args and until need a device")
        for branch in self.parallel or []:
            if branch.delay_ms:
                raise ValueError("delay_ms inside a parallel group: put it on the group")
        return self

    @property
    def kind(self) -> str:
        if self.parallel is not None:
            return "parallel"
        if self.wait_ms is not None:
            return "wait"
        return "action" if self.action else "until"

    def describe(self) -> str:
        if self.name:
            return self.name
        if self.parallel is not None:
            return f"parallel ({len(self.parallel)} steps)"
        if self.wait_ms is not None:
            return f"wait {self.wait_ms} ms"
        text = f"{self.device} {self.action}" if self.action else f"{self.device}"
        if self.args:
            text += " " + ", ".join(f"{k}={v}" for k, v in self.args.items())
        if self.until:
            text += " until " + self.until_text()
        return text

    def until_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in (self.until or {}).items())


class SceneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: ID
    name: Name | None = None
    on_error: OnError = "stop"
    exclusive: bool = False
    step: Annotated[list[Step], Field(min_length=1, max_length=STEPS)]

    def devices(self) -> set[str]:
        return {s.device for s in walk(self.step) if s.device}


class SequenceItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: ID
    up: Short
    down: Short
    args: ActionArgs = {}
    up_until: Annotated[StateMatch, Field(min_length=1)] | None = None
    down_until: Annotated[StateMatch, Field(min_length=1)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    delay_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 0


class SequenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: ID
    name: Name | None = None
    on_error: OnError = "stop"
    step: Annotated[list[SequenceItem], Field(min_length=1, max_length=STEPS)]

    def scene_ids(self) -> tuple[str, str]:
        return f"{self.id}-up", f"{self.id}-down"

    def scenes(self) -> tuple[SceneConfig, SceneConfig]:
        """(up, down): the list in order with the up actions, and in reverse with the
        down actions. `delay_ms` is the pause after the item's step in both directions."""
        name = self.name or self.id
        up_id, down_id = self.scene_ids()

        def step(item: SequenceItem, up: bool) -> Step:
            return Step(
                device=item.device,
                action=item.up if up else item.down,
                args=item.args,
                until=item.up_until if up else item.down_until,
                timeout_s=item.timeout_s,
                delay_ms=item.delay_ms,
            )

        return (
            SceneConfig(
                id=up_id,
                name=f"{name}: up",
                on_error=self.on_error,
                exclusive=True,
                step=[step(item, True) for item in self.step],
            ),
            SceneConfig(
                id=down_id,
                name=f"{name}: down",
                on_error=self.on_error,
                exclusive=True,
                step=[step(item, False) for item in reversed(self.step)],
            ),
        )


Step.model_rebuild()


def walk(steps: list[Step]) -> Iterator[Step]:
    """Every step, the branches of parallel groups included."""
    for s in steps:
        yield s
        if s.parallel:
            yield from walk(s.parallel)


ActionsOf = Callable[[str], "Mapping[str, Any] | None"]
"""device id -> its actions (name -> argument model), or None for no such device."""
Add = Callable[[tuple[Any, ...], str], None]


def check_steps(steps: list[Step], actions_of: ActionsOf, at: tuple[Any, ...], add: Add) -> None:
    """Unknown devices, unknown actions and bad arguments, each at its step."""
    for j, s in enumerate(steps):
        loc = at + (j,)
        if s.parallel:
            check_steps(s.parallel, actions_of, loc + ("parallel",), add)
            continue
        if s.device is None:
            continue
        actions = actions_of(s.device)
        if actions is None:
            add(loc + ("device",), f"no device {s.device!r}")
            continue
        if s.action is None:
            continue
        model = actions.get(s.action)
        if model is None:
            add(
                loc + ("action",),
                f"{s.device} has no action {s.action!r}; actions: {', '.join(sorted(actions))}",
            )
            continue
        try:
            model.model_validate(s.args)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                msg = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
                add(loc + ("args",), f"{s.device} {s.action}: args.{where}: {msg}")


def check_sequence(
    seq: SequenceConfig, actions_of: ActionsOf, at: tuple[Any, ...], add: Add
) -> None:
    for j, item in enumerate(seq.step):
        for action, key in ((item.up, "up"), (item.down, "down")):
            step = Step(device=item.device, action=action, args=item.args)

            def here(
                loc: tuple[Any, ...], msg: str, where: tuple[Any, ...] = at + (j, key)
            ) -> None:
                add(where, msg)

            check_steps([step], actions_of, at, here)


def check_config(
    scenes: list[SceneConfig], sequences: list[SequenceConfig], actions_of: ActionsOf, add: Add
) -> None:
    """The config's scenes and sequences: references, and ids that must not collide
    (a sequence `hall` takes the scene ids `hall-up` and `hall-down`)."""
    ids = {s.id: i for i, s in enumerate(scenes)}
    for i, scene in enumerate(scenes):
        check_steps(scene.step, actions_of, ("scene", i, "step"), add)
    for i, seq in enumerate(sequences):
        check_sequence(seq, actions_of, ("sequence", i, "step"), add)
        for scene_id in seq.scene_ids():
            if scene_id in ids:
                add(
                    ("sequence", i, "id"),
                    f"sequence {seq.id} makes the scene {scene_id!r}, which a [[scene]] "
                    "already defines",
                )
