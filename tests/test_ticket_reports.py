"""Reports through the API: the same figures as JSON, as CSV Excel opens in Chinese,
and as a printable page that fetches nothing and escapes what it shows."""

from __future__ import annotations

import csv
import io
import re

import pytest

from plugins.tickets import synthetic
from tests.measures_support import add, get
from tests.support import Running
from tests.test_ticket_measures import domain_month


@pytest.fixture
async def hall(ticket_hall: Running) -> Running:
    await add(ticket_hall, domain_month())
    return ticket_hall


async def test_json(hall: Running) -> None:
    body = await get(hall, "/api/v1/tickets/reports?month=2026-03")
    assert body["title"] == "接诉即办月报 2026-03"
    assert body["district"]["rates"]["on_time"]["percent"] == 75.82
    market = next(u for u in body["department"] if u["key"] == "market")
    assert market["class"] in ("advanced", "improving", "rectify", "govern")
    assert market["label"] and market["score"] is not None
    assert body["hotspots"]["window"]["last"] == "2026-03-31"
    daily = await get(hall, "/api/v1/tickets/reports/daily?date=2026-03-31")
    assert daily["kind"] == "day" and daily["title"] == "接诉即办日报 2026-03-31"
    weekly = await get(hall, "/api/v1/tickets/reports/weekly?week=2026-W11")
    assert weekly["period"]["first"] == "2026-03-09" and weekly["title"].startswith("接诉即办周报")
    # Without a date: yesterday, and the last whole week.
    assert (await get(hall, "/api/v1/tickets/reports/daily"))["kind"] == "day"
    last_week = await get(hall, "/api/v1/tickets/reports/weekly")
    assert last_week["kind"] == "week" and last_week["period"]["last"] < daily["generated_at"]


async def test_csv_opens_in_excel_with_its_chinese(hall: Running) -> None:
    r = await hall.client.get(
        "/api/v1/tickets/reports?month=2026-03&format=csv", headers=hall.as_role("viewer")
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="tickets-month-2026-03.csv"' in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # the UTF-8 byte order mark
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    body = await get(hall, "/api/v1/tickets/reports?month=2026-03")
    units = 1 + sum(len(body[d]) for d in ("department", "street", "member"))
    assert len(rows) == units
    district = rows[0]
    assert district["维度 dimension"] == "district"
    assert (district["应结 due"], district["结案 closed"], district["按时结案 on_time"]) == (
        "972",
        "911",
        "737",
    )
    assert district["结案率% closure_rate"] == "93.72"
    assert district["按时结案率% on_time_rate"] == "75.82"
    sanitation = next(row for row in rows if row["编码 key"] == "sanitation")
    assert sanitation["名称 name"] == "环卫所"
    assert sanitation["类别 class"] in ("advanced", "improving", "rectify", "govern")
    assert r.content.count(b"\r\n") == units + 1


async def test_a_printable_page_that_fetches_nothing(hall: Running) -> None:
    def rename(conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            "UPDATE ticket_departments SET name = '<script>alert(1)</script>环卫' "
            "WHERE id = 'sanitation'"
        )

    await hall.host.store.write(rename)
    r = await hall.client.get(
        "/api/v1/tickets/reports/weekly?week=2026-W11&format=html", headers=hall.as_role("viewer")
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<title>接诉即办周报 2026-W11</title>" in page
    assert "@media print" in page and "@page" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;环卫" in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)  # nothing fetched
    assert "按时结案率" in page and "on_time" in page and "问题框" in page


async def test_bad_formats_and_periods_are_422(hall: Running) -> None:
    for url in (
        "/api/v1/tickets/reports?month=2026-03&format=pdf",
        "/api/v1/tickets/reports",
        "/api/v1/tickets/reports/daily?date=yesterday",
        "/api/v1/tickets/reports/weekly?week=2026-W60",
    ):
        r = await hall.client.get(url, headers=hall.as_role("viewer"))
        assert r.status_code == 422, url
        assert r.json()["error"]["message"]


def test_the_fixture_rows_follow_the_loop() -> None:
    """The fixtures are what the workflow would write: every step after the one before."""
    steps = synthetic.COLUMNS.index("created_at"), synthetic.COLUMNS.index("evaluated_at")
    for fate in domain_month():
        row = synthetic.row(fate)
        times = [t for t in row[steps[0] : steps[1] + 1] if t is not None]
        assert times == sorted(times), fate
