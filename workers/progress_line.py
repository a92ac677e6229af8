"""One progress line for long runs (a crawl, a rebuild): the rate and ETA, and how the line is shown.

On a terminal the line is redrawn in place on every poll; in a log (stderr not a
terminal) it is written every few seconds, so logs stay readable, and always once
at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def rate(done: int, elapsed: float) -> float:
    return done / elapsed if elapsed > 0 else 0.0


def eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far; None until something is done."""
    per_second = rate(done, elapsed)
    return max(total - done, 0) / per_second if per_second > 0 else None


def rate_and_eta(done: int, total: int, elapsed: float, unit: str) -> str:
    left = eta(done, total, elapsed)
    return f"{rate(done, elapsed):.1f} {unit}/s | ETA {f'{left:.0f}s' if left is not None else '?'}"


class ProgressPrinter:
    """Shows progress lines through `echo` (nothing without one)."""

    def __init__(self, echo: Callable[[str], None] | None, every: float = 5.0):
        self.echo, self.every = echo, every
        self.tty = sys.stderr.isatty()
        self.last = float("-inf")

    def __call__(self, line: str, final: bool = False) -> None:
        if self.echo is None:
            return
        if self.tty:
            print("\r" + line, end="\n" if final else "", file=sys.stderr, flush=True)
            return
        now = time.monotonic()
        if final or now - self.last >= self.every:
            self.echo(line)
            self.last = now
