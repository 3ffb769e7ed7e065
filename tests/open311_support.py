"""A categories file with Open311 attributes and whistle types, an api_key made by the
CLI, and helpers to speak GeoReport v2 to a daemon (form-encoded POSTs, both formats).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from daemon import cli
from tests.support import Running
from tests.ticket_support import CATALOG

V2 = "/open311/v2"

ATTRIBUTED = (
    CATALOG
    + """
[[category]]
code = "city.stall"
name = "占道经营"
group = "city"
tier = "coordination"
department = "urban"
deadline = "24h"  # clock hours: the process tests run on today's date, whatever its year
description = "摆摊占道 (street vending)"
keywords = ["摆摊", "占道"]
attributes = [
  { code = "goods", datatype = "multivaluelist", description = "卖什么", values = [
    { key = "food", name = "食品" }, { key = "fruit", name = "水果" } ] },
  { code = "blocking", datatype = "singlevaluelist", required = true, values = [
    { key = "yes", name = "是" }, { key = "no", name = "否" } ], description = "是否阻断通行" },
  { code = "stalls", datatype = "number", description = "摊位数", order = 9 },
  { code = "since", datatype = "datetime", description = "从何时起" },
  { code = "where", datatype = "string", description = "位置", datatype_description = "门牌号" },
  { code = "hint", datatype = "text", variable = false, description = "请勿拍摄人脸" },
]
"""
)

WHISTLES = """
[[whistle]]
level = "community"
code = "sanitation"
name = "卫生哨"
deadline = "2h"
departments = ["sanitation"]
escalate_to = "problem"
[[whistle]]
level = "community"
code = "security"
name = "治安哨"
deadline = "1h"
departments = ["police"]
escalate_to = "problem"
[[whistle]]
level = "street"
code = "problem"
name = "问题哨"
deadline = "1wd"
departments = ["urban"]
escalate_to = "coordination"
[[whistle]]
level = "street"
code = "fallback"
name = "兜底哨"
deadline = "1wd"
departments = ["law"]
escalate_to = "coordination"
kinds = [{ code = "ownerless", name = "无主管部门事项" }]
[[whistle]]
level = "district"
code = "coordination"
name = "协调哨"
deadline = "2h"
departments = ["law"]
"""


async def cli_run(*argv: str) -> tuple[int, str, str]:
    """`gridhall ...` in a thread, as an operator types it: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return cli.main(list(argv))

    code = await asyncio.to_thread(run)
    return code, out.getvalue(), err.getvalue()


async def new_key(config: Path, name: str = "wechat") -> str:
    code, out, err = await cli_run(
        "tickets", "open311-key", "create", "--name", name, "-c", str(config)
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("o311_")
    return key


async def post(hall: Running, fields: Any, fmt: str = "json") -> httpx.Response:
    """A form-encoded POST, as the spec has it (`fields`: a dict or a list of pairs)."""
    pairs = list(fields.items()) if isinstance(fields, dict) else fields
    return await hall.client.post(
        f"{V2}/requests.{fmt}",
        content=urlencode(pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )


def xml_of(r: httpx.Response) -> ET.Element:
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(r.content)


def errors_of(r: httpx.Response) -> list[str]:
    """The descriptions of a spec error answer (JSON or XML), checked for its shape."""
    if r.headers["content-type"].startswith("text/xml"):
        root = xml_of(r)
        assert root.tag == "errors"
        found = [(e.findtext("code"), e.findtext("description")) for e in root]
        assert all(code == str(r.status_code) for code, _ in found)
        return [d or "" for _, d in found]
    body = r.json()
    assert isinstance(body, list) and body, body
    assert all(set(e) == {"code", "description"} and e["code"] == r.status_code for e in body)
    return [e["description"] for e in body]
