"""A plain-text progress bar on stderr (no dependency).

On a terminal it redraws one line (``\\r``) at most 10 times a second; otherwise (CI
logs, pipes) it prints a new line every 10% or every 5 seconds, whichever comes first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressBar", "format_duration"]


def format_duration(seconds: float) -> str:
    total = max(round(seconds), 0)
    m, s = divmod(total, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """``bar.update(n)`` / ``bar.set(value)``, then ``bar.close()``."""

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        width: int = 30,
        unit: str = "",
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.unit = unit
        self.enabled = enabled
        self.value = 0
        self.postfix = ""
        self._clock = clock
        self._start = clock()
        self._last_draw = -1e9
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._closed = False
        self._drawn: int | None = None

    def update(self, n: int = 1) -> None:
        self.set(self.value + n)

    def set(self, value: int, postfix: str | None = None) -> None:
        self.value = value
        if postfix is not None:
            self.postfix = postfix
        self._maybe_draw()

    def render(self) -> str:
        """The current line, without ``\\r`` or newline."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.value / elapsed
        if self.total:
            frac = min(self.value / self.total, 1.0)
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            remaining = (self.total - self.value) / rate if rate > 0 else float("inf")
            eta = format_duration(remaining) if remaining != float("inf") else "?"
            text = (
                f"[{bar}] {self.value:,}/{self.total:,} {frac:4.0%} "
                f"{rate:,.0f}{self.unit}/s elapsed {format_duration(elapsed)} eta {eta}"
            )
        else:
            text = f"{self.value:,} {rate:,.0f}{self.unit}/s elapsed {format_duration(elapsed)}"
        if self.label:
            text = f"{self.label} {text}"
        return f"{text} {self.postfix}".rstrip()

    def _maybe_draw(self, force: bool = False) -> None:
        if not self.enabled or self._closed or (force and self._drawn == self.value):
            return
        now = self._clock()
        if self._tty:
            if force or now - self._last_draw >= 0.1:
                self._last_draw = now
                self._drawn = self.value
                self.stream.write("\r" + self.render() + "\x1b[K")
                self.stream.flush()
            return
        decile = int(10 * self.value / self.total) if self.total else -1
        if force or decile > self._last_decile or now - self._last_draw >= 5.0:
            self._last_decile = max(decile, self._last_decile)
            self._last_draw = now
            self._drawn = self.value
            self.stream.write(self.render() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._maybe_draw(force=True)
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True
