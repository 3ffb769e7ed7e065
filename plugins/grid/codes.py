"""Grid codes in the CJ/T 213 form.

A code is the county (6 digits, GB/T 2260), then the street or town (3 digits,
GB/T 10114: 000-099 a street, 100-199 a town, 200-299 a township), the community (3),
and the grid's sequence within the community (`sequence_width` digits, `00` being
the community itself, so a grid starts at 01). Compounds and buildings, which the
standard does not number, append 3 digits each here. The code alone says the level
and the parent, so a file cannot put a grid under the wrong community unnoticed.
"""

from __future__ import annotations

from plugins.grid.config import LEVELS

# GB/T 2260 province prefixes: a county code starting elsewhere is a typo.
PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37}
    | {41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
)


def widths(sequence_width: int) -> tuple[int, ...]:
    """Digits each level adds, district first."""
    return (6, 3, 3, sequence_width, 3, 3)


def lengths(sequence_width: int) -> dict[int, str]:
    """Code length -> level."""
    total, out = 0, {}
    for level, width in zip(LEVELS, widths(sequence_width), strict=True):
        total += width
        out[total] = level
    return out


def level_of(code: str, sequence_width: int) -> str | None:
    return lengths(sequence_width).get(len(code))


def parent_of(code: str, sequence_width: int) -> str | None:
    """The parent's code: the code less its last segment; None for a district."""
    level = level_of(code, sequence_width)
    if level is None or level == LEVELS[0]:
        return None
    width = widths(sequence_width)[LEVELS.index(level)]
    return code[:-width]


def street_kind(code: str) -> str:
    """street, town or township, from the 3 digits after the county (GB/T 10114)."""
    n = int(code[6:9])
    return "street" if n < 100 else "town" if n < 200 else "township"


def problems(code: str, sequence_width: int, depth: int) -> list[str]:
    """Everything wrong with a code; empty when it is a valid code of a level in use."""
    if not code.isascii() or not code.isdigit():
        return [f"grid code {code!r} must be digits only"]
    level = level_of(code, sequence_width)
    allowed = LEVELS[:depth]
    if level not in allowed:
        sizes = [n for n, lv in sorted(lengths(sequence_width).items()) if lv in allowed]
        return [f"grid code {code!r} has {len(code)} digits; a code has {sizes} digits"]
    out = []
    if int(code[:2]) not in PROVINCES:
        out.append(f"grid code {code!r}: {code[:2]} is not a GB/T 2260 province")
    if len(code) > 6 and not 1 <= int(code[6:9]) <= 299:
        out.append(f"grid code {code!r}: street/town {code[6:9]} is not in 001-299")
    if len(code) > 9 and int(code[9:12]) == 0:
        out.append(f"grid code {code!r}: community 000 is the street itself")
    seq_end = 12 + sequence_width
    if len(code) > 12 and int(code[12:seq_end]) == 0:
        out.append(f"grid code {code!r}: sequence {code[12:seq_end]} is the community itself")
    for start in (seq_end, seq_end + 3):
        if len(code) > start and int(code[start : start + 3]) == 0:
            out.append(f"grid code {code!r}: {code[start : start + 3]} is not a valid number")
    return out
