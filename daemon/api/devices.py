"""Devices: list, one, and actions."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from daemon.api.deps import HostDep, Operator, Viewer, error_responses
from daemon.errors import BadArguments


class DeviceOut(BaseModel):
    id: str
    kind: str
    driver: str
    name: str
    available: bool
    state: dict[str, Any]
    error: str | None = None
    # What a panel needs to draw it: `actions`; a matrix's `inputs`, `outputs` and
    # route `modes`; a power board's `channels` and `sequence`; a screen's `inputs`.
    controls: dict[str, Any] = {}


router = APIRouter(prefix="/devices", tags=["devices"])

_ACTION_ERRORS = error_responses(
    403,
    404,
    409,
    422,
    502,
    503,
    504,
    described={
        403: "the token's role, or its rights on the computer routed, do not allow it",
        404: "unknown device or action",
        409: "refused by an interlock or a running sequence",
        502: "the device answered with an error of its own",
        503: "device unavailable",
    },
)


@router.get("")
async def list_devices(host: HostDep, who: Viewer) -> list[DeviceOut]:
    return [DeviceOut(**d.to_dict()) for d in host.devices]


@router.get("/{device_id}", responses={404: _ACTION_ERRORS[404]})
async def get_device(device_id: str, host: HostDep, who: Viewer) -> DeviceOut:
    return DeviceOut(**host.devices.get(device_id).to_dict())


async def action_args(request: Request) -> dict[str, Any]:
    """The JSON object of arguments; an empty body is no arguments. Read whatever the
    Content-Type says, so `curl -d '{"channel": 1}'` works as it reads."""
    body = await request.body()  # bounded by the app's BodyLimit
    if not body.strip():
        return {}
    try:
        args = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadArguments(f"body is not valid JSON: {exc}") from exc
    if not isinstance(args, dict):
        raise BadArguments('body must be a JSON object of arguments, e.g. {"channel": 1}')
    return args


@router.post(
    "/{device_id}/actions/{action}",
    responses=_ACTION_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": True,
                        "description": "the action's arguments",
                    }
                }
            },
        }
    },
)
async def run_action(
    device_id: str,
    action: str,
    host: HostDep,
    who: Operator,
    args: Annotated[dict[str, Any], Depends(action_args)],
) -> DeviceOut:
    """Run an action; answers with the device's state once the device confirmed it."""
    await host.act(device_id, action, args, who=who.name, cause="api", role=who.role)
    return DeviceOut(**host.devices.get(device_id).to_dict())
