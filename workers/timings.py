"""Cumulative time spent per pipeline stage, shared by every worker process through Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

log = logging.getLogger(__name__)


class StageTimings:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.key = f"ri:{namespace}timings"

    @contextmanager
    def measure(self, stage: str, items: int = 1) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._add(stage, time.perf_counter() - start, items)

    def _add(self, stage: str, seconds: float, items: int) -> None:
        # Runs in a `finally`: a lost Redis must not replace the way the measured block ended.
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrbyfloat(self.key, f"{stage}:seconds", seconds)
            pipe.hincrby(self.key, f"{stage}:items", items)
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("stage timing for %s not recorded: %s", stage, exc)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"seconds": total, "items": n, "ms_per_item": mean}}."""
        out: dict[str, dict[str, float]] = {}
        for field, value in self.redis.hgetall(self.key).items():
            stage, kind = field.rsplit(":", 1)
            out.setdefault(stage, {})[kind] = float(value)
        for stats in out.values():
            items = stats.get("items", 0)
            stats["ms_per_item"] = 1000 * stats.get("seconds", 0) / items if items else 0.0
        return out

    def reset(self) -> None:
        self.redis.delete(self.key)
