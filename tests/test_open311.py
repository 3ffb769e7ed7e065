"""Open311 GeoReport v2 at /open311/v2/ on a running daemon (in-process, on a hand-moved
clock): discovery, services and their definitions, POST in every location form with
attributes and api_keys, tokens, GET requests with its filters, its 90-day window and
its 1,000-row limit, every error in the spec's format, JSON and XML alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.clock import ManualClock
from plugins.tickets import synthetic
from tests.open311_support import ATTRIBUTED, V2, cli_run, errors_of, new_key, post, xml_of
from tests.support import Running
from tests.ticket_support import (
    G1,
    G2,
    POINT,
    epoch,
    import_district,
    local,
    step,
    tickets_at,
    tickets_config,
)

MONDAY = "2026-01-05T09:00"


async def started(tmp_path: Path, extra: str = "") -> tuple[Path, Any]:
    config = tickets_config(tmp_path, extra, catalog=ATTRIBUTED)
    await import_district(tmp_path, config)
    return config, tickets_at(config, ManualClock(local(MONDAY)))


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[tuple[Running, str]]:
    config, daemon = await started(
        tmp_path, '[tickets.open311]\njurisdiction_id = "dongli.gov.cn"\n'
    )
    key = await new_key(config)
    async with daemon as hall:
        yield hall, key


def filed(key: str, **fields: Any) -> dict[str, Any]:
    """A good POST of litter at G1's point, with `fields` changed."""
    body = {
        "api_key": key,
        "service_code": "city.litter",
        "lat": POINT["lat"],
        "long": POINT["lon"],
    }
    return {k: v for k, v in {**body, **fields}.items() if v is not None}


async def ticket(hall: Running, ticket_id: int) -> dict[str, Any]:
    r = await hall.client.get(f"/api/v1/tickets/{ticket_id}", headers=hall.as_role("dispatcher"))
    assert r.status_code == 200, r.text
    return r.json()


# -- discovery and services ------------------------------------------------------------
async def test_discovery_in_both_formats(keyed: tuple[Running, str]) -> None:
    hall, _ = keyed
    body = (await hall.client.get(f"{V2}/discovery.json")).json()
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = body["endpoints"]
    assert endpoint == {
        "specification": "http://wiki.open311.org/GeoReport_v2",
        "url": "http://gridhall/open311/v2",
        "changeset": body["changeset"],
        "type": "production",
        "formats": ["text/xml", "application/json"],
    }
    assert dt.datetime.fromisoformat(body["changeset"]).tzinfo is not None  # when imported
    assert "open311-key create" in body["key_service"]
    root = xml_of(await hall.client.get(f"{V2}/discovery.xml"))
    assert root.tag == "discovery" and root.findtext("changeset") == body["changeset"]
    formats = root.find("endpoints/endpoint/formats")
    assert formats is not None and [f.text for f in formats] == endpoint["formats"]


async def test_services_and_a_definition_round_trip_their_chinese(
    keyed: tuple[Running, str],
) -> None:
    hall, _ = keyed
    r = await hall.client.get(f"{V2}/services.json", params={"jurisdiction_id": "dongli.gov.cn"})
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    services = {s["service_code"]: s for s in r.json()}
    assert services["city.stall"] == {
        "service_code": "city.stall",
        "service_name": "占道经营",
        "description": "摆摊占道 (street vending)",
        "metadata": True,
        "type": "realtime",
        "keywords": "摆摊, 占道",
        "group": "市容环境",
    }
    assert services["city.litter"]["metadata"] is False
    root = xml_of(await hall.client.get(f"{V2}/services.xml"))
    assert root.tag == "services" and all(s.tag == "service" for s in root)
    stall = next(s for s in root if s.findtext("service_code") == "city.stall")
    assert (stall.findtext("service_name"), stall.findtext("metadata")) == ("占道经营", "true")

    definition = (await hall.client.get(f"{V2}/services/city.stall.json")).json()
    assert definition["service_code"] == "city.stall"
    attrs = definition["attributes"]
    assert [a["code"] for a in attrs] == ["goods", "blocking", "since", "where", "hint", "stalls"]
    assert [a["order"] for a in attrs] == [1, 2, 4, 5, 6, 9]  # by order; the file's by place
    blocking = attrs[1]
    assert blocking == {
        "variable": True,
        "code": "blocking",
        "datatype": "singlevaluelist",
        "required": True,
        "datatype_description": None,
        "order": 2,
        "description": "是否阻断通行",
        "values": [{"key": "yes", "name": "是"}, {"key": "no", "name": "否"}],
    }
    assert attrs[3]["datatype_description"] == "门牌号" and attrs[4]["variable"] is False
    root = xml_of(await hall.client.get(f"{V2}/services/city.stall.xml"))
    assert root.tag == "service_definition"
    first = root.find("attributes/attribute")
    assert first is not None and first.findtext("code") == "goods"
    assert [v.findtext("name") for v in first.findall("values/value")] == ["食品", "水果"]
    for fmt in ("json", "xml"):
        r = await hall.client.get(f"{V2}/services/city.nothing.{fmt}")
        assert r.status_code == 404 and "city.nothing" in errors_of(r)[0]


