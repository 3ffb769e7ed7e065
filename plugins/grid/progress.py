"""A progress bar for the CLI, with no dependency.

On a terminal it redraws one line in place; into a file or a pipe (a cron job, a
test) it writes one line per finished step, so a log is not a wall of redraws.
"""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, stream: TextIO, label: str, total: int) -> None:
        self.stream, self.label, self.total = stream, label, max(total, 1)
        self.done = 0
        self._shown = -1
        self.tty = stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        percent = min(100, self.done * 100 // self.total)
        if self.tty and percent != self._shown:
            self._shown = percent
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def close(self) -> None:
        self.stream.write(("\r" if self.tty else "") + self._line() + "\n")
        self.stream.flush()

    def _line(self) -> str:
        filled = WIDTH * min(self.done, self.total) // self.total
        bar = "#" * filled + "-" * (WIDTH - filled)
        return f"{self.label:<20} [{bar}] {min(self.done, self.total):>7}/{self.total}"
