"""Reports from machines over MQTT (AI video detection, sensors): `<base>/tickets/report`.

A report is a JSON object with the API's fields and an `idem_key` (the camera's event
id), which is required here: a QoS 1 message may arrive twice, and a detector repeats
what it still sees, so the key is what makes one ticket of them. Each report is
answered on `<base>/tickets/response/report`, as the bridge answers commands
(docs/mqtt.md): `{"status": "ok", "data": {"id", "state", "due_at", "created"},
"idem_key", "transaction"}`, or `{"status": "error", "error": {"code", "message"}}`.
The create path is the API's (`intake.create`), with the actor `mqtt:<source>`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from daemon.devices import describe_validation
from daemon.errors import BadArguments, GridhallError
from plugins.tickets import intake, live

if TYPE_CHECKING:
    from daemon.host import Host

log = logging.getLogger(__name__)

NAME = "tickets"
RESERVED = ("transaction", "source")


def subscribe(mqtt: Any, host: Host) -> None:
    """Called after every connection: keep the broker for alerts, take reports."""
    state = live.get(host)
    state.mqtt = mqtt
    config = state.config.mqtt
    if not config.enabled:
        return
    report_topic = f"{mqtt.base_topic}/{NAME}/report"
    response_topic = f"{mqtt.base_topic}/{NAME}/response/report"

    async def on_report(topic: str, payload: bytes) -> None:
        answer = await handle(host, payload, config.channel)
        mqtt.publish(response_topic, answer, qos=config.qos)

    mqtt.subscribe(report_topic, on_report, qos=config.qos)


async def handle(host: Host, payload: bytes, channel: str) -> dict[str, Any]:
    """One report in, its answer out; never raises (a sender must not wait forever)."""
    body: Any = None
    try:
        try:
            body = json.loads(payload) if payload.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadArguments(f"the payload is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadArguments("the payload must be a JSON object")
        if not body.get("idem_key"):
            raise BadArguments("idem_key: required over MQTT (e.g. the camera's event id)")
        fields = {k: v for k, v in body.items() if k not in RESERVED}
        try:
            report = intake.ReportIn.model_validate(fields)
        except ValidationError as exc:
            raise BadArguments(describe_validation(exc)) from None
        source = str(body.get("source") or "device")[:64]
        done = await intake.create(host, report, actor=f"mqtt:{source}", channel=channel)
        data = {k: done.ticket[k] for k in ("id", "state", "due_at")}
        answer: dict[str, Any] = {"status": "ok", "data": {**data, "created": done.created}}
    except GridhallError as exc:
        answer = {"status": "error", "error": {"code": exc.code, "message": exc.message}}
    except Exception as exc:  # a bug must still answer
        log.exception("tickets: an MQTT report failed")
        answer = {"status": "error", "error": {"code": "internal", "message": type(exc).__name__}}
    if isinstance(body, dict):
        for key in ("idem_key", "transaction"):
            if key in body:
                answer[key] = body[key]
    return answer
