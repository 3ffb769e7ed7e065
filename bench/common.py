"""What every benchmark needs: a free loopback port, a percentile, a config's head, an
emulator running elsewhere, and `record` for the report `make bench` writes.

The benches run as scripts (`python bench/bench_x.py`), so they import this module by
its bare name.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import operator
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    """The `p`th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def config_head() -> str:
    """A config's first tables: a free API port, the store in the config's folder,
    warnings only."""
    return (
        f'[api]\nlisten = "127.0.0.1:{free_port()}"\n[storage]\npath = "gridhall.db"\n'
        '[logging]\nlevel = "warning"\n'
    )


@contextmanager
def elsewhere(emulator: Any) -> Iterator[None]:
    """Run an emulator on its own event loop in a thread, as a real device runs on its
    own hardware: the daemon's loop under test carries none of its work."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(10)
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def print_table(heading: str, rows: dict[str, list[float]]) -> None:
    """One line per figure (label: values in ms): p50, p99 and max."""
    width = max(len(heading), *(len(label) for label in rows))
    print(f"{heading:{width}} {'p50':>7} {'p99':>7} {'max':>7}")
    for label, v in rows.items():
        print(f"{label:{width}} {pct(v, 50):7.2f} {pct(v, 99):7.2f} {max(v):7.2f}")


# -- the record `make bench` reads (bench/report.py writes bench/RESULTS.md from it) ----

RECORD_ENV = "GRIDHALL_BENCH_RECORD"


@dataclass(frozen=True)
class Aim:
    """What a figure should be: `of` "ratio" (value / baseline) or "value", compared by
    `op` ("<=", "<", ">=", ">", "==") with `bound`; `unit` for a value's bound."""

    of: str
    op: str
    bound: float
    unit: str = ""

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        x = ratio if self.of == "ratio" else value
        if x is None or x != x:  # unmeasured or NaN: neither met nor missed
            return None
        return bool(_OPS[self.op](x, self.bound))

    def text(self) -> str:
        if self.of == "ratio":
            return f"ratio {self.op} {self.bound:g}x"
        words = {"<": "under", "<=": "at most", ">": "over", ">=": "at least", "==": "exactly"}
        unit = self.unit if self.unit in ("", "x") else " " + self.unit
        return f"{words[self.op]} {self.bound:g}{unit}"


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}


def record(
    issue: int,
    figure: str,
    value: float | None,
    unit: str,
    baseline: float | None = None,
    *,
    base: str = "",
    aim: Aim | None = None,
    why: str = "",
    note: str = "",
) -> bool | None:
    """Write one headline figure for the report, beside its baseline measured in the
    same run (`base` says what the baseline is); the ratio is value / baseline. `why`
    is the bench's short, honest reason, shown only when the aim is missed; `note`
    always. Appends a JSON line to the file named by $GRIDHALL_BENCH_RECORD (`make
    bench` sets it); without it, nothing is written: the bench prints as it always
    did. Returns whether the aim is met (None: no aim, or no figure)."""
    ratio = value / baseline if value is not None and baseline else None
    met = aim.met(value, ratio) if aim else None
    path = os.environ.get(RECORD_ENV)
    if path:
        entry = {
            "bench": Path(sys.argv[0]).name,
            "issue": issue,
            "figure": figure,
            "value": value,
            "unit": unit,
            "baseline": baseline,
            "base": base,
            "ratio": ratio,
            "aim": aim.text() if aim else None,
            "met": met,
            "why": why if met is False else "",
            "note": note,
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return met


# -- fixtures kept between runs -----------------------------------------------------------

CACHE_DIR = Path(__file__).resolve().parent.parent / ".bench-cache"
NO_CACHE_ENV = "GRIDHALL_BENCH_NO_CACHE"


def cache_key(*parts: object) -> str:
    """A version for a fixture: the source of each function or module that makes it
    (a change to the generator makes a new one) and the repr of everything else (its
    size, its seed)."""
    digest = hashlib.sha256()
    for part in parts:
        try:
            text = inspect.getsource(part)  # type: ignore[arg-type]
        except TypeError:
            text = repr(part)
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def cached_file(name: str, key: str, target: Path) -> bool:
    """Copy the kept fixture `name` of version `key` to `target`, if there is one (and
    $GRIDHALL_BENCH_NO_CACHE is not set): whether it was."""
    kept = CACHE_DIR / f"{name}-{key}"
    if os.environ.get(NO_CACHE_ENV) or not kept.exists():
        return False
    shutil.copyfile(kept, target)
    _note_cache(name, key, True)
    return True


def keep_file(name: str, key: str, source: Path, built_s: float) -> None:
    """Keep a copy of `source` as fixture `name` of version `key` for the next run, in
    place of any other version of it."""
    if os.environ.get(NO_CACHE_ENV):
        return
    wal = source.with_name(source.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise RuntimeError(f"{source} still has a WAL: close its store before keeping it")
    CACHE_DIR.mkdir(exist_ok=True)
    for old in CACHE_DIR.glob(f"{name}-*"):
        old.unlink()
    partial = CACHE_DIR / f".{name}-{key}.partial"
    shutil.copyfile(source, partial)
    partial.rename(CACHE_DIR / f"{name}-{key}")
    (CACHE_DIR / f"{name}-{key}.built_s").write_text(f"{built_s:.1f}")
    _note_cache(name, key, False)


def _note_cache(name: str, key: str, hit: bool) -> None:
    """Tell the report whether the run built the fixture or reused a kept one."""
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    built = CACHE_DIR / f"{name}-{key}.built_s"
    entry = {
        "cache": name,
        "bench": Path(sys.argv[0]).name,
        "hit": hit,
        "built_s": float(built.read_text()) if built.exists() else None,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")