# -- POST ------------------------------------------------------------------------------
async def test_post_at_a_point_files_a_ticket_through_the_core(keyed: tuple[Running, str]) -> None:
    hall, key = keyed
    r = await post(
        hall,
        filed(
            key,
            description="路口有一堆垃圾\n第二行",
            first_name="三",
            last_name="张",
            phone="13912345678",
            email="zhang@example.cn",
            account_id="wx-42",
            media_url="https://img.example.cn/1.jpg",
            jurisdiction_id="dongli.gov.cn",
        ),
    )
    assert r.status_code == 201, r.text
    (answer,) = r.json()
    assert answer == {
        "service_request_id": answer["service_request_id"],
        "service_notice": "简易事件,2小时内办结",
        "account_id": "wx-42",
    }
    t = await ticket(hall, answer["service_request_id"])
    assert (t["channel"], t["category"], t["grid"], t["member"]) == (
        "open311",
        "city.litter",
        G1,
        "M1",
    )
    assert t["reporter_name"] == "张三"
    assert t["reporter_contact"] == "13912345678 / zhang@example.cn"
    assert t["history"][0]["actor"] == "open311:wechat"
    # The request as anyone sees it: the deadline, and nobody's name or number.
    (shown,) = (await hall.client.get(f"{V2}/requests/{t['id']}.json")).json()
    assert shown["expected_datetime"] == "2026-01-05T11:00:00+08:00" == _w3(t["due_at"])
    assert shown["requested_datetime"] == "2026-01-05T09:00:00+08:00"
    assert (shown["status"], shown["status_notes"]) == ("open", "已受理 received")
    assert shown["agency_responsible"] == "区环卫中心"
    assert shown["description"] == "路口有一堆垃圾\n第二行"
    assert (shown["lat"], shown["long"]) == (POINT["lat"], POINT["lon"])
    text = (await hall.client.get(f"{V2}/requests/{t['id']}.xml")).text
    for personal in ("张", "1391234", "zhang@", "wx-42"):
        assert personal not in str(shown) and personal not in text


def _w3(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, local(MONDAY).tzinfo).isoformat(timespec="seconds")


async def test_every_location_form(keyed: tuple[Running, str]) -> None:
    hall, key = keyed
    by_text = await post(hall, filed(key, lat=None, long=None, address_string="东丽区军粮城 1 号"))
    t = await ticket(hall, by_text.json()[0]["service_request_id"])
    assert (t["address"], t["lon"], t["grid"]) == ("东丽区军粮城 1 号", None, None)
    by_building = await post(hall, filed(key, lat=None, long=None, address_id="B1"))
    t = await ticket(hall, by_building.json()[0]["service_request_id"])
    assert (t["address"], t["lon"], t["lat"], t["grid"]) == ("1号楼", 117.005, 39.005, G1)
    by_grid = await post(hall, filed(key, lat=None, long=None, address_id=G2))
    t = await ticket(hall, by_grid.json()[0]["service_request_id"])
    assert (t["grid"], t["member"]) == (G2, "M2")
    for fmt in ("json", "xml"):
        r = await post(hall, filed(key, lat=None, long=None, address_id="B99"), fmt)
        assert r.status_code == 400 and "B99" in errors_of(r)[0]


