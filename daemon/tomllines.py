"""Where in a TOML file each key stands, so config errors can name their line.

`tomllib` gives values but no positions. This scanner walks the lines once and maps
every table and key path, e.g. `("device", 2, "options", "channels")`, to its line.
It understands table headers, arrays of tables, dotted and quoted keys, and the items
of multi-line arrays of inline tables (`consoles = [ { output = 1 }, ... ]`: item 0 is
`("consoles", 0)`); it skips the inside of multi-line strings. The file has already
parsed, so it only needs to be right about well-formed TOML.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_ARRAY_TABLE = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_KEYVAL = re.compile(rf"^\s*({_DOTTED})\s*=\s*(.*)$")
_PART = re.compile(_KEY)


def _split(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _PART.findall(dotted)]


def _brackets(value: str, depth: int = 0) -> tuple[int, int]:
    """The bracket depth after a line that starts at `depth` (`[`/`{` open, `]`/`}`
    close, those inside strings and comments ignored), and how many items of the
    outermost array start on it (an inline table or array opened at depth 1)."""
    quote = ""
    items = 0
    i = 0
    while i < len(value):
        ch = value[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            items += depth == 1
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return depth, items


class LineMap:
    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        self._scan(text)

    def _scan(self, text: str) -> None:
        table: Path = ()
        array_counts: dict[Path, int] = {}
        depth = 0
        value_path: Path = ()  # the key whose multi-line value is being read
        items = 0  # items of that value's array seen so far
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            if depth > 0:
                depth, started = _brackets(line, depth)
                for k in range(items, items + started):
                    self.lines.setdefault(value_path + (k,), number)
                items += started
                continue
            if m := _ARRAY_TABLE.match(line):
                parts = _split(m.group(1))
                base = self._resolve(tuple(parts[:-1]), array_counts) + (parts[-1],)
                index = array_counts.get(base, -1) + 1
                array_counts[base] = index
                table = base + (index,)
                self.lines.setdefault(base, number)
                self.lines[table] = number
            elif m := _TABLE.match(line):
                table = self._resolve(tuple(_split(m.group(1))), array_counts)
                self.lines.setdefault(table, number)
            elif m := _KEYVAL.match(line):
                path = table + tuple(_split(m.group(1)))
                self.lines.setdefault(path, number)
                value = m.group(2)
                for quote in ('"""', "'''"):
                    if value.count(quote) % 2 == 1:
                        in_multiline = quote
                depth, items = _brackets(value)
                value_path = path
                for k in range(items):
                    self.lines.setdefault(path + (k,), number)

    @staticmethod
    def _resolve(parts: Path, array_counts: dict[Path, int]) -> Path:
        """`[device.options]` inside the 3rd `[[device]]` means ("device", 2, "options")."""
        resolved: Path = ()
        for part in parts:
            resolved += (part,)
            if resolved in array_counts:
                resolved += (array_counts[resolved],)
        return resolved

    def line_of(self, path: Path) -> int:
        """The line of the longest known prefix of `path` (1 when none is known)."""
        for end in range(len(path), 0, -1):
            if (found := self.lines.get(tuple(path[:end]))) is not None:
                return found
        return 1
