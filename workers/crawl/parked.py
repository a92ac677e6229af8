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
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis

from workers.keys import Keys


# Scores are Unix seconds of Redis's clock (TIME), the one every worker shares: a worker whose
# own clock is behind would otherwise park pages for longer than asked, or sweep them too soon.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""
# KEYS[1] parked; ARGV member, seconds.
_PARK = _NOW + """
redis.call('ZADD', KEYS[1], string.format('%.6f', now + tonumber(ARGV[2])), ARGV[1])
"""
# KEYS[1] parked; ARGV[1] limit. Takes the due members out and returns them with their scores, in
# one step: removed only after they were sent, a member parked again meanwhile under the same
# JSON (its worker took it at once and its host still had it wait) was removed with it, and lost.
_CLAIM_DUE = _NOW + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now), 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[1]))
for i = 1, #due, 2 do redis.call('ZREM', KEYS[1], due[i]) end
return due
"""


@dataclass(frozen=True)
class ParkedPage:
    """A fetch_page call held in Redis: its URL, its crawl, the robots.txt deferrals it had.

    Its JSON is the sorted-set member, so the same call parked twice is one member."""

    url: str
    crawl_id: str | None = None
    robots_deferrals: int = 0

    def fetch_kwargs(self) -> dict:
        """fetch_page's keyword arguments (robots_deferrals only when there were any)."""
        return {"url": self.url, "crawl_id": self.crawl_id,
                **({"robots_deferrals": self.robots_deferrals} if self.robots_deferrals else {})}

    def to_json(self) -> str:
        return json.dumps(self.fetch_kwargs(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ParkedPage:
        fields = json.loads(text)
        return cls(fields["url"], fields.get("crawl_id"), fields.get("robots_deferrals", 0))


class Parked:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.key = Keys(namespace).parked
        self._park = client.register_script(_PARK)
        self._claim = client.register_script(_CLAIM_DUE)

    def park(self, page: ParkedPage, seconds: float) -> None:
        """Hold the fetch of `page` until `seconds` from now."""
        self._park(keys=[self.key], args=[page.to_json(), seconds])

    def requeue_due(self, send: Callable[[ParkedPage], None], limit: int = 500, most: int = 10_000) -> int:
        """Hand parked pages whose time has come to `send`, at most `most` (the
        rest at the next sweep, so a sweep stays within its lock however many are due); how many.
        Each batch is claimed before it is sent; what could not be sent is put back as it was."""
        sent = 0
        while sent < most and (due := self._claim(keys=[self.key], args=[limit])):
            items = [(due[i], float(due[i + 1])) for i in range(0, len(due), 2)]
            done = 0
            try:
                for member, _score in items:
                    send(ParkedPage.from_json(member))
                    done += 1
            finally:
                if done < len(items):
                    self.redis.zadd(self.key, dict(items[done:]), nx=True)
            sent += done
        return sent

    def size(self) -> int:
        return self.redis.zcard(self.key)

    def scan(self, page: int) -> Iterator[list[tuple[str, str | None]]]:
        """(url, crawl ID) of every parked page, a page of at most about `page` at a time."""
        cursor = None
        while cursor != 0:
            cursor, members = self.redis.zscan(self.key, cursor or 0, count=page)
            yield [(page.url, page.crawl_id) for page in (ParkedPage.from_json(m) for m, _score in members)]
