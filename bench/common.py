"""What every benchmark needs: a free loopback port, a percentile, a config's head, and
an emulator running elsewhere.

The benches run as scripts (`python bench/bench_x.py`), so they import this module by
its bare name.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
