"""`[tickets.measures]`: what a district chooses about its measures.

Every key has a default, so the table is optional. The defaults and why they are what
they are: docs/tickets-measures.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RATES = ("response", "disposal", "closure", "on_time", "satisfaction")
Level = Literal["satisfied", "basic", "unsatisfied"]


class RankingRule(BaseModel):
    """The four classes: a composite score of the rates, then thresholds."""

    model_config = ConfigDict(extra="forbid")
    # Weights of the rates in the score (percent points); a rate with no denominator
    # in the period drops out and the others' weights are scaled up to fill its place.
    weights: dict[str, Annotated[float, Field(ge=0)]] = {
        "response": 0.2,
        "disposal": 0.2,
        "on_time": 0.3,
        "satisfaction": 0.3,
    }
    rework_penalty: Annotated[float, Field(ge=0)] = 0.5  # points per rework per 100 due
    advanced_min: Annotated[float, Field(ge=0, le=100)] = 90.0  # 先进: score at least this
    govern_below: Annotated[float, Field(ge=0, le=100)] = 70.0  # 治理: score below this
    improving_margin: Annotated[float, Field(gt=0)] = 3.0  # 进步: this many points up
    min_due: Annotated[int, Field(ge=1)] = 5  # fewer tickets due: not ranked

    @model_validator(mode="after")
    def _check(self) -> RankingRule:
        unknown = sorted(set(self.weights) - set(RATES))
        if unknown:
            raise ValueError(f"unknown rate {unknown[0]!r} in weights; rates: {', '.join(RATES)}")
        if not any(self.weights.values()):
            raise ValueError("weights: at least one rate needs a weight above 0")
        if self.govern_below > self.advanced_min:
            raise ValueError("govern_below is above advanced_min")
        return self


class HotspotRule(BaseModel):
    """A hot spot: one category at one place at least `min_count` times in `days`."""

    model_config = ConfigDict(extra="forbid")
    min_count: Annotated[int, Field(ge=2)] = 3
    days: Annotated[int, Field(ge=1, le=366)] = 30
    by: Literal["grid", "distance"] = "grid"
    radius_m: Annotated[float, Field(gt=0, le=5000)] = 100.0  # `distance`: linked within this


class MeasuresConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A response counts when the handler accepted within this long of the first dispatch.
    response_hours: Annotated[float, Field(gt=0, le=720)] = 24.0
    # The evaluations that count as satisfied in the satisfaction rate.
    satisfied: list[Level] = ["satisfied", "basic"]
    ranking: RankingRule = RankingRule()
    hotspots: HotspotRule = HotspotRule()
