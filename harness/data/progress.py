"""A minimal progress line on stderr: redrawn at most every 0.5 s on a terminal, one final line in any case."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, stream=None, interval: float = 0.5):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.start = time.monotonic()
        self._last = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stage = ""

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self._last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self._tty or (now - self._last < self.interval and done < total):
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label} {self.stage:<9} [{bar:<30}] {frac:6.1%} {now - self.start:6.1f} s")
        self.stream.flush()

    def finish(self, message: str) -> None:
        if self._tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"{self.label}: {message} ({time.monotonic() - self.start:.1f} s)\n")
        self.stream.flush()
