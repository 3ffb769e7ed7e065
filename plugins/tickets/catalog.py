"""Categories and departments as data: the file format, its checks, its import.

Cities change their categories (one went from 61 to 91 subcategories), so they are a
file, not code. The file is TOML: `[[department]]`, `[[group]]` (the major duty
categories) and `[[category]]` tables (docs/tickets.md has the whole format). It is
read whole and checked whole; every bad row is reported as `FILE:LINE: message`, and
a file with any problem imports nothing.

An import is one transaction. Departments and groups the file does not list are
removed, unless a category still names them; categories the file does not list are
kept but made inactive (tickets point at them), and new reports cannot use them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daemon.config import Issue
from daemon.tomllines import LineMap
from plugins.tickets import whistle_types
from plugins.tickets.config import Level, Tier
from plugins.tickets.deadlines import Deadline
from plugins.tickets.whistle_types import WhistleType

if TYPE_CHECKING:
    from plugins.tickets.config import TicketsConfig

ID = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=64)]
CODE = Annotated[str, Field(pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Department(_Row):
    id: ID
    name: Text
    level: Level = "district"
    street: Annotated[str, Field(pattern=r"^\d{9,24}$")] | None = None  # its street's code
    competent: bool = False  # a district competent department (主管部门)


class Group(_Row):
    code: CODE
    name: Text
    competent: ID | None = None
    major: bool = False  # the default for its categories


class Value(_Row):
    key: Annotated[str, Field(min_length=1, max_length=64)]
    name: Text


LISTS = ("singlevaluelist", "multivaluelist")


class Attribute(_Row):
    """An Open311 service definition attribute: what a report of the category may add
    (`variable`), or a line shown to the reporter (`variable = false`)."""

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=64)]
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    description: Text
    datatype_description: Text | None = None
    required: bool = False
    variable: bool = True
    order: Annotated[int, Field(ge=1)] | None = None  # default: its place in the list
    values: list[Value] = []

    @model_validator(mode="after")
    def _values(self) -> Attribute:
        if (self.datatype in LISTS) != bool(self.values):
            raise ValueError(
                f"a {self.datatype} attribute "
                + ("lists its values" if self.datatype in LISTS else "has no values")
            )
        keys = [v.key for v in self.values]
        if len(set(keys)) != len(keys):
            raise ValueError(f"attribute {self.code!r}: a value key appears twice")
        if self.required and not self.variable:
            raise ValueError(f"attribute {self.code!r}: required, but not asked (variable)")
        return self


class Category(_Row):
    code: CODE
    name: Text
    group: CODE | None = None
    tier: Tier
    department: ID | None = None
    competent: ID | None = None
    deadline: str | None = None
    major: bool | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    keywords: list[Annotated[str, Field(max_length=50)]] = []
    attributes: list[Attribute] = []
    active: bool = True

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, v: list[Attribute]) -> list[Attribute]:
        codes = [a.code for a in v]
        if len(set(codes)) != len(codes):
            raise ValueError("an attribute code appears twice")
        orders = [a.order if a.order is not None else i + 1 for i, a in enumerate(v)]
        if len(set(orders)) != len(orders):
            raise ValueError("two attributes have the same order")
        return [a.model_copy(update={"order": o}) for a, o in zip(v, orders, strict=True)]

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, v: str | None) -> str | None:
        if v is not None:
            Deadline.parse(v)
        return v


class CatalogError(Exception):
    """The file was refused; nothing was imported. `problems` have their lines."""

    def __init__(self, problems: list[Issue]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


@dataclass
class Catalog:
    departments: dict[str, Department] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    categories: dict[str, Category] = field(default_factory=dict)
    whistles: dict[tuple[str, str], WhistleType] = field(default_factory=dict)
    # Resolved per category: the deadline spec, the competent department, major.
    deadline: dict[str, str] = field(default_factory=dict)
    competent: dict[str, str | None] = field(default_factory=dict)
    major: dict[str, bool] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {
            "departments": len(self.departments),
            "groups": len(self.groups),
            "categories": len(self.categories),
        }
        if self.whistles:  # a file without whistles reads as it always did
            counts["whistles"] = len(self.whistles)  # [[whistle]] types
        return counts


def read_catalog(path: Path, config: TicketsConfig) -> Catalog:
    """Read and check the whole file; CatalogError with every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([Issue(str(path), 0, f"cannot read: {exc.strerror}")]) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or 1
        raise CatalogError([Issue(str(path), line, str(exc))]) from exc
    return _Reader(path, LineMap(text), config).read(raw)


