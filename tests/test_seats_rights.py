"""Rights on computers, whatever asks for the route: a seat, a layout, the device API, a
scene. A refusal is 403 with the reason, is audited, and sends nothing to the matrix
(the emulator's own log of received frames shows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.ihse.emulator import DracoEmulator
from tests.seats_support import (
    bearer,
    connects,
    operator_tokens,
    post,
    seats_config,
    seats_ready,
)
from tests.support import Running, running

SCENE = """
[[scene]]
id = "secure-on-the-wall"
[[scene.step]]
device = "kvm"
action = "route"
args = { input = 4, output = 7, mode = "video" }
"""


async def route(hall: Running, token: str, **args: Any) -> Any:
    return await hall.client.post(
        "/api/v1/devices/kvm/actions/route", json=args, headers=bearer(token)
    )


async def refusals(hall: Running) -> list[tuple[str, str, str]]:
    rows = await hall.host.store.fetchall(
        "SELECT who, what, detail FROM audit WHERE result = 'forbidden' ORDER BY id"
    )
    return [(r["who"], r["what"], r["detail"]) for r in rows]


async def test_outside_the_rights_nothing_reaches_the_matrix(
    tmp_path: Path, draco: DracoEmulator
) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        wang = (await operator_tokens(hall, "wang.fang"))["wang.fang"]

        # A layout with the secure PC on one console routes none of its consoles.
        r = await post(hall, "seat-1/layouts/secure/recall", wang)
        assert r.status_code == 403, r.text
        error = r.json()["error"]
        assert error["code"] == "forbidden"
        assert (
            "wang.fang (operator) may not reach the computer Secure network PC"
            in (error["message"])
        )
        # The seat's route, and the device's own action, are refused alike.
        r = await post(hall, "seat-1/route", wang, {"console": 4, "computer": "secure-pc"})
        assert r.status_code == 403
        r = await route(hall, wang, input=4, output=2, mode="video")
        assert r.status_code == 403 and "secure-pc" in r.json()["error"]["message"]
        r = await route(hall, wang, input=4)  # every console
        assert r.status_code == 403
        r = await hall.client.post(
            "/api/v1/devices/kvm/actions/recall_preset", json={"preset": 1}, headers=bearer(wang)
        )
        assert r.status_code == 403 and "preset" in r.json()["error"]["message"]

        assert connects(draco) == [] and draco.routes == {c: 0 for c in range(1, 9)}
        assert [(who, what) for who, what, _ in await refusals(hall)] == [
            ("wang.fang", "recall_layout"),
            ("wang.fang", "route"),
            ("wang.fang", "route"),
            ("wang.fang", "route"),
            ("wang.fang", "recall_preset"),
        ]

        # The computers nobody restricted are every operator's; inputs no computer
        # names are too.
        assert (await route(hall, wang, input=1, output=1, mode="private")).status_code == 200
        assert (await route(hall, wang, input=8, output=2)).status_code == 200
        assert draco.consoles[1] == (1, "private") and draco.routes[2] == 8


@pytest.mark.parametrize(
    ("who", "role", "allowed", "refused"),
    [
        ("li.wei", "operator", ["full", "video"], ["private"]),
        ("zhao.min", "facility", ["video"], ["full", "private"]),
        ("chen.jun", "admin", ["full", "video", "private"], []),
    ],
)
async def test_each_right_grants_its_modes(
    tmp_path: Path,
    draco: DracoEmulator,
    who: str,
    role: str,
    allowed: list[str],
    refused: list[str],
) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        token = (await operator_tokens(hall, who, role=role))[who]
        r = await hall.client.get("/api/v1/seats/seat-1", headers=bearer(token))
        secure = next(c for c in r.json()["computers"] if c["id"] == "secure-pc")
        assert secure["modes"] == allowed and secure["secure"] is True
        for mode in refused:
            r = await route(hall, token, input=4, output=4, mode=mode)
            assert r.status_code == 403, (mode, r.text)
            assert f"only in: {', '.join(allowed)}" in r.json()["error"]["message"]
            assert draco.routes[4] == 0
        for mode in allowed:
            r = await route(hall, token, input=4, output=4, mode=mode)
            assert r.status_code == 200, (mode, r.text)
            assert draco.consoles[4] == (4, mode)


async def test_a_scene_acts_with_the_rights_of_whoever_runs_it(
    tmp_path: Path, draco: DracoEmulator
) -> None:
    config = seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}", extra=SCENE)
    async with running(config) as hall:
        await seats_ready(hall)
        r = await hall.client.post(
            "/api/v1/scenes/secure-on-the-wall/run?wait=true", headers=hall.as_role("operator")
        )
        run = r.json()
        assert run["status"] == "failed" and "may not reach" in run["steps"][0]["error"]
        assert connects(draco) == []
        [(who, what, _)] = await refusals(hall)
        assert (who, what) == ("test-operator", "route")

        # facility may look at the secure PC in video: the same scene runs.
        r = await hall.client.post(
            "/api/v1/scenes/secure-on-the-wall/run?wait=true", headers=hall.as_role("facility")
        )
        assert r.json()["status"] == "done", r.text
        assert draco.consoles[7] == (4, "video")


async def test_sighup_takes_the_files_new_rights(tmp_path: Path, draco: DracoEmulator) -> None:
    config = seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")
    async with running(config) as hall:
        await seats_ready(hall)
        li = (await operator_tokens(hall, "li.wei"))["li.wei"]
        assert (await route(hall, li, input=4, output=4)).status_code == 200

        # li.wei's right is withdrawn in the file; a reload applies it at once.
        text = config.read_text()
        config.write_text(text.replace('{ operator = "li.wei", modes = ["full", "video"] },', ""))
        assert await hall.daemon.reload_config()
        r = await route(hall, li, input=4, output=3)
        assert r.status_code == 403 and draco.routes[3] == 0

        # A file with errors changes nothing.
        config.write_text(text.replace("input = 4\nsecure = true", "input = 99\nsecure = true"))
        assert not await hall.daemon.reload_config()
        assert (await route(hall, li, input=4, output=3)).status_code == 403
