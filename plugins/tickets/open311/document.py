"""One answer, two formats: GeoReport v2's XML, and its JSON by the Spark convention.

The spec's JSON is a mechanical mapping of its XML (wiki.open311.org,
JSON_and_XML_Conversion, "The Spark Convention"): an element holding repeated
children is a JSON array, whatever their number, and every other element a value or
an object. So an answer is built once, as JSON-shaped data, and its XML is derived:
a list becomes its container element with one child per item, named by `ITEMS`
(`services` holds `service`s).

XML comes from the standard library's ElementTree, which escapes text; characters
XML 1.0 cannot carry at all (most C0 controls) are dropped, so a report typed with
one still gives a document every parser reads. Both are UTF-8, declared as such.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.responses import Response

# A list's container element -> the element of each item.
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def to_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def to_xml(root: str, body: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, root, body)
    return _DECLARATION + ET.tostring(element, encoding="unicode").encode("utf-8")


def _fill(element: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, list):
        item = ITEMS[name]
        for v in value:
            _fill(ET.SubElement(element, item), item, v)
    elif isinstance(value, dict):
        for key, v in value.items():
            _fill(ET.SubElement(element, key), key, v)
    elif value is None:
        pass  # an empty element: the spec's "May not be returned" and nulls
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_XML.sub("", str(value))


def answer(fmt: str, root: str, body: Any, status: int = 200) -> Response:
    """`body` as `fmt` (json or xml), `root` naming the XML's root element."""
    content = to_xml(root, body) if fmt == "xml" else to_json(body)
    return Response(content, status_code=status, media_type=FORMATS[fmt])
