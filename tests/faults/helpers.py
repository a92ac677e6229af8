"""Helpers for fault scenarios: waiting for a condition, and the summary line each one prints."""

from __future__ import annotations

import time
from collections.abc import Callable

# Read by the `faults` section tests/faults/conftest.py adds to pytest's report.
SUMMARIES: list[str] = []


def await_condition(check: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    end = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < end, f"{what}: not reached within {timeout:.0f}s"
        time.sleep(interval)
    return result


def summary(line: str) -> None:
    SUMMARIES.append(line)
    print(f"\n[fault] {line}")
