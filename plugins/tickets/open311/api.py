"""The GeoReport v2 resources at /open311/v2/, each as `.json` and `.xml`.

Reads are public unless `[tickets.open311] public_read = false` (then they take an
`api_key` too); a POST always takes one. Every failure answers in the spec's error
format (`errors.Open311Route`). A POST goes through the ticket core's one create
path (`intake.create`, channel `open311`).
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from daemon.host import Host
from plugins.tickets import intake, live
from plugins.tickets.intake import ReportIn
from plugins.tickets.open311 import keys, service_requests, services
from plugins.tickets.open311.document import FORMATS, answer
from plugins.tickets.open311.errors import (
    LIST,
    NO_422,
    OBJECT,
    Open311Error,
    Open311Route,
    responses,
)
from plugins.tickets.open311.service_requests import PostIn
from plugins.tickets.open311.service_requests import Query as RequestsQuery

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORM = "application/x-www-form-urlencoded"
Jurisdiction = Annotated[str | None, Query(description="this endpoint's jurisdiction_id")]
ApiKey = Annotated[str | None, Query(description="needed when reads are not public")]


def _form_field(schema: dict[str, Any]) -> dict[str, Any]:
    """A form field's schema from the model's: all are text on the wire, with the
    model's bounds (a number's text is short)."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string":
            return {
                "type": "string",
                **{k: option[k] for k in ("maxLength", "pattern") if k in option},
            }
    return {"type": "string", "maxLength": 32}


_POST_BODY = {
    **NO_422,
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{
                            name: _form_field(field)
                            for name, field in PostIn.model_json_schema()["properties"].items()
                        },
                        "attribute[code]": {
                            "type": "string",
                            "maxLength": service_requests.ATTRIBUTE_CHARS,
                            "description": "an answer to the service's attribute `code`; "
                            "`attribute[code][]` repeated for a multivaluelist",
                        },
                    },
                    "required": ["api_key", "service_code"],
                }
            }
        },
    },
}


def fmt_of(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"format {fmt!r} is not served: use .json or .xml")
    return fmt


