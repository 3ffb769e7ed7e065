"""The `[grid]` config section.

The depth and the sequence width differ between cities (Beijing numbers its grids
with 3 digits, most cities with 2), so they are configuration, not code.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# The levels in order. A district always goes down to the basic grid; `depth` 5 adds
# compounds (小区) and 6 adds buildings (楼栋) as tree levels below it.
LEVELS: tuple[str, ...] = ("district", "street", "community", "grid", "compound", "building")
BASIC = "grid"

# The role whose holders may ask for personal fields unmasked (`?reveal=true`).
PRIVACY_ROLE = "grid-registrar"


class GridConfig(BaseModel):
    """The `[grid]` section; every key has a default, so the section is optional."""

    model_config = ConfigDict(extra="forbid")
    depth: Annotated[int, Field(ge=4, le=6)] = 4
    sequence_width: Annotated[int, Field(ge=2, le=3)] = 2
    # Gaps and overlaps smaller than this (square metres) are float noise, not errors.
    tolerance_m2: Annotated[float, Field(ge=0)] = 1.0

    @property
    def levels(self) -> tuple[str, ...]:
        return LEVELS[: self.depth]