class _Reader:
    def __init__(self, path: Path, lines: LineMap, config: TicketsConfig) -> None:
        self.path, self.lines, self.config = path, lines, config
        self.problems: list[Issue] = []
        self.catalog = Catalog()

    def bad(self, loc: tuple[Any, ...], message: str) -> None:
        self.problems.append(Issue(str(self.path), self.lines.line_of(loc), message))

    def read(self, raw: dict[str, Any]) -> Catalog:
        for key in sorted(set(raw) - {"department", "group", "category", "whistle"}):
            expected = "[[department]], [[group]], [[category]] or [[whistle]]"
            self.bad((key,), f"unknown key {key!r}; expected {expected}")
        departments = self.rows(raw, "department", Department, "id")
        groups = self.rows(raw, "group", Group, "code")
        categories = self.rows(raw, "category", Category, "code")
        cat = self.catalog
        cat.departments = {d.id: d for _, d in departments}
        cat.groups = {g.code: g for _, g in groups}
        for i, group in groups:
            if group.competent is not None and group.competent not in cat.departments:
                self.bad(("group", i, "competent"), self.no_department(group.competent))
        for i, category in categories:
            self.category(i, category)
        cat.whistles = whistle_types.check(self, raw)
        if not categories and not self.problems:
            self.bad((), "no [[category]] in the file")
        self.problems.sort(key=lambda p: p.line)
        if self.problems:
            raise CatalogError(self.problems)
        return cat

    def rows(
        self, raw: dict[str, Any], key: str, model: Any, ident: str, *, unique: bool = True
    ) -> list[tuple[int, Any]]:
        items = raw.get(key, [])
        if not isinstance(items, list):
            self.bad((key,), f"use [[{key}]] tables")
            return []
        good: list[tuple[int, Any]] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            # Checked on the raw table, so a repeat is found even beside a bad twin.
            name = item.get(ident) if isinstance(item, dict) and unique else None
            if isinstance(name, str):
                if name in seen:
                    self.bad((key, i, ident), f"{key} {name!r} again (first at line {seen[name]})")
                    continue
                seen[name] = self.lines.line_of((key, i))
            try:
                row = model.model_validate(item)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = tuple(p for p in err["loc"])
                    where = ".".join(str(p) for p in loc)
                    what = (
                        f"unknown key {where!r}"
                        if err["type"] == "extra_forbidden"
                        else f"{where}: {str(err['msg']).removeprefix('Value error, ')}"
                    )
                    self.bad((key, i, *loc), f"{key} {what}")
                continue
            good.append((i, row))
        return good

    def no_department(self, dept: str) -> str:
        return f"department {dept!r} is not a [[department]] of this file"

    def category(self, i: int, category: Category) -> None:
        cat, loc = self.catalog, ("category", i)
        group = cat.groups.get(category.group or "")
        if category.group is not None and group is None:
            self.bad(loc + ("group",), f"group {category.group!r} is not a [[group]] of this file")
            return
        for key in ("department", "competent"):
            dept = getattr(category, key)
            if dept is not None and dept not in cat.departments:
                self.bad(loc + (key,), self.no_department(dept))
                return
        if category.tier != "simple" and category.department is None:
            self.bad(
                loc + ("department",),
                f"a {category.tier} category names its department (only a simple one "
                "may be left to the grid member alone)",
            )
            return
        competent = category.competent or (group.competent if group else None)
        if competent is None and category.group is not None:
            from_config = self.config.competent.get(category.group)
            competent = from_config if from_config in cat.departments else None
        cat.categories[category.code] = category
        cat.deadline[category.code] = category.deadline or self.config.tiers[category.tier]
        cat.competent[category.code] = competent
        cat.major[category.code] = (
            category.major if category.major is not None else bool(group and group.major)
        )


def write_catalog(conn: sqlite3.Connection, catalog: Catalog) -> dict[str, int]:
    """Call inside one `Store.write`: upsert everything, retire what the file dropped."""
    conn.executemany(
        "INSERT INTO ticket_departments (id, name, level, street, competent) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
        "level = excluded.level, street = excluded.street, competent = excluded.competent",
        [(d.id, d.name, d.level, d.street, int(d.competent)) for d in catalog.departments.values()],
    )
    conn.execute("DELETE FROM ticket_groups")
    conn.executemany(
        "INSERT INTO ticket_groups (code, name, competent) VALUES (?, ?, ?)",
        [(g.code, g.name, g.competent) for g in catalog.groups.values()],
    )
    rows = [
        (
            c.code,
            c.name,
            c.group,
            c.tier,
            c.department,
            catalog.competent[c.code],
            catalog.deadline[c.code],
            int(catalog.major[c.code]),
            c.description,
            json.dumps(c.keywords, ensure_ascii=False) if c.keywords else None,
            json.dumps([a.model_dump(exclude_none=True) for a in c.attributes], ensure_ascii=False)
            if c.attributes
            else None,
            int(c.active),
        )
        for c in catalog.categories.values()
    ]
    conn.executemany(
        "INSERT INTO ticket_categories (code, name, grp, tier, department, competent, deadline, "
        "major, description, keywords, attributes, active) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(code) DO UPDATE SET "
        "name = excluded.name, grp = excluded.grp, tier = excluded.tier, "
        "department = excluded.department, competent = excluded.competent, "
        "deadline = excluded.deadline, major = excluded.major, "
        "description = excluded.description, keywords = excluded.keywords, "
        "attributes = excluded.attributes, active = excluded.active",
        rows,
    )
    codes = list(catalog.categories)
    retired = conn.execute(
        f"UPDATE ticket_categories SET active = 0 WHERE active = 1 AND code NOT IN "
        f"({','.join('?' * len(codes))})",
        codes,
    ).rowcount
    ids = list(catalog.departments)
    conn.execute(
        f"DELETE FROM ticket_departments WHERE id NOT IN ({','.join('?' * len(ids)) or 'NULL'}) "
        "AND id NOT IN (SELECT department FROM ticket_categories WHERE department IS NOT NULL "
        "UNION SELECT competent FROM ticket_categories WHERE competent IS NOT NULL)",
        ids,
    )
    retired += whistle_types.write(conn, catalog.whistles)
    _changeset(conn, rows)
    return {**catalog.counts(), "retired": retired}


def _changeset(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Note the import when the services Open311 shows changed (discovery's changeset)."""
    digest = hashlib.sha256(json.dumps(sorted(rows), default=str).encode()).hexdigest()
    last = conn.execute("SELECT digest FROM ticket_catalog_changes ORDER BY id DESC LIMIT 1")
    found = last.fetchone()
    if found is None or found[0] != digest:
        conn.execute(
            "INSERT INTO ticket_catalog_changes (at, digest) VALUES (?, ?)", (time.time(), digest)
        )