def build_router(host: Host) -> APIRouter:
    router = APIRouter(tags=["open311"], route_class=Open311Route)
    config = live.get(host).config.open311
    kind = "batch" if config.answer == "token" else "realtime"
    tz = host.calendar.tz

    def jurisdiction(given: str | None) -> None:
        if given and config.jurisdiction_id is not None and given != config.jurisdiction_id:
            raise Open311Error(404, f"jurisdiction_id {given!r} was not found")

    async def key_name(key: str | None) -> str:
        if not key:
            raise Open311Error(403, "api_key is required")
        name = await host.store.read(lambda conn: keys.lookup(conn, key))
        if name is None:
            raise Open311Error(403, "invalid api_key")
        return name

    async def reading(given: str | None, key: str | None) -> None:
        jurisdiction(given)
        if not config.public_read:
            await key_name(key)

    @router.get(
        "/discovery.{fmt}",
        responses=responses({200: "the endpoint"}, OBJECT, 404),
        openapi_extra=NO_422,
    )
    async def discovery(request: Request, fmt: str) -> Response:
        """Where the endpoint is, what it speaks, and how to get an api_key; always public."""
        fmt = fmt_of(fmt)
        changed = await host.store.read(
            lambda conn: conn.execute("SELECT max(at) FROM ticket_catalog_changes").fetchone()[0]
        )
        changeset = service_requests.w3(changed or host.started_at, tz)
        url = config.url or str(request.url_for("discovery", fmt="json")).rsplit("/", 1)[0]
        body = {
            "changeset": changeset,
            "contact": config.contact,
            "key_service": config.key_service,
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": url,
                    "changeset": changeset,
                    "type": config.type,
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return answer(fmt, "discovery", body)

    @router.get(
        "/services.{fmt}",
        responses=responses({200: "the services"}, LIST, 403, 404),
        openapi_extra=NO_422,
    )
    async def service_list(
        fmt: str, jurisdiction_id: Jurisdiction = None, api_key: ApiKey = None
    ) -> Response:
        """The service request types: the active categories."""
        fmt = fmt_of(fmt)
        await reading(jurisdiction_id, api_key)
        found = await host.store.read(lambda conn: services.service_list(conn, kind))
        return answer(fmt, "services", found)

    @router.get(
        "/services/{service_code}.{fmt}",
        responses=responses({200: "the service's definition"}, OBJECT, 403, 404),
        openapi_extra=NO_422,
    )
    async def service_definition(
        service_code: str, fmt: str, jurisdiction_id: Jurisdiction = None, api_key: ApiKey = None
    ) -> Response:
        """A service's attributes (its category's, from the categories file)."""
        fmt = fmt_of(fmt)
        await reading(jurisdiction_id, api_key)
        attrs = await host.store.read(lambda conn: services.attributes_of(conn, service_code))
        return answer(fmt, "service_definition", services.definition(service_code, attrs))

    @router.post(
        "/requests.{fmt}",
        openapi_extra=_POST_BODY,
        status_code=201,
        responses=responses(
            {201: "the new request", 200: "the request a retried POST made"},
            LIST,
            400,
            403,
            404,
        ),
    )
    async def create_request(request: Request, fmt: str) -> Response:
        """File a report (form-encoded, as the spec says); 201 with its
        service_request_id (or token), 200 with the first one for a retried POST."""
        fmt = fmt_of(fmt)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != FORM:
            raise Open311Error(400, f"send the request as {FORM}, not {media or 'nothing'}")
        post, attributes = service_requests.parse_form(await request.body())
        jurisdiction(post.jurisdiction_id or request.query_params.get("jurisdiction_id"))
        name = await key_name(post.api_key or request.query_params.get("api_key"))
        if post.service_code is None:
            raise Open311Error(400, "service_code is required")
        code = post.service_code

        def look(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], Any]:
            attrs = services.attributes_of(conn, code)
            place = (
                service_requests.standard_address(conn, post.address_id)
                if post.address_id
                else None
            )
            return attrs, place

        attrs, place = await host.store.read(look)
        kept = services.check_attributes(attrs, attributes)
        lon, lat, grid, address = post.long, post.lat, None, post.address_string
        if place is not None:
            if lon is None:  # the building's point; a grid code's grid
                lon, lat, grid = place.lon, place.lat, (place.grid if place.lon is None else None)
            address = address or place.address
        day = host.clock.now().astimezone(tz).date().isoformat()
        report = ReportIn(
            category=code,
            description=post.description,
            address=address,
            lon=lon,
            lat=lat,
            grid=grid,
            reporter_name=post.reporter_name,
            reporter_contact=post.reporter_contact,
            media_url=post.media_url,
            attributes=kept,
            idem_key=service_requests.idem_key(name, post, attributes, day),
            channel="open311",
        )
        token = secrets.token_urlsafe(12) if config.answer == "token" else None
        done = await intake.create(
            host, report, actor=f"open311:{name}", channel="open311", token=token
        )
        ticket = done.ticket
        first: dict[str, Any] = (
            {"token": ticket["token"]}
            if config.answer == "token"
            else {"service_request_id": ticket["id"]}
        )
        notice = await host.store.read(
            lambda conn: conn.execute(
                "SELECT deadline FROM ticket_categories WHERE code = ?", (ticket["category"],)
            ).fetchone()[0]
        )
        body = [
            {
                **first,
                "service_notice": service_requests.notice(ticket["tier"], notice),
                "account_id": post.account_id,
            }
        ]
        return answer(fmt, "service_requests", body, 201 if done.created else 200)

    @router.get(
        "/requests.{fmt}",
        responses=responses({200: "the requests"}, LIST, 400, 403, 404),
        openapi_extra=NO_422,
    )
    async def list_requests(
        fmt: str,
        jurisdiction_id: Jurisdiction = None,
        api_key: ApiKey = None,
        service_request_id: Annotated[str | None, Query(description="comma-separated")] = None,
        service_code: Annotated[str | None, Query(description="comma-separated")] = None,
        start_date: Annotated[
            str | None, Query(description="w3, e.g. 2026-01-05T00:00:00Z")
        ] = None,
        end_date: Annotated[str | None, Query(description="w3; at most 90 days on")] = None,
        status: Annotated[str | None, Query(description="open, closed, or both")] = None,
    ) -> Response:
        """Requests newest first, at most 1,000, over at most 90 days (the last 90 by
        default); `service_request_id` overrides every other argument."""
        fmt = fmt_of(fmt)
        await reading(jurisdiction_id, api_key)
        q = service_requests.parse_query(
            host.clock.now(), service_request_id, service_code, start_date, end_date, status
        )
        return answer(fmt, "service_requests", await requests_of(q))

    async def requests_of(q: RequestsQuery) -> list[dict[str, Any]]:
        published_only = config.answer == "token"
        rows = await host.store.read(lambda conn: service_requests.select(conn, q, published_only))
        return [service_requests.shown(r, tz) for r in rows]

    @router.get(
        "/requests/{service_request_id}.{fmt}",
        responses=responses({200: "the request, as a list of one"}, LIST, 400, 403, 404),
        openapi_extra=NO_422,
    )
    async def one_request(
        service_request_id: str,
        fmt: str,
        jurisdiction_id: Jurisdiction = None,
        api_key: ApiKey = None,
    ) -> Response:
        """One request, as a list of one (the spec's shape)."""
        fmt = fmt_of(fmt)
        await reading(jurisdiction_id, api_key)
        if not service_request_id.isdigit():
            raise Open311Error(404, f"service_request_id {service_request_id!r} was not found")
        q = RequestsQuery([int(service_request_id)], None, 0.0, 0.0, None)
        found = await requests_of(q)
        if not found:
            raise Open311Error(404, f"service_request_id {service_request_id!r} was not found")
        return answer(fmt, "service_requests", found)

    @router.get(
        "/tokens/{token}.{fmt}",
        responses=responses({200: "the token's request"}, LIST, 400, 403, 404),
        openapi_extra=NO_422,
    )
    async def from_token(
        token: str, fmt: str, jurisdiction_id: Jurisdiction = None, api_key: ApiKey = None
    ) -> Response:
        """The service_request_id a token stands for, once the request is published
        (registered); until then the token alone."""
        fmt = fmt_of(fmt)
        await reading(jurisdiction_id, api_key)
        row = await host.store.read(
            lambda conn: conn.execute(
                "SELECT id, registered_at, merged_into FROM tickets WHERE token = ?", (token,)
            ).fetchone()
        )
        if row is None:
            raise Open311Error(404, f"token {token!r} was not found")
        ticket_id, registered_at, merged_into = row
        # A report merged before registration is published as the one it joined.
        published = ticket_id if registered_at is not None else merged_into
        return answer(fmt, "service_requests", [{"service_request_id": published, "token": token}])

    @router.api_route(
        "/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def unknown(rest: str) -> Response:
        raise Open311Error(404, f"/{rest} is not a GeoReport v2 resource")

    return router
