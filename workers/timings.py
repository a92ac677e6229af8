"""Cumulative time spent per pipeline stage, shared by every worker process through Redis.

Each process adds its measurements up in memory and writes the totals at most once per
FLUSH_EVERY seconds (and when the worker shuts down): two Redis commands per measured
block were 7 % of a worker's CPU. `status` sees them up to that much later.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from workers.keys import Keys

log = logging.getLogger(__name__)

FLUSH_EVERY = 1.0


class _Pending:
    """This process's measurements not yet written, per Redis key; shared by its threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.totals: dict[str, tuple[redis.Redis, defaultdict[str, float]]] = {}
        self.last = time.monotonic()

    def add(self, client: redis.Redis, key: str, stage: str, seconds: float, items: int) -> None:
        with self.lock:
            fields = self.totals.setdefault(key, (client, defaultdict(float)))[1]
            fields[f"{stage}:seconds"] += seconds
            fields[f"{stage}:items"] += items
            due = time.monotonic() - self.last >= FLUSH_EVERY
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            totals, self.totals, self.last = self.totals, {}, time.monotonic()
        for key, (client, fields) in totals.items():
            # A lost Redis must not fail a task: these are statistics, and are dropped.
            try:
                pipe = client.pipeline(transaction=False)
                for field, value in fields.items():
                    if field.endswith(":items"):
                        pipe.hincrby(key, field, int(value))
                    else:
                        pipe.hincrbyfloat(key, field, value)
                pipe.execute()
            except redis.RedisError as exc:
                log.debug("stage timings not recorded: %s", exc)


_pending = _Pending()


def _fresh_after_fork() -> None:
    global _pending
    _pending = _Pending()  # a prefork child must not write its parent's measurements again


def flush_timings(**_signal) -> None:
    """Write this process's pending measurements now."""
    _pending.flush()


os.register_at_fork(after_in_child=_fresh_after_fork)
# A prefork pool process leaves through os._exit, past atexit: the worker flushes on Celery's
# shutdown signals too (connected in workers/app.py, so `status` reads timings without Celery).
atexit.register(flush_timings)


class StageTimings:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.key = Keys(namespace).timings

    @contextmanager
    def measure(self, stage: str, items: int = 1) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._add(stage, time.perf_counter() - start, items)

    def _add(self, stage: str, seconds: float, items: int) -> None:
        _pending.add(self.redis, self.key, stage, seconds, items)

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
