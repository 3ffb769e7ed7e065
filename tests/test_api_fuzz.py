"""schemathesis against the whole OpenAPI of a real daemon (issue 9): no 5xx, every
answer in a status, content type, schema and headers its operation declares.

The daemon is `gridhall run` as a process on the demo config (its emulators, so every
kind of device answers over real sockets) with the built-in plugins, a district
imported, a few tickets, time-bank accounts and an Open311 api_key, reached over real
HTTP on a free port: the whole app, middleware included (the body limit, the panel's
site, Open311's error format). The fuzz runs as an admin, so it gets past auth and
into the routes; that every route enforces auth is tests/test_auth.py's
(`test_every_route_enforces_auth` walks this same OpenAPI without a token and with a
role too small).

Bounds, so `make test` stays reproducible and short: MAX_EXAMPLES per operation,
derandomized (the same cases every run), no deadline, no example database; its time
on the 2-core CI machine is in docs/hardening.md ("API fuzzing").
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from daemon import cli
from tests.grid_support import COMMUNITY, write_csv
from tests.support import create_token_cli, demo_copy, spawn_daemon, wait_http
from tests.test_grid_import import good_district

# GRIDHALL_API_FUZZ_EXAMPLES=100 runs more, by hand (docs/hardening.md, "API fuzzing").
MAX_EXAMPLES = int(os.environ.get("GRIDHALL_API_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Operations the fuzz leaves out, each with its reason. Nothing is left out because it
# failed: a failure is fixed in the code.
EXCLUDED = {
    # Server-Sent Events: the answer never ends, so there is no response to check
    # (its auth: test_auth.py; its stream: test_stream.py).
    "GET /api/v1/events": "an endless stream",
}

# Device actions the demo's devices run at once (the projector's warm-up, the power
# sequences' delays left out), as (device, action, arguments): the fuzz sends one of
# these in place of a generated case now and then, so actions run on the emulators
# and not only as far as their validation.
ACTIONS = [
    ("power-2", "on", {"channel": 1}),
    ("power-2", "off", {}),
    ("fan-1", "set_speed", {"percent": 40}),
    ("fan-1", "off", {}),
    ("matrix-1", "route", {"input": 2, "output": 1}),
    ("kvm-1", "route", {"input": 1, "output": 1, "mode": "video"}),
    ("screen-2", "mute", {"on": True}),
    ("screen-2", "set_input", {"input": "hdmi1"}),
    ("curtain-1", "stop", {}),
    ("power-1", "off", {"channel": 3}),  # refused while the projector is lit: a 409
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config, port, _ = demo_copy(tmp)
    district = good_district(tmp / "district")
    members = [
        f"M{i},网格员{i},,1380000000{i},{COMMUNITY}0{i},member,,2024-01-01" for i in range(1, 5)
    ]
    write_csv(
        district / "members.csv",
        "person,name,id_number,phone,grid,role,helper_kind,since",
        *members,
    )
    assert cli.main(["grid", "import", "-c", str(config), str(district)]) == 0
    admin = create_token_cli(config, "admin", "fuzz-admin")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["tickets", "open311-key", "create", "--name", "fuzz", "-c", str(config)])
    assert code == 0
    proc = spawn_daemon(config, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v1/health", timeout=30)
        known = seed(url, {"Authorization": f"Bearer {admin}"})
        known["api_key"] = [out.getvalue().strip()]
        yield {"url": url, "admin": admin, "known": known, "proc": proc}
    finally:
        if proc.proc.poll() is None:
            proc.proc.send_signal(signal.SIGTERM)
            try:
                proc.proc.wait(timeout=20)
            except Exception:
                proc.proc.kill()
                proc.proc.wait(timeout=10)
        # Shown when the test fails: a 500's traceback is in the daemon's log.
        print(f"--- the daemon's log, exit {proc.proc.returncode}:\n{proc.output()[-20000:]}")


def seed(url: str, auth: dict[str, str]) -> dict[str, list[Any]]:
    """Things for the fuzz to find: tickets, accounts with an entry, a whistle; and the
    ids the hall has, to put in path parameters beside the random ones."""
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        devices = c.get("/api/v1/devices").json()
        point = {"lon": 117.005, "lat": 39.005}  # in grid 01 of the imported district
        tickets = []
        for i in range(3):
            r = c.post(
                "/api/v1/tickets",
                json={"category": "security.fight", "description": f"fuzz {i}", **point},
            )
            assert r.status_code == 201, r.text
            tickets.append(r.json()["id"])
        for account in ("resident:r-1", "member:m-1"):
            r = c.post("/api/v1/timebank/accounts", json={"id": account})
            assert r.status_code == 201, r.text
        r = c.post(
            "/api/v1/timebank/awards",
            json={"rule": "patrol", "account": "member:m-1"},
            headers={"Idempotency-Key": "fuzz-award-1"},
        )
        assert r.status_code == 201, r.text
        entries = [r.json()["id"]]
        scenes = [s["id"] for s in c.get("/api/v1/scenes").json()]
        return {
            "device_id": [d["id"] for d in devices],
            "action": sorted({a for d in devices for a in d["controls"].get("actions", [])}),
            "ticket_id": tickets,
            "service_request_id": [str(t) for t in tickets],
            # The hall's power sequences wait for a projector to cool: minutes of a
            # fuzz run for one case. The quick scenes run for real.
            "scene_id": [s for s in scenes if not s.startswith("hall")],
            "sequence_id": ["hall"],
            "schedule_id": ["fan-morning", "fan-evening"],
            "seat_id": ["dispatch-1", "dispatch-2"],
            "layout_id": ["dispatch", "patrol", "profile"],
            "code": [COMMUNITY + "01", COMMUNITY],
            "account": ["resident:r-1", "organisation:service-station"],
            "entry_id": entries,
            "service_code": ["security.fight", "security.patrol"],
            "fmt": ["json", "xml"],
        }


def fuzz_schema(daemon: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_url(f"{daemon['url']}/openapi.json")
    known: dict[str, list[Any]] = daemon["known"]

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        # Half the time a parameter names something that exists, so the fuzz reaches
        # past the 404s into the routes; the other half it is whatever was generated.
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([value, *known[name]]) if known.get(name) else st.just(value)
                for name, value in path_parameters.items()
            }
        )

    @schema.hook
    def flatmap_case(context: Any, case: Case) -> Any:
        if not case.path.endswith("/actions/{action}"):
            return st.just(case)
        return st.one_of(st.just(case), st.sampled_from(ACTIONS).map(lambda a: acting(case, *a)))

    return schema


def acting(case: Case, device: str, action: str, args: dict[str, Any]) -> Case:
    case.path_parameters = {"device_id": device, "action": action}
    case.body = args
    return case


def fuzzer(operation: Any, auth: dict[str, str], seen: set[int]) -> Any:
    """The hypothesis test of one operation: its valid and invalid cases, each answer
    checked; the statuses its valid cases got go into `seen`, its invalid cases' as
    negative numbers."""
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # a failure reported as found, unshrunk
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Case) -> None:
        status = case.call_and_validate(headers=auth, checks=CHECKS, timeout=60).status_code
        # An invalid case may be one without its Authorization header (schemathesis
        # drops a header it mutated away): its 401 is checked like any answer. A valid
        # case always carries the admin's token.
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        seen.add(-status if negative else status)

    return fuzz


@pytest.mark.timeout(600)  # about 45 s here; the suite's 120 s is too tight on a busy CI
def test_api_fuzz(daemon: dict[str, Any]) -> None:
    """Every operation but EXCLUDED, MAX_EXAMPLES cases each, valid and invalid
    (schemathesis' positive and negative modes); every failure of every operation is
    collected, then reported together."""
    schema = fuzz_schema(daemon)
    auth = {"Authorization": f"Bearer {daemon['admin']}"}
    failures: dict[str, str] = {}
    answered: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in EXCLUDED:
            continue
        answered[label] = seen = set()
        fuzz = fuzzer(operation, auth, seen)
        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's, not the first's
            failures[label] = f"{type(exc).__name__}: {exc}"[:3000]
        assert daemon["proc"].proc.poll() is None, f"the daemon died during {label}"
    assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())
    # The plugins' routes and Open311 are there too; the admin token went with every
    # valid case (none answered 401); and the cases got into the routes, not only as
    # far as their validation.
    assert len(answered) > 90
    assert not [label for label, seen in answered.items() if 401 in seen]
    succeeded = [label for label, seen in answered.items() if any(0 < s < 300 for s in seen)]
    # 68 of 98 here: the rest are writes whose random bodies rarely make a valid one (a
    # ticket's category, a schedule's cron) and ids nothing was made for (a whistle).
    shallow = {label: sorted(seen) for label, seen in answered.items() if label not in succeeded}
    assert len(succeeded) > 0.6 * len(answered), shallow