async def test_attributes_are_checked_against_the_definition(keyed: tuple[Running, str]) -> None:
    hall, key = keyed
    good = filed(key, service_code="city.stall")
    pairs = [
        *good.items(),
        ("attribute[goods][]", "food"),
        ("attribute[goods][]", "fruit"),
        ("attribute[blocking]", "yes"),
        ("attribute[stalls]", "3"),
        ("attribute[since]", "2026-01-05T08:00:00+08:00"),
        ("attribute[where]", "10号门口"),
    ]
    r = await post(hall, pairs)
    assert r.status_code == 201, r.text
    t = await ticket(hall, r.json()[0]["service_request_id"])
    assert t["attributes"] == {
        "goods": ["food", "fruit"],
        "blocking": "yes",
        "stalls": 3,
        "since": "2026-01-05T08:00:00+08:00",
        "where": "10号门口",
    }
    refused = {
        "attribute[blocking] is required": [],
        "'maybe' is not among yes, no": [("attribute[blocking]", "maybe")],
        "'meat' not among food, fruit": [
            ("attribute[blocking]", "no"),
            ("attribute[goods][]", "meat"),
        ],
        "'many' is not a number": [("attribute[blocking]", "no"), ("attribute[stalls]", "many")],
        "not an ISO 8601": [("attribute[blocking]", "no"), ("attribute[since]", "yesterday")],
        "no line breaks": [("attribute[blocking]", "no"), ("attribute[where]", "a\nb")],
        "one value, not 2": [("attribute[blocking]", "no"), ("attribute[blocking]", "yes")],
        "attribute[color] is not an attribute": [
            ("attribute[blocking]", "no"),
            ("attribute[color]", "red"),
        ],
        "attribute[hint] is not an attribute": [
            ("attribute[blocking]", "no"),
            ("attribute[hint]", "x"),
        ],
    }
    for says, extra in refused.items():
        for fmt in ("json", "xml"):
            r = await post(hall, [*good.items(), *extra], fmt)
            assert r.status_code == 400, (says, r.text)
            assert any(says in d for d in errors_of(r)), (says, errors_of(r))
    # Every problem at once.
    r = await post(hall, [*good.items(), ("attribute[goods][]", "meat")])
    assert len(errors_of(r)) == 2


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_every_post_error_in_the_spec_format(keyed: tuple[Running, str], fmt: str) -> None:
    hall, key = keyed
    cases: list[tuple[dict[str, Any], int, str]] = [
        (filed(key, api_key=None), 403, "api_key is required"),
        (filed("o311_wrong"), 403, "invalid api_key"),
        (filed(key, service_code=None), 400, "service_code is required"),
        (filed(key, service_code="city.nothing"), 404, "'city.nothing' was not found"),
        (filed(key, lat=None, long=None), 400, "a location is required"),
        (filed(key, long=None), 400, "lat and long are sent together"),
        (filed(key, lat=91), 400, "lat"),
        (filed(key, description="长" * 4001), 400, "description"),
        (filed(key, media_url="javascript:alert(1)"), 400, "media_url"),
        (filed(key, jurisdiction_id="other.gov.cn"), 404, "jurisdiction_id 'other.gov.cn'"),
        (filed(key, colour="red"), 400, "colour"),
    ]
    for fields, status, says in cases:
        r = await post(hall, fields, fmt)
        assert r.status_code == status, (fields, r.text)
        assert any(says in d for d in errors_of(r)), (says, errors_of(r))
    r = await hall.client.post(f"{V2}/requests.{fmt}", json=filed(key))
    assert r.status_code == 400 and "x-www-form-urlencoded" in errors_of(r)[0]
    r = await hall.client.post(
        f"{V2}/requests.{fmt}",
        content=f"api_key={key}&api_key={key}&service_code=city.litter&address_string=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and "api_key is given twice" in errors_of(r)
    # Nothing refused was filed.
    r = await hall.client.get("/api/v1/tickets", headers=hall.as_role("viewer"))
    assert r.json()["tickets"] == []


async def test_a_revoked_key_is_refused(tmp_path: Path) -> None:
    config, daemon = await started(tmp_path)
    key = await new_key(config, "partner")
    code, out, _ = await cli_run("tickets", "open311-key", "list", "-c", str(config))
    assert code == 0 and out == "partner\tlive\n"
    async with daemon as hall:
        assert (await post(hall, filed(key))).status_code == 201
        code, _, _ = await cli_run(
            "tickets", "open311-key", "revoke", "--name", "partner", "-c", str(config)
        )
        assert code == 0
        r = await post(hall, filed(key))
        assert r.status_code == 403 and errors_of(r) == ["invalid api_key"]
    code, _, err = await cli_run(
        "tickets", "open311-key", "revoke", "--name", "partner", "-c", str(config)
    )
    assert code == 1 and "no live key" in err
    assert (await new_key(config, "partner")) != key  # the name is free again


async def test_a_retried_post_is_one_ticket(keyed: tuple[Running, str]) -> None:
    hall, key = keyed
    same = filed(key, device_id="phone-1", description="同一个")
    first = await post(hall, same)
    again = await post(hall, same)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    other_device = await post(hall, {**same, "device_id": "phone-2"})
    no_device = [await post(hall, filed(key, description="同一个")) for _ in range(2)]
    ids = {r.json()[0]["service_request_id"] for r in [first, other_device, *no_device]}
    assert len(ids) == 4
    await hall.host.clock.move_to(local("2026-01-06T09:00"))  # the next day: a new report
    assert (await post(hall, same)).status_code == 201


# -- GET requests ------------------------------------------------------------------------
async def test_get_requests_filters(keyed: tuple[Running, str]) -> None:
    hall, key = keyed
    litter = (await post(hall, filed(key))).json()[0]["service_request_id"]
    parking = (await post(hall, filed(key, service_code="city.parking"))).json()[0][
        "service_request_id"
    ]
    for name, role in [("register", "dispatcher"), ("dispatch", "dispatcher"),
                       ("accept", "handler"), ("report", "handler"),
                       ("verify", "dispatcher")]:  # fmt: skip
        assert (await step(hall, litter, name, role)).status_code == 200
    await hall.host.clock.move_to(local("2026-01-05T10:00"))
    fight = (await post(hall, filed(key, service_code="security.fight"))).json()[0][
        "service_request_id"
    ]

    async def ids(**params: str) -> list[int]:
        r = await hall.client.get(f"{V2}/requests.json", params=params)
        assert r.status_code == 200, r.text
        return [x["service_request_id"] for x in r.json()]

    assert await ids() == [fight, parking, litter]  # newest first
    assert await ids(status="closed") == [litter]
    assert await ids(status="open") == [fight, parking]
    assert await ids(status="open,closed") == [fight, parking, litter]
    assert await ids(service_code="city.parking,security.fight") == [fight, parking]
    assert await ids(start_date="2026-01-05T01:30:00Z") == [fight]  # 09:30 in Shanghai
    assert await ids(end_date="2026-01-05T09:30:00+08:00") == [parking, litter]
    span = {"start_date": "2026-01-05T00:00:00Z", "end_date": "2026-01-05T01:59:00Z"}
    assert await ids(**span) == [parking, litter]  # 08:00 to 09:59 in Shanghai
    # service_request_id overrides every other argument.
    assert await ids(service_request_id=f"{litter},{fight}", status="open") == [fight, litter]
    (closed,) = (await hall.client.get(f"{V2}/requests/{litter}.json")).json()
    assert (closed["status"], closed["status_notes"]) == (
        "closed",
        "已核查结案 verified and closed",
    )
    root = xml_of(await hall.client.get(f"{V2}/requests.xml", params={"status": "closed"}))
    assert root.tag == "service_requests"
    (request,) = root
    assert request.tag == "request" and request.findtext("service_request_id") == str(litter)
    assert (
        request.findtext("service_name") == "暴露垃圾" and request.findtext("zipcode") == ""
    )  # an empty element


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_get_request_errors(keyed: tuple[Running, str], fmt: str) -> None:
    hall, _ = keyed
    bad = {
        "start_date to end_date may not span more than 90 days": {
            "start_date": "2026-01-01T00:00:00Z",
            "end_date": "2026-04-02T00:00:00Z",
        },
        "end_date is before start_date": {
            "start_date": "2026-01-02T00:00:00Z",
            "end_date": "2026-01-01T00:00:00Z",
        },
        "not a w3 datetime with its zone": {"start_date": "2026-01-01"},
        "status: pending is not open or closed": {"status": "open,pending"},
        "service_request_id: x is not a request id": {"service_request_id": "1,x"},
    }
    for says, params in bad.items():
        r = await hall.client.get(f"{V2}/requests.{fmt}", params=params)
        assert r.status_code == 400, (params, r.text)
        assert any(says in d for d in errors_of(r)), (says, errors_of(r))
    for url, says in [
        (f"{V2}/requests/999.{fmt}", "service_request_id '999' was not found"),
        (f"{V2}/tokens/nope.{fmt}", "token 'nope' was not found"),
        (f"{V2}/requests.{fmt}?jurisdiction_id=other.gov.cn", "jurisdiction_id 'other.gov.cn'"),
        (f"{V2}/nothing.{fmt}", f"/nothing.{fmt} is not a GeoReport v2 resource"),
    ]:
        r = await hall.client.get(url)
        assert r.status_code == 404 and says in errors_of(r)[0], (url, r.text)
    r = await hall.client.get(f"{V2}/services.html")
    assert r.status_code == 404 and errors_of(r) == [
        "format 'html' is not served: use .json or .xml"
    ]


async def test_the_90_day_window_and_the_1000_row_limit(keyed: tuple[Running, str]) -> None:
    hall, key = keyed
    old = (await post(hall, filed(key))).json()[0]["service_request_id"]
    base = epoch("2026-04-06T09:00")
    fates = [
        synthetic.Fate(id=1000 + i, created_at=base + i, due_at=base + 7200, category="city.litter")
        for i in range(1005)
    ]
    await hall.host.store.write(lambda conn: synthetic.insert(conn, fates))
    await hall.host.clock.move_to(local("2026-04-07T09:00"))  # 92 days after the first
    r = await hall.client.get(f"{V2}/requests.json")
    found = [x["service_request_id"] for x in r.json()]
    assert len(found) == 1000 and old not in found  # the last 90 days, the newest 1,000
    assert found[0] == 2004 and found[-1] == 1005
    r = await hall.client.get(f"{V2}/requests.json", params={"start_date": "2026-01-05T00:00:00Z"})
    assert [x["service_request_id"] for x in r.json()] == [old]  # 90 days from the start
    r = await hall.client.get(f"{V2}/requests.json", params={"service_request_id": str(old)})
    assert [x["service_request_id"] for x in r.json()] == [old]


# -- tokens and closed reads -------------------------------------------------------------
async def test_tokens_until_the_desk_registers(tmp_path: Path) -> None:
    config, daemon = await started(tmp_path, '[tickets.open311]\nanswer = "token"\n')
    key = await new_key(config)
    async with daemon as hall:
        services = (await hall.client.get(f"{V2}/services.json")).json()
        assert {s["type"] for s in services} == {"batch"}
        r = await post(hall, filed(key, device_id="phone-1"))
        assert r.status_code == 201
        (answer,) = r.json()
        assert "service_request_id" not in answer
        token = answer["token"]
        assert (await post(hall, filed(key, device_id="phone-1"))).json()[0]["token"] == token
        r = await hall.client.get(f"{V2}/tokens/{token}.json")
        assert r.json() == [{"service_request_id": None, "token": token}]
        assert (await hall.client.get(f"{V2}/requests.json")).json() == []  # not published
        listed = await hall.client.get("/api/v1/tickets", headers=hall.as_role("dispatcher"))
        (t,) = listed.json()["tickets"]
        assert t["token"] == token
        assert (await step(hall, t["id"], "register")).status_code == 200
        r = await hall.client.get(f"{V2}/tokens/{token}.xml")
        request = xml_of(r).find("request")
        assert request is not None
        assert (request.findtext("service_request_id"), request.findtext("token")) == (
            str(t["id"]),
            token,
        )
        assert [
            x["service_request_id"] for x in (await hall.client.get(f"{V2}/requests.json")).json()
        ] == [t["id"]]
        viewer = await hall.client.get(f"/api/v1/tickets/{t['id']}", headers=hall.as_role("viewer"))
        assert "token" not in viewer.json()  # the reporter's to look it up with


async def test_reads_with_a_key_when_not_public(tmp_path: Path) -> None:
    config, daemon = await started(tmp_path, "[tickets.open311]\npublic_read = false\n")
    key = await new_key(config)
    async with daemon as hall:
        for url in (
            "services.json",
            "services/city.litter.xml",
            "requests.json",
            "requests/1.json",
            "tokens/x.json",
        ):
            r = await hall.client.get(f"{V2}/{url}")
            assert r.status_code == 403 and errors_of(r) == ["api_key is required"], url
            r = await hall.client.get(f"{V2}/{url}", params={"api_key": "o311_wrong"})
            assert r.status_code == 403, url
        assert (
            await hall.client.get(f"{V2}/services.json", params={"api_key": key})
        ).status_code == 200
        assert (await hall.client.get(f"{V2}/discovery.json")).status_code == 200  # always public
