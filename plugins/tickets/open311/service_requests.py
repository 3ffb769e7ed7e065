"""Service requests: a POST's form into a report for the ticket core, and the tickets
as GeoReport v2 shows them.

A POST is `application/x-www-form-urlencoded` (the spec's only body), with the
attributes as `attribute[code]=v` and, for a multivaluelist, `attribute[code][]=v`
repeated. The location is lat & long, or address_string, or address_id (a standard
address of the grid registry: a building's code, or a basic grid's code).

What a request shows never includes who reported it: no name, phone, e-mail, account
or device. Status: `open` while the ticket is in an open state of the loop
(collected, registered, dispatched, handling, reported), `closed` once it is done
(closed, evaluated, a duplicate, not ours, invalid), with `status_notes` saying which.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plugins.tickets import workflow
from plugins.tickets.deadlines import Deadline
from plugins.tickets.open311.errors import Open311Error

WINDOW = dt.timedelta(days=90)  # the spec's span of a query, and its default
LIMIT = 1000  # the spec's most requests in one answer
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")
_GRID = re.compile(r"^\d{14,24}$")
_CJK = re.compile(r"[\u3400-\u9fff]")
Short = Annotated[str, Field(max_length=200)]
ATTRIBUTES = 100  # attributes in one request, and values of one multivaluelist
ATTRIBUTE_CHARS = 2000  # one attribute's value


class PostIn(BaseModel):
    """The form's fields but the attributes, as the spec names them."""

    model_config = ConfigDict(extra="forbid")

    api_key: Short | None = None
    jurisdiction_id: Short | None = None
    service_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    long: Annotated[float, Field(ge=-180, le=180)] | None = None
    address_string: Short | None = None
    address_id: Annotated[str, Field(max_length=64)] | None = None
    email: Short | None = None
    device_id: Short | None = None
    account_id: Short | None = None
    first_name: Annotated[str, Field(max_length=100)] | None = None
    last_name: Annotated[str, Field(max_length=100)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    description: Annotated[str, Field(max_length=4000)] | None = None
    media_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] | None = None

    @model_validator(mode="after")
    def _location(self) -> PostIn:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long are sent together")
        if self.lat is None and not self.address_string and not self.address_id:
            raise ValueError("a location is required: lat & long, address_string or address_id")
        return self

    @property
    def reporter_name(self) -> str | None:
        # A Chinese name is written family name first, with no space (张 + 三 = 张三).
        first, last = (self.first_name or "").strip(), (self.last_name or "").strip()
        if not (first or last):
            return None
        return f"{last}{first}" if _CJK.search(first + last) else f"{first} {last}".strip()

    @property
    def reporter_contact(self) -> str | None:
        found = [c.strip() for c in (self.phone, self.email) if c and c.strip()]
        return " / ".join(found) or None


def parse_form(body: bytes) -> tuple[PostIn, dict[str, list[str]]]:
    """The form's fields and its attributes (code -> values). A field given twice, a
    body that is not a form, a bad value: 400 naming it."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Open311Error(400, "the body is not UTF-8") from None
    fields: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    for name, value in pairs:
        if m := _ATTRIBUTE.match(name):
            if len(value) > ATTRIBUTE_CHARS:
                raise Open311Error(400, f"{name}: at most {ATTRIBUTE_CHARS} characters")
            attributes.setdefault(m.group(1), []).append(value)
            if len(attributes) > ATTRIBUTES or len(attributes[m.group(1)]) > ATTRIBUTES:
                raise Open311Error(400, f"at most {ATTRIBUTES} attributes, and values of one")
        elif name in fields:
            raise Open311Error(400, f"{name} is given twice")
        elif value != "":  # the spec: an empty argument is one not given
            fields[name] = value
    return PostIn.model_validate(fields), attributes


def idem_key(key_name: str, post: PostIn, attributes: dict[str, list[str]], day: str) -> str | None:
    """A device posting the same request again the same day (a retry after a lost
    answer) files one ticket: the key is a hash of the api_key's name, the device and
    every field it sent. Without a device_id there is no telling a retry from a second
    resident, and every POST is a ticket."""
    if not post.device_id:
        return None
    sent = post.model_dump(exclude={"api_key"}, exclude_none=True)
    text = json.dumps([key_name, day, sent, sorted(attributes.items())], ensure_ascii=False)
    return "open311:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class Place:
    lon: float | None
    lat: float | None
    address: str | None
    grid: str | None


def standard_address(conn: sqlite3.Connection, address_id: str) -> Place:
    """An address_id: a building of the grid registry (its point and address), or a
    basic grid's code; 400 otherwise."""
    try:
        row = conn.execute(
            "SELECT lon, lat, address, grid FROM grid_buildings WHERE code = ?", (address_id,)
        ).fetchone()
    except sqlite3.OperationalError:  # the grid plugin is blocked: no registry
        row = None
    if row is not None:
        return Place(row[0], row[1], row[2], row[3] or None)
    if _GRID.match(address_id):
        known = None
        try:
            known = conn.execute(
                "SELECT 1 FROM grid_nodes WHERE code = ?", (address_id,)
            ).fetchone()
        except sqlite3.OperationalError:
            pass
        if known is not None:
            return Place(None, None, None, address_id)
    raise Open311Error(
        400, f"address_id {address_id!r} is neither a building of the registry nor a grid code"
    )


