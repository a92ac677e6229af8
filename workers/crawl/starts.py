"""Crawl starts under way, so housekeeping can tell one that stopped half way from one that runs.

Importable without the Celery app (housekeeping is part of the app's start-up).
"""

from __future__ import annotations

import redis

from workers import redis_clock
from workers.keys import Keys

# A start that has not finished a step for this long is taken for stopped.
START_LEASE = 60.0


class CrawlStarts:
    """Starts under way, as a sorted set of crawl IDs by the time their lease runs out."""

    def __init__(self, client: redis.Redis, namespace: str):
        self.redis, self.key = client, Keys(namespace).crawl_starts

    def hold(self, crawl_id: str) -> None:
        # On Redis's clock, which housekeeping compares it with: the starting host's may be off.
        self.redis.zadd(self.key, {crawl_id: redis_clock.sync(self.redis) + START_LEASE})

    def release(self, crawl_id: str) -> None:
        self.redis.zrem(self.key, crawl_id)

    def stopped(self, now: float, limit: int = 100) -> list[str]:
        """Up to `limit` starts whose lease ran out: each was stopped before it finished."""
        return self.redis.zrangebyscore(self.key, "-inf", now, start=0, num=limit)
