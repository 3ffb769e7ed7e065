"""Seats through the HTTP API against the Draco emulator over TCP: layouts, private
connections, pushes and watchers, logins and profiles, a matrix that goes away. Every
result is checked on the emulator's own connections, not on the daemon's word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.ihse.emulator import DracoEmulator
from tests.seats_support import (
    bearer,
    connects,
    operator_tokens,
    post,
    seats_config,
    seats_ready,
)
from tests.support import Running, running, wait_for

DISPATCH = {1: (1, "full"), 2: (2, "video"), 3: (3, "full"), 4: (0, "full")}
PATROL = {1: (2, "full"), 2: (3, "video"), 3: (1, "video"), 4: (0, "full")}


def shows(emu: DracoEmulator, layout: dict[int, tuple[int, str]]) -> bool:
    return all(emu.consoles[c] == want for c, want in layout.items())


async def seat(hall: Running, seat_id: str, token: str) -> dict[str, Any]:
    r = await hall.client.get(f"/api/v1/seats/{seat_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def audit(hall: Running, what: str) -> list[dict[str, Any]]:
    rows = await hall.host.store.fetchall("SELECT * FROM audit WHERE what = ? ORDER BY id", (what,))
    return [dict(r) for r in rows]


async def test_a_layout_routes_every_console_of_the_seat(
    tmp_path: Path, draco: DracoEmulator
) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        op = hall.tokens["operator"]
        r = await post(hall, "seat-1/layouts/dispatch/recall", op)
        assert r.status_code == 200, r.text
        assert shows(draco, DISPATCH)
        body = r.json()
        assert body["results"] == [{"console": c, "status": "ok"} for c in (1, 2, 3, 4)]
        assert body["layout"] == "dispatch"
        consoles = {c["console"]: c for c in body["consoles"]}
        assert consoles[2] | {"screens": None} == {
            "console": 2,
            "name": "centre",
            "screens": None,
            "known": True,
            "input": 2,
            "computer": "video-pc",
            "mode": "video",
        }
        assert consoles[4]["input"] == 0 and consoles[4]["computer"] is None
        # One connect frame per console of the seat, and none for another seat's.
        assert sorted(c.con for c in connects(draco)) == [1, 2, 3, 4]

        r = await post(hall, "seat-1/layouts/patrol/recall", op)
        assert r.status_code == 200 and shows(draco, PATROL)
        assert (await seat(hall, "seat-1", op))["layout"] == "patrol"

        # The audit keeps the recall and each of its routes, with the seat as cause.
        [recall, _] = await audit(hall, "recall_layout")
        assert (recall["who"], recall["target"], recall["result"]) == (
            "test-operator",
            "seat:seat-1",
            "ok",
        )
        routes = await audit(hall, "route")
        assert len(routes) == 8 and {r["cause"] for r in routes} == {"seat:seat-1"}

        r = await post(hall, "seat-1/layouts/nope/recall", op)
        assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


async def test_a_private_connection_blocks_another_seats_view(
    tmp_path: Path, draco: DracoEmulator
) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        op = hall.tokens["operator"]
        r = await post(hall, "seat-2/route", op, {"console": 5, "computer": "duty-pc"})
        assert r.status_code == 200 and draco.consoles[5] == (1, "full")

        # Seat 1 takes the duty PC privately: the matrix drops seat 2's connection.
        r = await post(
            hall, "seat-1/route", op, {"console": 1, "computer": "duty-pc", "mode": "private"}
        )
        assert r.status_code == 200, r.text
        assert draco.consoles[1] == (1, "private") and draco.consoles[5] == (0, "full")
        await wait_for(lambda: hall.host.devices.get("kvm").state["routes"]["5"] == 0)

        # While it holds it, seat 2 may not even look.
        r = await post(
            hall, "seat-2/route", op, {"console": 5, "computer": "duty-pc", "mode": "video"}
        )
        assert r.status_code == 409, r.text
        message = r.json()["error"]["message"]
        assert "NAK" in message and "console 1 holds CPU 1 in private" in message
        assert draco.consoles[5] == (0, "full") and draco.consoles[1] == (1, "private")
        # Nor may it be pushed there.
        r = await post(hall, "seat-1/push", op, {"computer": "duty-pc", "target": "seat-2"})
        assert r.status_code == 409 and draco.consoles[5] == (0, "full")

        # Seat 1 lets go; seat 2 looks.
        assert (await post(hall, "seat-1/route", op, {"console": 1})).status_code == 200
        r = await post(
            hall, "seat-2/route", op, {"console": 5, "computer": "duty-pc", "mode": "video"}
        )
        assert r.status_code == 200 and draco.consoles[5] == (1, "video")


async def test_bad_requests_name_what_is_wrong(tmp_path: Path, draco: DracoEmulator) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        op = hall.tokens["operator"]
        before = len(connects(draco))
        cases: list[tuple[str, dict[str, Any], int, str]] = [
            ("seat-1/route", {"console": 5, "computer": "duty-pc"}, 422, "console 5"),
            ("seat-2/route", {"console": 5, "computer": "gis-pc"}, 403, "not one of seat-2"),
            ("seat-1/route", {"console": 1, "computer": "no-pc"}, 404, "no-pc"),
            ("seat-1/route", {"console": 1, "computer": "duty-pc", "mode": "x"}, 422, "mode"),
            ("seat-1/push", {"computer": "duty-pc", "target": "seat-1"}, 422, "another seat"),
            ("seat-1/push", {"computer": "duty-pc", "target": "wall", "output": 3}, 422, "3"),
            ("seat-1/push", {"computer": "duty-pc", "target": "roof"}, 404, "roof"),
            (
                "seat-1/push",
                {"computer": "duty-pc", "target": "wall", "mode": "private"},
                422,
                "mode",
            ),
            ("seat-9/route", {"console": 1}, 404, "seat-9"),
        ]
        for path, body, status, words in cases:
            r = await post(hall, path, op, body)
            assert r.status_code == status, (path, body, r.text)
            assert words in r.json()["error"]["message"], (path, r.json())
        assert len(connects(draco)) == before  # nothing reached the matrix


async def test_push_to_the_wall_and_who_watches(tmp_path: Path, draco: DracoEmulator) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        names = await operator_tokens(hall, "li.wei", "wang.fang")
        async with hall.host.events.subscribe() as sub:
            r = await post(
                hall, "seat-1/route", names["li.wei"], {"console": 3, "computer": "gis-pc"}
            )
            assert r.status_code == 200
            assert (await post(hall, "seat-2/login", names["wang.fang"])).status_code == 200

            # Pushed in video mode by default: the wall shows it and cannot take it over.
            r = await post(
                hall, "seat-1/push", names["li.wei"], {"computer": "gis-pc", "target": "wall"}
            )
            assert r.status_code == 200, r.text
            assert draco.consoles[7] == (3, "video")
            watcher = {
                "computer": "gis-pc",
                "input": 3,
                "mode": "video",
                "output": 7,
                "seat": None,
                "wall": "wall",
                "operator": None,
                "pushed_by": "li.wei",
            }
            assert r.json()["watchers"] == [watcher]

            # gis-pc's right lets any operator push it in full; duty-pc's only in video.
            r = await post(
                hall,
                "seat-1/push",
                names["li.wei"],
                {"computer": "gis-pc", "target": "seat-2", "output": 6, "mode": "full"},
            )
            assert r.status_code == 200 and draco.consoles[6] == (3, "full")
            state = await seat(hall, "seat-1", names["li.wei"])
            assert [
                (w["seat"], w["output"], w["mode"], w["operator"]) for w in state["watchers"]
            ] == [
                ("seat-2", 6, "full", "wang.fang"),
                (None, 7, "video", None),
            ]
            before = len(connects(draco))
            r = await post(
                hall,
                "seat-1/push",
                names["li.wei"],
                {"computer": "duty-pc", "target": "wall", "mode": "full"},
            )
            assert r.status_code == 403 and "only in: video" in r.json()["error"]["message"]
            assert len(connects(draco)) == before

            # The wall shows something else: it no longer watches seat 1.
            r = await hall.client.post(
                "/api/v1/devices/kvm/actions/route",
                json={"input": 2, "output": 7},
                headers=bearer(names["wang.fang"]),
            )
            assert r.status_code == 200
            await wait_for(
                lambda: [w["output"] for w in hall.host.seats.state("seat-1")["watchers"]] == [6]
            )
            # Each change of who watches went out as an event, the pusher named at once.
            seen: list[list[tuple[int, str | None]]] = []
            while not sub.queue.empty():
                event = sub.queue.get_nowait()
                if event.type == "seats.watchers" and event.data["seat"] == "seat-1":
                    seen.append([(w["output"], w["pushed_by"]) for w in event.data["watchers"]])
            assert seen == [[(7, "li.wei")], [(6, "li.wei"), (7, "li.wei")], [(6, "li.wei")]]


async def test_login_restores_the_operators_own_layout(
    tmp_path: Path, draco: DracoEmulator
) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        names = await operator_tokens(hall, "li.wei", "wang.fang")
        li, wang = names["li.wei"], names["wang.fang"]

        # No profile yet: the seat's default layout.
        r = await post(hall, "seat-1/login", li)
        assert r.status_code == 200, r.text
        assert r.json()["operator"]["name"] == "li.wei"
        assert r.json()["restore"]["layout"] == "dispatch" and r.json()["restore"]["status"] == "ok"
        assert shows(draco, DISPATCH)

        # li.wei arranges the desk (the secure PC included: li.wei's right) and leaves.
        assert (
            await post(hall, "seat-1/route", li, {"console": 2, "computer": "gis-pc"})
        ).status_code == 200
        r = await post(hall, "seat-1/route", li, {"console": 4, "computer": "secure-pc"})
        assert r.status_code == 200, r.text
        mine = {1: (1, "full"), 2: (3, "full"), 3: (3, "full"), 4: (4, "full")}
        assert shows(draco, mine)
        r = await post(hall, "seat-1/logout", li)
        assert r.status_code == 200 and r.json()["operator"] is None
        assert r.json()["profile"]["layout"]["id"] == "profile"

        # wang.fang sits down: the default layout, and the secure PC goes dark.
        r = await post(hall, "seat-1/login", wang)
        assert r.json()["restore"]["layout"] == "dispatch" and shows(draco, DISPATCH)
        # wang.fang's own layout, seen by nobody else.
        r = await post(hall, "seat-1/route", wang, {"console": 1, "computer": "video-pc"})
        assert r.status_code == 200
        r = await hall.client.put("/api/v1/seats/seat-1/my-layouts/mine", headers=bearer(wang))
        assert r.status_code == 200 and r.json()["skipped"] == []
        r = await hall.client.get("/api/v1/seats/seat-1/layouts", headers=bearer(li))
        assert [lay["id"] for lay in r.json()["mine"]] == ["profile"]
        assert [lay["id"] for lay in r.json()["seat"]] == ["dispatch", "patrol", "secure"]

        # li.wei comes back while wang.fang sits there: wang.fang's desk is kept as
        # wang.fang's profile, and li.wei's own is restored, the secure PC with it.
        r = await post(hall, "seat-1/login", li)
        assert r.json()["restore"] == {
            "layout": "profile",
            "owner": "li.wei",
            "status": "ok",
            "results": [{"console": c, "status": "ok"} for c in (1, 2, 3, 4)],
        }
        assert shows(draco, mine)
        r = await hall.client.get("/api/v1/seats/seat-1/layouts", headers=bearer(wang))
        assert sorted(lay["id"] for lay in r.json()["mine"]) == ["mine", "profile"]

        # wang.fang's own layouts are wang.fang's: recalled by name at the seat.
        r = await post(hall, "seat-1/my-layouts/mine/recall", wang)
        assert r.status_code == 200 and draco.consoles[1] == (2, "full")

        # A login survives a restart of the daemon: who sits where is in the store.
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        state = hall.host.seats.state("seat-1")
        assert state["operator"]["name"] == "li.wei"


async def test_layouts_saved_and_deleted_through_the_api(
    tmp_path: Path, draco: DracoEmulator
) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        op, fac = hall.tokens["operator"], hall.tokens["facility"]
        assert (await post(hall, "seat-1/layouts/patrol/recall", op)).status_code == 200

        # The console showing another seat's push is left out, and says why.
        r = await post(hall, "seat-1/route", op, {"console": 4, "computer": "duty-pc"})
        assert r.status_code == 200
        r = await hall.client.post(
            "/api/v1/devices/kvm/actions/route", json={"input": 8, "output": 4}, headers=bearer(op)
        )
        assert r.status_code == 200
        r = await hall.client.put(
            "/api/v1/seats/seat-1/layouts/evening", json={"name": "Evening"}, headers=bearer(fac)
        )
        assert r.status_code == 200, r.text
        assert [x["console"] for x in r.json()["layout"]["routes"]] == [1, 2, 3]
        assert r.json()["skipped"] == ["console 4: input 8 is not one of seat-1's computers"]
        assert r.json()["layout"]["name"] == "Evening"

        # Saved over the config's: the API's version wins until it is deleted.
        assert (await post(hall, "seat-1/layouts/dispatch/recall", op)).status_code == 200
        assert (
            await post(hall, "seat-1/route", op, {"console": 4, "computer": "gis-pc"})
        ).status_code == 200
        r = await hall.client.put("/api/v1/seats/seat-1/layouts/patrol", headers=bearer(fac))
        assert r.json()["layout"]["origin"] == "api"
        assert (await post(hall, "seat-1/layouts/patrol/recall", op)).status_code == 200
        assert draco.consoles[4] == (3, "full")
        r = await hall.client.delete("/api/v1/seats/seat-1/layouts/patrol", headers=bearer(fac))
        assert r.status_code == 204
        assert (await post(hall, "seat-1/layouts/patrol/recall", op)).status_code == 200
        assert shows(draco, PATROL)
        r = await hall.client.delete("/api/v1/seats/seat-1/layouts/patrol", headers=bearer(fac))
        assert r.status_code == 409 and "config" in r.json()["error"]["message"]

        # Kept across a restart.
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        r = await post(hall, "seat-1/layouts/evening/recall", hall.tokens["operator"])
        assert r.status_code == 200 and shows(draco, {c: PATROL[c] for c in (1, 2, 3)})


async def test_the_matrix_goes_away_and_comes_back(tmp_path: Path, draco: DracoEmulator) -> None:
    async with running(seats_config(tmp_path, f"tcp://127.0.0.1:{draco.port}")) as hall:
        await seats_ready(hall)
        op = hall.tokens["operator"]
        assert (await post(hall, "seat-1/layouts/dispatch/recall", op)).status_code == 200

        await draco.stop()
        await wait_for(lambda: not hall.host.seats.state("seat-1")["available"], timeout=3.0)
        r = await post(hall, "seat-1/layouts/patrol/recall", op)
        assert r.status_code == 503
        assert "console 1" in r.json()["error"]["message"]

        await draco.start()
        await wait_for(lambda: hall.host.seats.state("seat-1")["available"], timeout=5.0)
        # The matrix kept its connections, but nothing reads them back: the seat says
        # it does not know, rather than showing what it knew before.
        assert shows(draco, DISPATCH)
        state = await seat(hall, "seat-1", op)
        assert [c["known"] for c in state["consoles"]] == [False] * 4
        assert state["layout"] is None
        r = await hall.client.put(
            "/api/v1/seats/seat-1/layouts/x", headers=hall.as_role("facility")
        )
        assert r.status_code == 409 and "unknown" in r.json()["error"]["message"]

        # A switch at the matrix's front panel is echoed: that console is known again.
        draco.switch_elsewhere(2, 3, "video")
        await wait_for(lambda: hall.host.seats.state("seat-1")["consoles"][2]["known"])
        # Recalling the layout makes every console known again.
        r = await post(hall, "seat-1/layouts/dispatch/recall", op)
        assert r.status_code == 200 and shows(draco, DISPATCH)
        assert r.json()["layout"] == "dispatch"
        assert all(c["known"] for c in r.json()["consoles"])
