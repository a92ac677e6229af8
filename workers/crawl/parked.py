"""Pages waiting for their host, held in Redis rather than by the broker.

A page whose host asks for a long wait (Retry-After, Crawl-delay, a long line
of earlier requests, an unreachable robots.txt) is parked here with the time
it may run again. A broker countdown that long would sit unacknowledged in a
worker past the visibility timeout and be delivered twice; a parked page costs
one sorted-set member, survives worker restarts, and is re-enqueued by
housekeeping (workers/housekeeping.py) when due.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import redis

from workers.keys import Keys


class Parked:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.key = Keys(namespace).parked

    def park(self, url: str, crawl_id: str | None, seconds: float, **kwargs: int) -> None:
        """Hold fetch_page(url, crawl_id, **kwargs) until `seconds` from now."""
        member = json.dumps({"url": url, "crawl_id": crawl_id, **kwargs}, sort_keys=True)
        self.redis.zadd(self.key, {member: time.time() + seconds})

    def due(self, limit: int = 500, now: float | None = None) -> list[tuple[str, dict]]:
        """Parked tasks whose time has come: (member, fetch_page kwargs)."""
        members = self.redis.zrangebyscore(self.key, "-inf", now or time.time(), start=0, num=limit)
        return [(m, json.loads(m)) for m in members]

    def remove(self, members: list[str]) -> None:
        if members:
            self.redis.zrem(self.key, *members)

    def size(self) -> int:
        return self.redis.zcard(self.key)

    def scan(self, page: int) -> Iterator[list[tuple[str, str | None]]]:
        """(url, crawl ID) of every parked page, a page of at most about `page` at a time."""
        cursor = None
        while cursor != 0:
            cursor, members = self.redis.zscan(self.key, cursor or 0, count=page)
            yield [(task["url"], task.get("crawl_id")) for task in map(json.loads, (m for m, _score in members))]
