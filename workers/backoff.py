"""The one retry back-off: exponential, capped, with equal jitter, for fetches, index runs and webhooks."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, base: float, ceiling: float, retry_after: float | None = None) -> float:
    """Seconds before attempt `attempt + 1`: half of min(ceiling, base * 2**attempt) plus a random part of
    the other half, so retries of many tasks spread out; a server's Retry-After wins, within the ceiling."""
    if retry_after is not None:
        return min(retry_after, ceiling)
    step = min(ceiling, base * 2**attempt)
    return step / 2 + random.uniform(0, step / 2)
