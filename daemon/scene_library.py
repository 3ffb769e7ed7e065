"""The scenes and sequences in force, kept in the store, and the runs going on.

The config seeds the store; the `facility` role edits through the API. On start and on
SIGHUP every config item replaces the stored copy it seeded earlier, and a config item
removed from the file goes; an item edited through the API is kept as edited (the
edit wins over the seed) until it is deleted through the API, which brings back the
config's version, if there is one. So a file change never silently undoes an edit the
staff made, and an edit is never lost on restart.

`run()` is the one entry point for every source (API, MQTT, schedules); it refuses
(409) a scene already running, and a scene whose devices an exclusive run (a
sequence) is driving. `claimed()` is what `Host.act` asks so that, while a sequence
runs, other actions on its devices are refused too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from daemon import audit
from daemon.errors import BadArguments, NotFound, Refused
from daemon.scene_runs import Run
from daemon.scenes import SceneConfig, SequenceConfig, check_sequence, check_steps

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.host import Host

log = logging.getLogger(__name__)
KINDS: dict[str, type[SceneConfig] | type[SequenceConfig]] = {
    "scene": SceneConfig,
    "sequence": SequenceConfig,
}


class SceneLibrary:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.scenes: dict[str, SceneConfig] = {}
        self.sequences: dict[str, SequenceConfig] = {}
        self.origin: dict[tuple[str, str], str] = {}  # (kind, id) -> "config" | "api"
        self.made_by: dict[str, str] = {}  # scene id -> the sequence that makes it
        self.running: dict[str, Run] = {}
        self.last: dict[str, dict[str, Any]] = {}  # scene id -> its last run's outcome
        self._config: Config = host.config

    # -- definitions ------------------------------------------------------------------------
    def _actions_of(self, device_id: str) -> Mapping[str, Any] | None:
        device = self.host.devices.devices.get(device_id)
        return None if device is None else device.driver.actions(device.config.kind)

    def problems(self, kind: str, item: SceneConfig | SequenceConfig) -> list[str]:
        """What is wrong with an item against the devices the daemon runs."""
        found: list[str] = []

        def add(loc: tuple[Any, ...], message: str) -> None:
            found.append(message)

        if isinstance(item, SceneConfig):
            check_steps(item.step, self._actions_of, ("step",), add)
        else:
            check_sequence(item, self._actions_of, ("step",), add)
        return found

    async def seed(self, config: Config) -> None:
        """Bring the store in line with the config, then load what is in force."""
        self._config = config
        seeds: dict[tuple[str, str], SceneConfig | SequenceConfig] = {
            ("scene", s.id): s for s in config.scene
        }
        seeds.update({("sequence", s.id): s for s in config.sequence})
        now = time.time()

        def run(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
            rows = conn.execute("SELECT kind, id, origin FROM scenes").fetchall()
            stored = {(k, i): o for k, i, o in rows}
            for (kind, ident), origin in stored.items():
                if origin == "config" and (kind, ident) not in seeds:
                    conn.execute("DELETE FROM scenes WHERE kind = ? AND id = ?", (kind, ident))
            for (kind, ident), item in seeds.items():
                if stored.get((kind, ident)) == "api":
                    continue
                conn.execute(
                    "INSERT INTO scenes (kind, id, body, origin, updated_at, updated_by) "
                    "VALUES (?, ?, ?, 'config', ?, 'config') ON CONFLICT(kind, id) DO UPDATE "
                    "SET body = excluded.body, origin = 'config', updated_at = excluded.updated_at,"
                    " updated_by = 'config'",
                    (kind, ident, item.model_dump_json(exclude_defaults=True), now),
                )
            return conn.execute("SELECT kind, id, body, origin FROM scenes").fetchall()

        self._load(await self.host.store.write(run))
        for kind, ident in sorted(k for k in seeds if self.origin.get(k) == "api"):
            log.info("%s %s: the API's edit is in force, not the config's", kind, ident)
        if not self.last:
            rows = await self.host.store.fetchall("SELECT scene, outcome FROM scene_runs")
            self.last = {r["scene"]: json.loads(r["outcome"]) for r in rows}

    def _load(self, rows: list[tuple[str, str, str, str]]) -> None:
        scenes: dict[str, SceneConfig] = {}
        sequences: dict[str, SequenceConfig] = {}
        origin: dict[tuple[str, str], str] = {}
        for kind, ident, body, where in rows:
            try:
                item = KINDS[kind].model_validate(json.loads(body))
            except (KeyError, ValueError) as exc:
                log.error("stored %s %s is not valid and is left out: %s", kind, ident, exc)
                continue
            if problems := self.problems(kind, item):
                log.error("%s %s is left out: %s", kind, ident, "; ".join(problems))
                continue
            origin[(kind, ident)] = where
            if isinstance(item, SceneConfig):
                scenes[ident] = item
            else:
                sequences[ident] = item
        made_by: dict[str, str] = {}
        for seq in sequences.values():
            for scene in seq.scenes():
                if scene.id in scenes:
                    log.error("sequence %s: scene %s already exists; not made", seq.id, scene.id)
                    continue
                scenes[scene.id] = scene
                made_by[scene.id] = seq.id
        self.scenes, self.sequences, self.origin, self.made_by = (
            scenes,
            sequences,
            origin,
            made_by,
        )

    async def _reload(self) -> None:
        rows = await self.host.store.fetchall("SELECT kind, id, body, origin FROM scenes")
        self._load([(r["kind"], r["id"], r["body"], r["origin"]) for r in rows])

    def describe(self, scene_id: str) -> dict[str, Any]:
        scene = self.get(scene_id)
        made_by = self.made_by.get(scene_id)
        running = self.running.get(scene_id)
        last = running.to_dict() if running else self.last.get(scene_id)
        return {
            "id": scene.id,
            "name": scene.name or scene.id,
            "on_error": scene.on_error,
            "exclusive": scene.exclusive,
            "sequence": made_by,
            "origin": self.origin.get(("sequence", made_by) if made_by else ("scene", scene_id)),
            "step": [s.model_dump(exclude_defaults=True) for s in scene.step],
            "running": scene_id in self.running,
            "last_run": last,
        }

    def get(self, scene_id: str) -> SceneConfig:
        try:
            return self.scenes[scene_id]
        except KeyError:
            raise NotFound(f"no scene {scene_id!r}") from None

    async def put(self, kind: str, item: SceneConfig | SequenceConfig, who: str) -> None:
        """Create or replace an item through the API; it wins over the config's seed."""
        if problems := self.problems(kind, item):
            raise BadArguments("; ".join(problems))
        taken = set(self.scenes) - set(self.made_by)
        if isinstance(item, SequenceConfig):
            clash = [i for i in item.scene_ids() if i in taken]
            if clash:
                raise BadArguments(
                    f"sequence {item.id} would make scene {clash[0]!r}, which exists"
                )
        elif self.made_by.get(item.id):
            raise BadArguments(f"scene {item.id!r} is made by sequence {self.made_by[item.id]}")
        body = item.model_dump_json(exclude_defaults=True)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO scenes (kind, id, body, origin, updated_at, updated_by) "
                "VALUES (?, ?, ?, 'api', ?, ?) ON CONFLICT(kind, id) DO UPDATE SET "
                "body = excluded.body, origin = 'api', updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (kind, item.id, body, time.time(), who),
            )
            # The edit and its row are one commit: a kill between the two would leave
            # an edit in force that the trail does not show (the crash harness found it).
            audit.insert(conn, who=who, what=f"edit_{kind}", target=f"{kind}:{item.id}")

        await self.host.store.write(run)
        await self._reload()

    async def delete(self, kind: str, ident: str, who: str) -> None:
        """Drop an API edit; the config's version, if any, comes back."""
        where = self.origin.get((kind, ident))
        if where is None:
            raise NotFound(f"no {kind} {ident!r}")
        if where == "config":
            raise Refused(f"{kind} {ident} is defined in the config file; change it there")

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM scenes WHERE kind = ? AND id = ?", (kind, ident))
            audit.insert(conn, who=who, what=f"delete_{kind}", target=f"{kind}:{ident}")

        await self.host.store.write(run)
        await self.seed(self._config)

    # -- runs -------------------------------------------------------------------------------
    async def run(self, scene_id: str, *, who: str, cause: str, role: str | None = None) -> Run:
        """Start a scene; returns at once with the run (`await run.wait()` for its end)."""
        scene = self.get(scene_id)
        reason = None
        if scene_id in self.running:
            reason = f"scene {scene_id} is already running"
        else:
            for other in self.running.values():
                shared = scene.devices() & other.scene.devices()
                if shared and (other.scene.exclusive or scene.exclusive):
                    reason = (
                        f"scene {other.scene.id} is running on {', '.join(sorted(shared))}; "
                        "cancel it first"
                    )
                    break
        await audit.record(
            self.host.store, who=who, what="run_scene", target=f"scene:{scene_id}", args=None,
            cause=cause, result="refused" if reason else "ok", detail=reason,
        )  # fmt: skip
        if reason:
            raise Refused(reason)
        run = Run(self.host, scene, who, cause, role, on_end=self._ended)
        self.running[scene_id] = run
        run.start()
        return run

    async def _ended(self, run: Run) -> None:
        if self.running.get(run.scene.id) is run:
            del self.running[run.scene.id]
        outcome = run.to_dict()
        self.last[run.scene.id] = outcome
        row = (run.scene.id, run.id, run.status, json.dumps(outcome), run.ended_at or time.time())
        try:
            await self.host.store.write(
                lambda conn: conn.execute(
                    "INSERT OR REPLACE INTO scene_runs (scene, run, status, outcome, ended_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    row,
                )
            )
        except Exception:  # the run happened; failing to keep its report must not hide that
            log.exception("scene %s: its outcome could not be stored", run.scene.id)

    async def cancel(self, scene_id: str, *, who: str) -> Run:
        self.get(scene_id)
        run = self.running.get(scene_id)
        if run is None:
            raise Refused(f"scene {scene_id} is not running")
        await audit.record(
            self.host.store, who=who, what="cancel_scene", target=f"scene:{scene_id}",
            args=None, cause="api", result="ok",
        )  # fmt: skip
        await run.cancel()
        return run

    def claimed(self, device_id: str, cause: str) -> str | None:
        """Why an action on `device_id` must wait: an exclusive run drives the device."""
        for run in self.running.values():
            if (
                run.scene.exclusive
                and cause != run.cause_of_actions
                and device_id in run.scene.devices()
            ):
                return f"sequence {run.scene.id} is running on {device_id}"
        return None

    async def stop(self) -> None:
        """At shutdown: cancel every run (actions in flight finish)."""
        await asyncio.gather(*(run.cancel() for run in list(self.running.values())))
