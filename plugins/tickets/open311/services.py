"""Services are the categories: the list, a service definition with its attributes,
and the check of a request's `attribute[code]` answers against them.

A service is an active category (`service_code` its code); `group` is its major duty
category's name; `metadata` says whether it has attributes to ask; `type` is
`realtime` (the ticket is filed at once and its id answered) or `batch` (a token,
`[tickets.open311] answer = "token"`). Attributes come from the categories file
(docs/tickets.md): variable, code, datatype, required, datatype_description, order,
description and, for the two list types, values of key and name.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from plugins.tickets.open311.errors import Open311Error

_SERVICES = (
    "SELECT c.code, c.name, c.description, c.attributes, c.keywords, g.name "
    "FROM ticket_categories c LEFT JOIN ticket_groups g ON g.code = c.grp "
    "WHERE c.active = 1"
)


def service_list(conn: sqlite3.Connection, kind: str) -> list[dict[str, Any]]:
    return [
        {
            "service_code": code,
            "service_name": name,
            "description": description,
            "metadata": bool(attributes),
            "type": kind,
            "keywords": ", ".join(json.loads(keywords)) if keywords else None,
            "group": group,
        }
        for code, name, description, attributes, keywords, group in conn.execute(
            f"{_SERVICES} ORDER BY c.code"
        )
    ]


def attributes_of(conn: sqlite3.Connection, code: str) -> list[dict[str, Any]]:
    """The attributes of an active service; 404 in the spec's words when there is none."""
    row = conn.execute(
        "SELECT attributes FROM ticket_categories WHERE code = ? AND active = 1", (code,)
    ).fetchone()
    if row is None:
        raise Open311Error(404, f"service_code {code!r} was not found")
    found: list[dict[str, Any]] = json.loads(row[0]) if row[0] else []
    return found


def definition(code: str, attributes: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(attributes, key=lambda a: a.get("order") or 0)
    return {
        "service_code": code,
        "attributes": [
            {
                "variable": a.get("variable", True),
                "code": a["code"],
                "datatype": a["datatype"],
                "required": a.get("required", False),
                "datatype_description": a.get("datatype_description"),
                "order": a.get("order"),
                "description": a["description"],
                "values": [{"key": v["key"], "name": v["name"]} for v in a.get("values", [])],
            }
            for a in ordered
        ],
    }


def check_attributes(
    attributes: list[dict[str, Any]], given: dict[str, list[str]]
) -> dict[str, Any] | None:
    """The answers as the ticket keeps them (a list for a multivaluelist, else one
    value; numbers as numbers); every problem at once as a 400."""
    problems: list[str] = []
    by_code = {a["code"]: a for a in attributes if a.get("variable", True)}
    for code in sorted(set(given) - set(by_code)):
        problems.append(f"attribute[{code}] is not an attribute of this service")
    kept: dict[str, Any] = {}
    for code, attr in by_code.items():
        values = [v for v in given.get(code, []) if v.strip()]
        if not values:
            if attr.get("required"):
                problems.append(f"attribute[{code}] is required: {attr['description']}")
            continue
        try:
            kept[code] = _value(attr, values)
        except ValueError as exc:
            problems.append(f"attribute[{code}]: {exc}")
    if problems:
        raise Open311Error(400, *problems)
    return kept or None


def _value(attr: dict[str, Any], values: list[str]) -> Any:
    datatype = attr["datatype"]
    keys = [v["key"] for v in attr.get("values", [])]
    if datatype == "multivaluelist":
        outside = [v for v in values if v not in keys]
        if outside:
            raise ValueError(f"{', '.join(map(repr, outside))} not among {', '.join(keys)}")
        return list(dict.fromkeys(values))
    if len(values) > 1:
        raise ValueError(f"one value, not {len(values)} (a {datatype})")
    value = values[0]
    if datatype == "singlevaluelist":
        if value not in keys:
            raise ValueError(f"{value!r} is not among {', '.join(keys)}")
        return value
    if datatype == "number":
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        return int(number) if number.is_integer() else number
    if datatype == "datetime":
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 datetime") from None
        return value
    if datatype == "string" and ("\n" in value or "\r" in value):
        raise ValueError("a string has no line breaks (a text may)")
    if len(value) > 2000:
        raise ValueError("longer than 2,000 characters")
    return value
