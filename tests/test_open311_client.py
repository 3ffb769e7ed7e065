"""An independent client reads the district's Open311 endpoint: `georeport` (PyPI, on
`requests` and `xmltodict`) against `gridhall run` as a process, in JSON and in XML.
Reports are filed as an app would (a form-encoded POST with an api_key made by the
CLI); the client reads the services, a service definition, the requests and one
request back, Chinese and all."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from georeport import GeoReport

from tests.open311_support import ATTRIBUTED, new_key
from tests.support import Process, spawn_daemon, wait_http
from tests.ticket_support import POINT, import_district, tickets_config


@pytest.fixture
def endpoint(tmp_path: Path, processes: list[Process]) -> tuple[str, str]:
    config = tickets_config(
        tmp_path, '[tickets.open311]\njurisdiction_id = "dongli.gov.cn"\n', catalog=ATTRIBUTED
    )
    asyncio.run(import_district(tmp_path, config))
    key = asyncio.run(new_key(config))
    found = re.search(r'listen = "127\.0\.0\.1:(\d+)"', config.read_text())
    assert found is not None
    port = int(found.group(1))
    proc = spawn_daemon(config, port)
    processes.append(proc)
    wait_http(f"{proc.url}/api/v1/health")
    return f"{proc.url}/open311/v2", key


def file(root: str, key: str, **fields: Any) -> int:
    body = {"api_key": key, "jurisdiction_id": "dongli.gov.cn", **fields}
    r = httpx.post(f"{root}/requests.json", data=body, timeout=10)
    assert r.status_code == 201, r.text
    return int(r.json()[0]["service_request_id"])


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_reads_services_and_requests(endpoint: tuple[str, str], fmt: str) -> None:
    root, key = endpoint
    litter = file(
        root,
        key,
        service_code="city.litter",
        lat=POINT["lat"],
        long=POINT["lon"],
        description="路口垃圾 & <堆积>",
    )
    stall = file(
        root,
        key,
        service_code="city.stall",
        address_string="军粮城大街 8 号",
        **{"attribute[blocking]": "yes"},
    )
    client = GeoReport(root, jurisdiction="dongli.gov.cn", output_format=fmt)

    services = {s["service_code"]: s for s in client.get_service_list()}
    assert services["city.stall"]["service_name"] == "占道经营"
    assert services["city.litter"]["group"] == "市容环境"
    assert str(services["city.stall"]["metadata"]).lower() == "true"

    definition = client.get_service_definition("city.stall")
    attributes = definition["attributes"]
    if fmt == "xml":  # xmltodict keeps the container element
        attributes = attributes["attribute"]
    blocking = next(a for a in attributes if a["code"] == "blocking")
    values = blocking["values"] if fmt == "json" else blocking["values"]["value"]
    assert [v["name"] for v in values] == ["是", "否"]

    requests = client.get_service_requests(service_code="city.litter,city.stall")
    by_id = {int(r["service_request_id"]): r for r in requests}
    assert set(by_id) == {litter, stall}
    assert by_id[litter]["description"] == "路口垃圾 & <堆积>"
    assert by_id[stall]["address"] == "军粮城大街 8 号"
    assert by_id[litter]["status"] == "open"
    assert by_id[litter]["expected_datetime"].endswith("+08:00")

    one = client.get_service_request(str(stall))
    if fmt == "xml":
        assert isinstance(one, dict)  # one <request>: xmltodict gives the element itself
    assert one["service_name"] == "占道经营" and one["agency_responsible"] == "区城管委"
