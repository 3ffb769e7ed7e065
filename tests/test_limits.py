"""Limits on what the API takes in: every request body of the whole OpenAPI (the
plugins' included) and every device action's arguments bounded, oversized bodies
refused with 413 before they are read, over-long strings and lists with 422."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import load
from daemon.pluginhost import PluginHost
from daemon.runtime import Daemon
from tests.support import (
    Process,
    Running,
    demo_copy,
    relay_config,
    spawn_daemon,
    wait_http,
)

# Schemas the walk accepts unbounded, each with why. Keys: "<METHOD> <path> <where>".
EXEMPT = {
    # The body is the action's arguments, validated by the action's own model (unknown
    # fields refused); those models are walked below, driver by driver.
    "POST /api/v1/devices/{device_id}/actions/{action} body": "the action's model",
}
# An action's arguments inside a scene, a sequence or a schedule are checked against
# the device's action model when they are saved, as the API's own are.
ANY_VALUE_OK = {"args"}


def demo_app(tmp_path: Path) -> Any:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    config, _, _ = demo_copy(tmp_path)
    return Daemon(load(config, plugins), plugins)


def unbounded(schema: dict[str, Any], components: dict[str, Any], at: str) -> Iterator[str]:
    """Where `schema` lets a string, a list or a map grow without a bound."""
    seen: set[str] = set()

    def walk(s: dict[str, Any], where: str) -> Iterator[str]:
        if "$ref" in s:
            name = s["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                yield from walk(components[name], where)
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in s.get(key, []):
                yield from walk(sub, where)
        kind = s.get("type")
        if kind == "string" and not ({"maxLength", "enum", "const"} & set(s)):
            if s.get("format") not in ("date", "date-time"):
                yield f"{where}: a string without maxLength"
        if kind == "array":
            if "maxItems" not in s:
                yield f"{where}: a list without maxItems"
            yield from walk(s.get("items", {}), f"{where}[]")
        for name, sub in s.get("properties", {}).items():
            if not sub and name in ANY_VALUE_OK:
                continue
            yield from walk(sub, f"{where}.{name}")
        extra = s.get("additionalProperties")
        if kind == "object" and extra not in (False, None) or isinstance(extra, dict):
            if "maxProperties" not in s:
                yield f"{where}: a map without maxProperties"
            if isinstance(extra, dict) and extra:
                yield from walk(extra, f"{where}.*")
            elif where.rsplit(".", 1)[-1] not in ANY_VALUE_OK:
                yield f"{where}.*: values of any kind"
        if not s and not where.endswith(tuple(ANY_VALUE_OK)):
            yield f"{where}: a value of any kind"

    yield from walk(schema, at)


def test_every_request_body_is_bounded(tmp_path: Path) -> None:
    spec = demo_app(tmp_path).app.openapi()
    components = spec["components"]["schemas"]
    problems, bodies = [], 0
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            for content in op.get("requestBody", {}).get("content", {}).values():
                bodies += 1
                key = f"{method.upper()} {path} body"
                if key in EXEMPT:
                    continue
                problems += [
                    f"{method.upper()} {path}: {p}"
                    for p in unbounded(content.get("schema", {}), components, "body")
                ]
    assert bodies >= 25  # the walk saw the plugins' routes too
    assert not problems, "\n".join(problems)


def test_every_action_model_is_bounded() -> None:
    plugins = PluginHost()
    plugins.load(entry_points=False)
    problems, models = [], 0
    for name, driver in plugins.drivers().items():
        for kind in driver.kinds:
            for action, model in driver.actions(kind).items():
                models += 1
                schema = model.model_json_schema(ref_template="#/$defs/{model}")
                where = f"{name} {action}"
                problems += list(unbounded(schema, schema.get("$defs", {}), where))
    assert models >= 30
    assert not problems, "\n".join(problems)


# -- the body limit ------------------------------------------------------------------
LIMIT = 256 * 1024  # the default [api] max_body_kb


def too_large(r: Any) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large"
    assert str(LIMIT) in r.json()["error"]["message"]


async def test_a_body_over_the_limit_is_413_before_it_is_read(hall: Running) -> None:
    op = hall.as_role("operator")
    big = b'{"channel": 1, "pad": "' + b"x" * LIMIT + b'"}'
    too_large(await hall.client.post("/api/v1/devices/relay/actions/on", content=big, headers=op))
    scene = b'{"id": "s", "step": [], "name": "' + b"x" * LIMIT + b'"}'
    too_large(
        await hall.client.put("/api/v1/scenes/s", content=scene, headers=hall.as_role("admin"))
    )
    assert hall.host.devices.get("relay").state["channels"]["1"] is False  # nothing was done


async def test_a_stream_without_a_length_is_cut_at_the_limit(hall: Running) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"channel": 1, "pad": "'
        while pulled < 10_000:  # 640 MB, if it were all read
            pulled += 1
            yield b"x" * 65536

    op = hall.as_role("operator")
    r = await hall.client.post("/api/v1/devices/relay/actions/on", content=endless(), headers=op)
    too_large(r)
    assert pulled <= LIMIT // 65536 + 2


async def test_over_long_fields_are_422_naming_them(hall: Running) -> None:
    admin = hall.as_role("admin")
    step = {"device": "relay", "action": "on", "args": {"channel": 1}}
    r = await hall.client.put(
        "/api/v1/scenes/s", json={"id": "s", "name": "x" * 201, "step": [step]}, headers=admin
    )
    assert r.status_code == 422 and "name" in r.json()["error"]["message"]
    r = await hall.client.put(
        "/api/v1/scenes/s", json={"id": "s", "step": [step] * 257}, headers=admin
    )
    assert r.status_code == 422 and "step" in r.json()["error"]["message"]
    many = {f"a{i}": i for i in range(17)}
    r = await hall.client.put(
        "/api/v1/scenes/s", json={"id": "s", "step": [{**step, "args": many}]}, headers=admin
    )
    assert r.status_code == 422 and "args" in r.json()["error"]["message"]


@pytest.fixture
def daemon_process(tmp_path: Path, modbus_thread: Any) -> Iterator[Process]:
    config = relay_config(tmp_path, modbus_thread.port)
    port = int(config.read_text().split('listen = "127.0.0.1:')[1].split('"')[0])
    proc = spawn_daemon(config, port)
    try:
        wait_http(f"{proc.url}/api/v1/health")
        yield proc
    finally:
        proc.proc.terminate()
        proc.proc.wait(timeout=10)


def raw(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send `request` as is on a real socket; what comes back until the peer closes or
    answers a whole head."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_over_a_real_socket(daemon_process: Process) -> None:
    """A client that says it will send 100 MB gets its 413 before it sends a byte of
    them (the socket's timeout would end the test otherwise); a request line longer
    than the server takes is refused by the server."""
    head = raw(
        daemon_process.port,
        b"POST /api/v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    long_line = b"GET /api/v1/devices?q=" + b"x" * 70_000 + b" HTTP/1.1\r\n\r\n"
    head = raw(daemon_process.port, long_line)
    assert head.startswith(b"HTTP/1.1 4") or head == b"", head[:200]