# -- reading -----------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    ids: list[int] | None
    codes: list[str] | None
    start: float
    end: float
    statuses: set[str] | None


def _w3(name: str, value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise Open311Error(
            400, f"{name}: {value!r} is not a w3 datetime with its zone (2026-01-05T00:00:00Z)"
        )
    return when


def _list(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_query(
    now: dt.datetime,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
) -> Query:
    """GET requests' arguments; the spec's window: the last 90 days by default, a
    start or end alone reaching 90 days from it, never a span over 90 days."""
    ids = None
    if (given := _list(service_request_id)) is not None:
        bad = [i for i in given if not i.isdigit()]
        if bad:
            raise Open311Error(400, f"service_request_id: {', '.join(bad)} is not a request id")
        if len(given) > LIMIT:
            raise Open311Error(400, f"service_request_id: at most {LIMIT} ids at once")
        ids = [int(i) for i in given]
    statuses = None
    if (asked := _list(status)) is not None:
        unknown = sorted(set(asked) - {"open", "closed"})
        if unknown:
            raise Open311Error(400, f"status: {', '.join(unknown)} is not open or closed")
        statuses = set(asked)
    start = _w3("start_date", start_date) if start_date else None
    end = _w3("end_date", end_date) if end_date else None
    if start is not None and end is not None:
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > WINDOW:
            raise Open311Error(400, "start_date to end_date may not span more than 90 days")
    elif start is not None:
        end = start + WINDOW
    elif end is not None:
        start = end - WINDOW
    else:
        end, start = now, now - WINDOW
    assert start is not None and end is not None
    return Query(ids, _list(service_code), start.timestamp(), end.timestamp(), statuses)


_COLUMNS = (
    "t.id, t.state, t.category, t.description, t.address, t.lon, t.lat, t.media_url, "
    "t.created_at, t.updated_at, t.due_at, t.merged_into, t.tier, "
    "c.name, c.deadline, d.name"
)
_FROM = (
    "FROM tickets t JOIN ticket_categories c ON c.code = t.category "
    "LEFT JOIN ticket_departments d ON d.id = t.department"
)


def select(conn: sqlite3.Connection, q: Query, published_only: bool) -> list[tuple[Any, ...]]:
    """The requests asked for, newest first, at most 1,000. `service_request_id`
    overrides every other argument."""
    clauses: list[str] = []
    params: list[Any] = []
    if published_only:
        clauses.append("t.registered_at IS NOT NULL")
    if q.ids is not None:
        clauses.append(f"t.id IN ({','.join('?' * len(q.ids))})")
        params += q.ids
    else:
        clauses.append("t.created_at >= ? AND t.created_at <= ?")
        params += [q.start, q.end]
        if q.codes:
            clauses.append(f"t.category IN ({','.join('?' * len(q.codes))})")
            params += q.codes
        if q.statuses == {"open"}:
            clauses.append("t.done_at IS NULL")
        elif q.statuses == {"closed"}:
            clauses.append("t.done_at IS NOT NULL")
    sql = (
        f"SELECT {_COLUMNS} {_FROM} WHERE {' AND '.join(clauses)} "
        f"ORDER BY t.created_at DESC, t.id DESC LIMIT {LIMIT}"
    )
    return conn.execute(sql, params).fetchall()


_NOTES = {
    workflow.COLLECTED: "已受理 received",
    workflow.REGISTERED: "已立案 registered as a case",
    workflow.DISPATCHED: "已派遣 sent to the department handling it",
    workflow.HANDLING: "处置中 being handled",
    workflow.REPORTED: "已反馈,待核查 handled; being verified",
    workflow.CLOSED: "已核查结案 verified and closed",
    workflow.EVALUATED: "已结案并评价 closed and evaluated",
    workflow.DUPLICATE: "重复上报 a duplicate of request {into}",
    workflow.NOT_OURS: "不属本辖区职责 not this district's responsibility",
    workflow.INVALID: "经核实不属实 found not to be real",
}
_TIERS = {"simple": "简易事件", "coordination": "协调事件", "hard": "疑难事件"}
_UNITS = {"m": "分钟", "h": "小时", "wh": "个工作小时", "wd": "个工作日"}


def notice(tier: str, spec: str) -> str:
    """What the district undertakes, e.g. "协调事件,5个工作日内办结"."""
    d = Deadline.parse(spec)
    amount = f"{d.low:g}" if not d.ranged else f"{d.low:g}-{d.high:g}"
    return f"{_TIERS.get(tier, tier)},{amount}{_UNITS[d.unit]}内办结"


def w3(epoch: float | None, tz: dt.tzinfo) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds")


def shown(row: tuple[Any, ...], tz: dt.tzinfo) -> dict[str, Any]:
    """One ticket as a GeoReport v2 request, in the spec's field order."""
    (id_, state, category, description, address, lon, lat, media, created, updated, due,
     into, tier, service_name, deadline, agency) = row  # fmt: skip
    return {
        "service_request_id": id_,
        "status": "open" if state in workflow.OPEN else "closed",
        "status_notes": _NOTES[state].format(into=into),
        "service_name": service_name,
        "service_code": category,
        "description": description,
        "agency_responsible": agency,
        "service_notice": notice(tier, deadline),
        "requested_datetime": w3(created, tz),
        "updated_datetime": w3(updated, tz),
        "expected_datetime": w3(due, tz),  # the deadline
        "address": address,
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": media,
    }
