"""Scenes, sequences and interlocks: list, run, cancel, edit.

`operator` runs and cancels scenes; `facility` edits scenes and sequences (kept in the
store, the config being their seed); interlocks are read-only here: they are safety
rules and live in the config file, under review, reloaded on SIGHUP.

A run answers 202 at once with the run (a hall's power-down takes minutes while the
projectors cool); `?wait=true` answers when it has ended. Progress goes out as
`scene.*` events on `GET /api/v1/events`; `GET /api/v1/scenes/{id}` shows the last
run's outcome step by step.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from daemon.api.deps import Facility, HostDep, Operator, Viewer, error_responses
from daemon.errors import BadArguments
from daemon.scenes import SceneConfig, SequenceConfig

router = APIRouter(tags=["scenes"])


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        404: "unknown scene or sequence",
        409: "already running, a sequence on its devices, or not running",
        422: "a bad definition: unknown devices, actions or arguments",
    }
    return error_responses(*codes, described=text)


@router.get("/scenes")
async def list_scenes(host: HostDep, who: Viewer) -> list[dict[str, Any]]:
    return [host.scenes.describe(scene_id) for scene_id in sorted(host.scenes.scenes)]


@router.get("/scenes/{scene_id}", responses=_errors(404))
async def get_scene(scene_id: str, host: HostDep, who: Viewer) -> dict[str, Any]:
    """The scene, and its running or last run's outcome step by step."""
    return host.scenes.describe(scene_id)


@router.post(
    "/scenes/{scene_id}/run",
    status_code=202,
    responses={
        200: {"description": "`wait=true`: the run, once it has ended"},
        **_errors(404, 409),
    },
)
async def run_scene(
    scene_id: str, host: HostDep, who: Operator, wait: bool = False
) -> JSONResponse:
    """Start the scene: 202 with the run; `wait=true`: 200 once it has ended."""
    run = await host.run_scene(scene_id, who=who.name, cause="api", role=who.role)
    if wait:
        await run.wait()
        return JSONResponse(run.to_dict(), status_code=200)
    return JSONResponse(run.to_dict(), status_code=202)


@router.post("/scenes/{scene_id}/cancel", responses=_errors(404, 409))
async def cancel_scene(scene_id: str, host: HostDep, who: Operator) -> dict[str, Any]:
    """Stop the running scene at its next wait; answers with its outcome once stopped."""
    run = await host.scenes.cancel(scene_id, who=who.name)
    return run.to_dict()


@router.put("/scenes/{scene_id}", responses=_errors(422))
async def put_scene(
    scene_id: str, scene: SceneConfig, host: HostDep, who: Facility
) -> dict[str, Any]:
    """Create or replace a scene; the edit is kept over the config's version."""
    if scene.id != scene_id:
        raise BadArguments(f"the body's id {scene.id!r} is not the path's {scene_id!r}")
    await host.scenes.put("scene", scene, who.name)
    return host.scenes.describe(scene_id)


@router.delete("/scenes/{scene_id}", status_code=204, responses=_errors(404, 409))
async def delete_scene(scene_id: str, host: HostDep, who: Facility) -> None:
    """Drop an edit made through the API; the config's version, if any, comes back."""
    await host.scenes.delete("scene", scene_id, who.name)


@router.get("/sequences")
async def list_sequences(host: HostDep, who: Viewer) -> list[dict[str, Any]]:
    return [
        {
            **seq.model_dump(exclude_defaults=True),
            "scenes": list(seq.scene_ids()),
            "origin": host.scenes.origin.get(("sequence", seq.id)),
        }
        for seq in sorted(host.scenes.sequences.values(), key=lambda s: s.id)
    ]


@router.put("/sequences/{sequence_id}", responses=_errors(422))
async def put_sequence(
    sequence_id: str, sequence: SequenceConfig, host: HostDep, who: Facility
) -> dict[str, Any]:
    """Create or replace a sequence; its scenes `<id>-up` and `<id>-down` follow."""
    if sequence.id != sequence_id:
        raise BadArguments(f"the body's id {sequence.id!r} is not the path's {sequence_id!r}")
    await host.scenes.put("sequence", sequence, who.name)
    return {**sequence.model_dump(exclude_defaults=True), "scenes": list(sequence.scene_ids())}


@router.delete("/sequences/{sequence_id}", status_code=204, responses=_errors(404, 409))
async def delete_sequence(sequence_id: str, host: HostDep, who: Facility) -> None:
    await host.scenes.delete("sequence", sequence_id, who.name)


@router.get("/interlocks")
async def list_interlocks(host: HostDep, who: Viewer) -> list[dict[str, Any]]:
    """The interlocks in force, each with the reason it gives when it refuses."""
    return [{**rule.model_dump(), "reason": rule.describe()} for rule in host.interlocks.rules]
