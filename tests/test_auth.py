"""Every route but health needs a token (401 without) and a role (403 below it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from daemon.auth import Roles
from daemon.hookspecs import hookimpl
from daemon.pluginhost import PluginHost
from drivers.modbus.emulator import ModbusEmulator
from tests.support import relay_config, running

LADDER = ["guest", "viewer", "operator", "facility", "admin"]
# Plugin roles beside the ladder, each with the role one below it: a token of that
# role must get 403. The ticket roles: reporter < dispatcher, reporter < handler.


class GuestRole:
    """A plugin role that includes nothing: the floor below viewer."""

    @hookimpl
    def gridhall_roles(self) -> dict[str, list[str]]:
        return {"guest": []}


# The least role each route needs. A route missing here fails the test: every new
# route states its role in this table.
REQUIRED = {
    "GET /api/v1/devices": "viewer",
    "GET /api/v1/devices/{device_id}": "viewer",
    "POST /api/v1/devices/{device_id}/actions/{action}": "operator",
    "GET /api/v1/events": "viewer",
    "GET /api/v1/audit": "admin",
    "GET /api/v1/store/check": "admin",
    # Prometheus scrapes with a viewer token (docs/metrics.md)
    "GET /metrics": "viewer",
    # schedules
    "GET /api/v1/schedules": "viewer",
    "GET /api/v1/schedules/{schedule_id}": "viewer",
    "POST /api/v1/schedules": "facility",
    "PUT /api/v1/schedules/{schedule_id}": "facility",
    "DELETE /api/v1/schedules/{schedule_id}": "facility",
    # scenes, sequences, interlocks
    "GET /api/v1/scenes": "viewer",
    "GET /api/v1/scenes/{scene_id}": "viewer",
    "POST /api/v1/scenes/{scene_id}/run": "operator",
    "POST /api/v1/scenes/{scene_id}/cancel": "operator",
    "PUT /api/v1/scenes/{scene_id}": "facility",
    "DELETE /api/v1/scenes/{scene_id}": "facility",
    "GET /api/v1/sequences": "viewer",
    "PUT /api/v1/sequences/{sequence_id}": "facility",
    "DELETE /api/v1/sequences/{sequence_id}": "facility",
    "GET /api/v1/interlocks": "viewer",
    # seats
    "GET /api/v1/seats": "viewer",
    "GET /api/v1/seats/{seat_id}": "viewer",
    "POST /api/v1/seats/{seat_id}/route": "operator",
    "GET /api/v1/seats/{seat_id}/layouts": "viewer",
    "PUT /api/v1/seats/{seat_id}/layouts/{layout_id}": "facility",
    "DELETE /api/v1/seats/{seat_id}/layouts/{layout_id}": "facility",
    "POST /api/v1/seats/{seat_id}/layouts/{layout_id}/recall": "operator",
    "PUT /api/v1/seats/{seat_id}/my-layouts/{layout_id}": "operator",
    "DELETE /api/v1/seats/{seat_id}/my-layouts/{layout_id}": "operator",
    "POST /api/v1/seats/{seat_id}/my-layouts/{layout_id}/recall": "operator",
    "POST /api/v1/seats/{seat_id}/login": "operator",
    "POST /api/v1/seats/{seat_id}/logout": "operator",
    "POST /api/v1/seats/{seat_id}/push": "operator",
    # the touch panel (GET / and its files need no token: they hold no data)
    "GET /api/v1/panel": "viewer",
    # plugins/grid
    "GET /api/v1/grid/tree": "viewer",
    "GET /api/v1/grid/grids/{code}": "viewer",
    "GET /api/v1/grid/grids/{code}/history": "viewer",
    "POST /api/v1/grid/grids/{code}/member": "operator",
    "GET /api/v1/grid/lookup": "viewer",
    "GET /api/v1/grid/members": "viewer",
    "GET /api/v1/grid/residents": "viewer",
    "GET /api/v1/grid/search": "viewer",
    "POST /api/v1/grid/reload": "operator",
    # plugins/tickets
    "POST /api/v1/tickets": "reporter",
    "GET /api/v1/tickets": "viewer",
    "GET /api/v1/tickets/overdue": "viewer",
    "GET /api/v1/tickets/categories": "viewer",
    "GET /api/v1/tickets/departments": "viewer",
    "GET /api/v1/tickets/{ticket_id}": "viewer",
    "POST /api/v1/tickets/{ticket_id}/register": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/dispatch": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/accept": "handler",
    "POST /api/v1/tickets/{ticket_id}/report": "handler",
    "POST /api/v1/tickets/{ticket_id}/verify": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/rework": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/evaluate": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/reopen": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/merge": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/decline": "dispatcher",
    "POST /api/v1/tickets/{ticket_id}/invalidate": "dispatcher",
    # plugins/tickets: measures
    "GET /api/v1/tickets/measures": "viewer",
    "GET /api/v1/tickets/measures/ranking": "viewer",
    "GET /api/v1/tickets/reports": "viewer",
    "GET /api/v1/tickets/reports/daily": "viewer",
    "GET /api/v1/tickets/reports/weekly": "viewer",
    "GET /api/v1/tickets/hotspots": "viewer",
    # plugins/tickets: whistles
    "GET /api/v1/tickets/whistles/types": "viewer",
    "POST /api/v1/tickets/whistles": "dispatcher",
    "GET /api/v1/tickets/whistles": "viewer",
    "GET /api/v1/tickets/whistles/assessment": "viewer",
    "GET /api/v1/tickets/whistles/{whistle_id}": "viewer",
    "POST /api/v1/tickets/whistles/{whistle_id}/report-in": "handler",
    "POST /api/v1/tickets/whistles/{whistle_id}/close": "dispatcher",
    # plugins/timebank
    "GET /api/v1/timebank/": "viewer",
    "GET /api/v1/timebank/accounts": "viewer",
    "POST /api/v1/timebank/accounts": "timebank-organiser",
    "GET /api/v1/timebank/accounts/{account}": "viewer",
    "PATCH /api/v1/timebank/accounts/{account}": "timebank-organiser",
    "GET /api/v1/timebank/accounts/{account}/statement": "timebank-organiser",
    "POST /api/v1/timebank/awards": "timebank-organiser",
    "POST /api/v1/timebank/transfers": "timebank-organiser",
    "POST /api/v1/timebank/redemptions": "timebank-organiser",
    "GET /api/v1/timebank/entries/{entry_id}": "timebank-organiser",
    "POST /api/v1/timebank/entries/{entry_id}/reverse": "timebank-organiser",
    "GET /api/v1/timebank/audit": "timebank-organiser",
    "GET /api/v1/timebank/audit/check": "timebank-organiser",
    "GET /api/v1/timebank/leaderboard": "viewer",
    "GET /api/v1/timebank/rules": "viewer",
    "GET /api/v1/timebank/catalogue": "viewer",
}
# Plugin roles off the LADDER: (the role just below, the one it includes; [roles
# beside it that must not pass for it, as they do not include it]).
OFF_LADDER = {
    "reporter": ("viewer", ["operator"]),
    "dispatcher": ("reporter", ["handler", "facility"]),
    "handler": ("reporter", ["dispatcher", "facility"]),
    "timebank-organiser": ("viewer", ["operator", "facility", "dispatcher"]),
}
STREAMING = {"GET /api/v1/events"}
# Open311 GeoReport v2 (plugins/tickets/open311) has no Bearer tokens: its reads are
# public by default, a POST needs an `api_key` (403 in the spec's format without one).
# Each route, the URL it is tried at, and who may: "public" or "api_key".
OPEN311 = {
    "GET /open311/v2/discovery.{fmt}": ("discovery.json", "public"),
    "GET /open311/v2/services.{fmt}": ("services.xml", "public"),
    "GET /open311/v2/services/{service_code}.{fmt}": ("services/x.json", "public"),
    "GET /open311/v2/requests.{fmt}": ("requests.json", "public"),
    "GET /open311/v2/requests/{service_request_id}.{fmt}": ("requests/1.xml", "public"),
    "GET /open311/v2/tokens/{token}.{fmt}": ("tokens/t.json", "public"),
    "POST /open311/v2/requests.{fmt}": ("requests.json", "api_key"),
}


def test_roles_include_the_ones_below() -> None:
    roles = Roles({"dispatcher": ["viewer"]})
    assert roles.grants("facility", "operator") and roles.grants("facility", "viewer")
    assert not roles.grants("operator", "facility")
    assert roles.grants("dispatcher", "viewer") and not roles.grants("dispatcher", "operator")
    assert roles.grants("admin", "dispatcher")


async def test_every_route_enforces_auth(tmp_path: Path, modbus: ModbusEmulator) -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    plugins.register(GuestRole(), name="guest-role")
    async with running(relay_config(tmp_path, modbus.port), plugins) as hall:
        from daemon import auth

        tokens = dict(hall.tokens)
        tokens["guest"] = await auth.create_token(hall.host.store, "guest", "guest")
        for plugin_role in OFF_LADDER:
            tokens[plugin_role] = await auth.create_token(hall.host.store, plugin_role, plugin_role)
        openapi = hall.daemon.app.openapi()
        paths = openapi["paths"]
        # Clients and /docs learn the scheme from the OpenAPI: every route with a role
        # names it.
        assert openapi["components"]["securitySchemes"] == {
            "HTTPBearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token from `gridhall token create`.",
            }
        }
        # The answers it gives are declared (tests/test_api_fuzz.py holds them to it):
        # FastAPI's own 422 shape is never sent, so never declared.
        assert "HTTPValidationError" not in str(openapi)
        checked = set()
        for path, methods in paths.items():
            if path == "/api/v1/health":
                continue
            if path.startswith("/open311/"):
                for method in methods:
                    key = f"{method.upper()} {path}"
                    assert key in OPEN311, f"{key}: add it to OPEN311"
                    # No Bearer token, and its errors are GeoReport v2's list.
                    declared = methods[method]["responses"]
                    assert not {"401", "422"} & set(declared), key
                    assert "description" in str(declared["403" if "403" in declared else "404"])
                    await open311_needs(hall, key, tokens["admin"])
                    checked.add(key)
                continue
            # "1": a path parameter may be typed (a ticket id is an int in the path).
            url = re.sub(r"\{[^}]+\}", "1", path)
            for method in methods:
                key = f"{method.upper()} {path}"
                assert key in REQUIRED, f"{key}: add its least role to REQUIRED"
                role = REQUIRED[key]
                assert methods[method].get("security") == [{"HTTPBearer": []}], key
                for status in ("401", "403"):
                    schema = methods[method]["responses"][status]["content"]["application/json"]
                    assert schema["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
                r = await hall.client.request(method, url)
                assert r.status_code == 401, key
                assert r.json()["error"]["code"] == "unauthorized"
                for bad in ("Bearer gh_not-a-real-token", f"Basic {tokens['admin']}", "Bearer"):
                    r = await hall.client.request(method, url, headers={"Authorization": bad})
                    assert r.status_code == 401, (key, bad)
                below, beside = OFF_LADDER.get(role) or (LADDER[LADDER.index(role) - 1], [])
                for other in (below, *beside):
                    r = await hall.client.request(method, url, headers=auth_as(tokens[other]))
                    assert r.status_code == 403, (key, other, r.status_code)
                    assert r.json()["error"]["code"] == "forbidden"
                if key not in STREAMING:
                    r = await hall.client.request(method, url, headers=auth_as(tokens[role]))
                    assert r.status_code not in (401, 403), (key, role)
                checked.add(key)
        assert checked == set(REQUIRED) | set(OPEN311)


async def open311_needs(hall: Any, key: str, admin: str) -> None:
    """A public read answers without any credential (a 404 for a made-up id is still an
    answer); a POST without an api_key, or with a Bearer token instead, is 403 in the
    spec's error format."""
    method = key.split()[0]
    url, who = OPEN311[key]
    url = f"/open311/v2/{url}"
    if who == "public":
        r = await hall.client.request(method, url)
        assert r.status_code in (200, 404), (key, r.status_code, r.text)
        return
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = "service_code=x&address_string=y"
    for headers in (form, {**form, **auth_as(admin)}):
        r = await hall.client.request(method, url, content=body, headers=headers)
        assert r.status_code == 403, (key, r.text)
        assert r.json() == [{"code": 403, "description": "api_key is required"}]
    r = await hall.client.request(method, url, content=body + "&api_key=o311_x", headers=form)
    assert r.status_code == 403 and r.json()[0]["description"] == "invalid api_key"


def auth_as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("role,status", [("viewer", 403), ("operator", 200), ("admin", 200)])
async def test_actions_need_operator(
    tmp_path: Path, modbus: ModbusEmulator, role: str, status: int
) -> None:
    from tests.support import wait_for

    async with running(relay_config(tmp_path, modbus.port)) as hall:
        await wait_for(lambda: hall.host.devices.get("relay").available)
        r = await hall.client.post(
            "/api/v1/devices/relay/actions/on", json={"channel": 2}, headers=hall.as_role(role)
        )
        assert r.status_code == status
        assert (await modbus.coils(1, 1, 1)) == [status == 200]
