"""Reading the import files with their line numbers, and checking personal fields.

A refused import must say where each bad row is, so readers yield (line, record):
csv's `line_num` for CSV, and for GeoJSON the line each feature starts on, found by
decoding the `features` array one element at a time.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# GB 11643-1999: 17 digits, then a check character over weighted digits mod 11.
_ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
_CREDIT_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")  # unified social credit code


class FileError(Exception):
    """The file cannot be read at all; `line` is where reading stopped, if known."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message, self.line = message, line


def id_number_check(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> str | None:
    if not _ID_RE.match(value):
        return f"ID number {mask_id_number(value)!r} is not 17 digits and a check character"
    if id_number_check(value[:17]) != value[17]:
        return f"ID number {mask_id_number(value)!r} fails its check character"
    return None


def phone_problem(value: str) -> str | None:
    if value and not _PHONE_RE.match(value):
        return f"phone {mask_phone(value)!r} is not a mobile or landline number"
    return None


def credit_code_problem(value: str) -> str | None:
    if value and not _CREDIT_RE.match(value):
        return f"credit code {value!r} is not an 18-character unified social credit code"
    return None


def mask_id_number(value: str) -> str:
    """Keep the first 4 and last 4: enough to tell two people apart on a call."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str) -> str:
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def read_csv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) for each row; FileError if the header lacks a required column."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise FileError("the file is empty; it needs a header row", 1) from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise FileError(f"header lacks column(s) {', '.join(missing)}", 1)
        start = reader.line_num
        for values in reader:
            line, start = start + 1, reader.line_num
            if not values:
                continue
            if len(values) != len(header):
                yield (
                    line,
                    {"__error__": f"{len(values)} fields where the header has {len(header)}"},
                )
                continue
            yield line, {k: v.strip() for k, v in zip(header, values, strict=True)}


def count_rows(path: Path) -> int:
    with path.open("rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def read_features(path: Path) -> list[tuple[int, Any]]:
    """(line, feature) for each element of a FeatureCollection's `features`."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(f"not JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise FileError("not a GeoJSON FeatureCollection", 1)
    if not isinstance(doc.get("features"), list):
        raise FileError("a FeatureCollection needs a `features` array", 1)
    decoder = json.JSONDecoder()
    pos = _array_start(text)
    out: list[tuple[int, Any]] = []
    lines_before, counted_to = 0, 0
    while pos is not None:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            break
        lines_before += text.count("\n", counted_to, pos)
        counted_to = pos
        feature, pos = decoder.raw_decode(text, pos)
        out.append((lines_before + 1, feature))
    return out


def _array_start(text: str) -> int | None:
    """The index just inside the top-level `features` array."""
    decoder = json.JSONDecoder()
    pos = text.index("{") + 1
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "}":
            return None
        key, pos = decoder.raw_decode(text, pos)
        while text[pos] in " \t\r\n:":
            pos += 1
        if key == "features":
            return text.index("[", pos) + 1
        _, pos = decoder.raw_decode(text, pos)
