"""The `[tickets]` config section: the categories file, deadlines by tier, reminders,
overdue supervision (督办) level by level, scenes to run on alerts, MQTT intake.

Every key has a default, so the section is optional; without `categories` the store
keeps whatever `gridhall tickets import` put there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plugins.tickets.deadlines import Deadline, Lead
from plugins.tickets.measures_config import MeasuresConfig
from plugins.tickets.open311.config import Open311Config

if TYPE_CHECKING:
    from daemon.config import Config

Tier = Literal["simple", "coordination", "hard"]
Level = Literal["community", "street", "district"]
Channel = Literal[
    "grid_app", "resident", "hotline", "video_ai", "media", "supervisor", "open311", "api"
]
AlertKind = Literal["reminder", "overdue", "escalated", "whistle_unanswered"]

# Seed 002 (seed 000 agrees on the first two): the grid member closes a simple case in
# 2 hours; coordination, 5 working days; a hard case, 10 to 15 working days.
DEFAULT_TIERS: dict[str, str] = {"simple": "2h", "coordination": "5wd", "hard": "10-15wd"}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(Section):
    """One level of overdue supervision: who supervises, and how long after the
    previous step (the first: after the deadline) it comes."""

    level: Level
    after: str = "0h"

    @field_validator("after")
    @classmethod
    def _after(cls, v: str) -> str:
        if Deadline.parse(v).ranged:
            raise ValueError(f"an escalation interval is one value, not a range: {v!r}")
        return v


DEFAULT_ESCALATION = [
    Step(level="community", after="0h"),  # at the deadline: overdue, the community supervises
    Step(level="street", after="1wd"),
    Step(level="district", after="1wd"),
]


class OnAlert(Section):
    """`[[tickets.on_alert]]`: run a scene when an alert of these kinds goes out."""

    kind: AlertKind | list[AlertKind]
    scene: str
    major_only: bool = False
    level: Level | None = None  # only when supervision reaches this level

    @property
    def kinds(self) -> list[str]:
        return [self.kind] if isinstance(self.kind, str) else list(self.kind)


class MqttIntake(Section):
    """Reports from machines (AI video detection) on `<base>/tickets/report`."""

    enabled: bool = True
    channel: Channel = "video_ai"  # the channel a report gets when it names none
    qos: Annotated[int, Field(ge=0, le=2)] = 1


class TicketsConfig(Section):
    """The `[tickets]` section."""

    categories: str | None = None  # a categories file, relative to the config file
    tiers: dict[str, str] = dict(DEFAULT_TIERS)  # tier -> its default deadline
    reminder: str = "20%"  # before the deadline: a share of the time given, or "2h"
    escalation: Annotated[list[Step], Field(min_length=1)] = DEFAULT_ESCALATION
    competent: dict[str, str] = {}  # group -> the district's competent department
    on_alert: list[OnAlert] = []
    mqtt: MqttIntake = MqttIntake()
    measures: MeasuresConfig = MeasuresConfig()  # docs/tickets-measures.md
    open311: Open311Config = Open311Config()  # docs/open311.md

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: dict[str, str]) -> dict[str, str]:
        for tier, spec in v.items():
            if tier not in DEFAULT_TIERS:
                raise ValueError(f"unknown tier {tier!r}; tiers: {', '.join(DEFAULT_TIERS)}")
            Deadline.parse(spec)
        return {**DEFAULT_TIERS, **v}

    @field_validator("reminder")
    @classmethod
    def _reminder(cls, v: str) -> str:
        Lead.parse(v)
        return v

    @property
    def lead(self) -> Lead:
        return Lead.parse(self.reminder)

    def check_config(self, config: Config) -> Iterator[Any]:
        """What names the rest of the config: scenes, and the categories file (its
        problems at its own lines)."""
        from plugins.tickets.catalog import CatalogError, read_catalog

        scenes = {s.id for s in config.scene} | {
            sid for seq in config.sequence for sid in seq.scene_ids()
        }
        for i, rule in enumerate(self.on_alert):
            if rule.scene not in scenes:
                known = ", ".join(sorted(scenes)) or "none defined"
                yield ("on_alert", i, "scene"), f"scene {rule.scene!r} does not exist ({known})"
        if self.categories is not None:
            path = config.resolve(self.categories)
            try:
                catalog = read_catalog(path, self)
            except CatalogError as exc:
                yield from exc.problems
                return
            for group, dept in self.competent.items():
                if dept not in catalog.departments:
                    yield ("competent", group), f"department {dept!r} is not in {path.name}"
