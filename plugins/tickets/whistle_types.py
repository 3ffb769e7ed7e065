"""Whistle types (吹哨报到, seed 001) as data: `[[whistle]]` tables of the categories
file, beside the departments they call.

Each level has its own types (community: sanitation, law enforcement, public security,
supervision, service; street: problem, service, tackling, emergency, fallback with
its kinds; district: key, coordination), each with the time the departments have to
report in and the departments it calls when the one who blows names none. A whistle
nobody answered goes up a level, to the type its `escalate_to` names (by default the
type of the same code there): the district's types escalate nowhere.

```toml
[[whistle]]
level = "community"
code = "sanitation"
name = "卫生哨"
deadline = "2h"                    # report in within this (a deadline spec, one value)
departments = ["sanitation"]      # called when the one who blows names none
escalate_to = "problem"           # a street type; default: the same code there
kinds = [{ code = "litter", name = "暴露垃圾" }]   # optional sub-kinds
```
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plugins.tickets.config import Level
from plugins.tickets.deadlines import Deadline

if TYPE_CHECKING:
    from plugins.tickets.catalog import _Reader

LEVELS: tuple[str, ...] = ("community", "street", "district")
ID = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=64)]


def next_level(level: str) -> str | None:
    i = LEVELS.index(level)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


class Kind(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: ID
    name: Annotated[str, Field(min_length=1, max_length=200)]


class WhistleType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Level
    code: ID
    name: Annotated[str, Field(min_length=1, max_length=200)]
    deadline: str
    departments: list[ID] = []
    escalate_to: ID | None = None
    kinds: list[Kind] = []
    description: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, v: str) -> str:
        if Deadline.parse(v).ranged:
            raise ValueError(f"a report-in deadline is one value, not a range: {v!r}")
        return v


def check(reader: _Reader, raw: dict[str, Any]) -> dict[tuple[str, str], WhistleType]:
    """The file's `[[whistle]]` tables, each problem reported at its line."""
    found: dict[tuple[str, str], WhistleType] = {}
    rows: list[tuple[int, WhistleType]] = []
    for i, row in reader.rows(raw, "whistle", WhistleType, "code", unique=False):
        key = (row.level, row.code)
        if key in found:
            reader.bad(("whistle", i, "code"), f"whistle {row.level} {row.code!r} again")
            continue
        found[key] = row
        rows.append((i, row))
    departments = reader.catalog.departments
    for i, row in rows:
        for j, dept in enumerate(row.departments):
            if dept not in departments:
                reader.bad(("whistle", i, "departments", j), reader.no_department(dept))
        up = next_level(row.level)
        if up is None:
            if row.escalate_to is not None:
                reader.bad(("whistle", i, "escalate_to"), "a district whistle escalates nowhere")
            continue
        above = [code for level, code in found if level == up]
        target = row.escalate_to or row.code
        if above and target not in above:
            what = f"escalate_to {row.escalate_to!r}" if row.escalate_to else "its code"
            reader.bad(
                ("whistle", i, "escalate_to"),
                f"{what} is not a {up} whistle of this file ({', '.join(sorted(above))})",
            )
    return found


def escalates_to(conn: sqlite3.Connection, level: str, code: str) -> sqlite3.Row | None:
    """The type a whistle of (level, code) goes to one level up; None at the top or
    when that level has no types."""
    up = next_level(level)
    if up is None:
        return None
    current = type_row(conn, level, code, retired=True)
    target = (current["escalate_to"] if current is not None else None) or code
    return type_row(conn, up, target, retired=True)


def type_row(
    conn: sqlite3.Connection, level: str, code: str, *, retired: bool = False
) -> sqlite3.Row | None:
    cur = conn.execute(
        "SELECT * FROM ticket_whistle_types WHERE level = ? AND code = ?"
        + ("" if retired else " AND active = 1"),
        (level, code),
    )
    cur.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cur.fetchone()
    return row


def view(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in ("departments", "kinds"):
        out[key] = json.loads(out[key]) if out[key] else []
    out["active"] = bool(out["active"])
    return out


def write(conn: sqlite3.Connection, types: dict[tuple[str, str], WhistleType]) -> int:
    """Inside the catalog's import: upsert the file's types, retire the others (a
    whistle of a retired type still escalates along it)."""
    conn.executemany(
        "INSERT INTO ticket_whistle_types (level, code, name, deadline, departments, "
        "escalate_to, kinds, description, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) "
        "ON CONFLICT(level, code) DO UPDATE SET name = excluded.name, "
        "deadline = excluded.deadline, departments = excluded.departments, "
        "escalate_to = excluded.escalate_to, kinds = excluded.kinds, "
        "description = excluded.description, active = 1",
        [
            (
                t.level,
                t.code,
                t.name,
                t.deadline,
                json.dumps(t.departments),
                t.escalate_to,
                json.dumps([k.model_dump() for k in t.kinds], ensure_ascii=False),
                t.description,
            )
            for t in types.values()
        ],
    )
    active = {f"{level}/{code}" for level, code in types}
    retired = 0
    for level, code in conn.execute(
        "SELECT level, code FROM ticket_whistle_types WHERE active = 1"
    ).fetchall():
        if f"{level}/{code}" not in active:
            conn.execute(
                "UPDATE ticket_whistle_types SET active = 0 WHERE level = ? AND code = ?",
                (level, code),
            )
            retired += 1
    return retired
