"""The hand-over between fetching and indexing: a Redis hash of staged entries.

Fetch tasks stage what they produced (a document with its raw page, or a
failure record) under a key; the index task takes a batch, bulk-writes it and
removes exactly the entries it wrote. An entry staged again meanwhile (a newer
fetch of the same URL) is not removed, so nothing is lost and nothing is
written twice by accident; a crash between write and remove only rewrites the
same IDs.

A trigger key says an index run is queued or running, so staging a thousand
pages enqueues one index task, not a thousand. It expires by itself, so a lost
index task is replaced (workers/housekeeping.py) rather than waited for.
"""

from __future__ import annotations

import redis

from workers.crawl.progress import set_if_present
from workers.delivery import uncount_lua
from workers.keys import Keys

# A running index task refreshes the trigger per batch; a trigger this old belongs to a lost
# run, and housekeeping enqueues a new one.
TRIGGER_TTL = 60

# KEYS: staged hash, index trigger, crawl hash or "", delivery count or "";
# ARGV: entry id, entry, trigger ttl[, url, state]. Stages the entry, sets the URL's crawl
# progress, takes the finished delivery off the page's count, and returns 1 if the trigger was free.
_STAGE = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if KEYS[3] ~= '' then""" + set_if_present("KEYS[3]", "ARGV[4]", "ARGV[5]") + """end
if KEYS[4] ~= '' then""" + uncount_lua("KEYS[4]") + """end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 1 end
return 0
"""

# Remove a field only if it still holds the value that was written.
_REMOVE_IF_UNCHANGED = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return removed
"""


class Staging:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.keys = Keys(namespace)
        self.key = self.keys.staged
        self.flag = self.keys.index_trigger
        self._stage = client.register_script(_STAGE)
        self._remove = client.register_script(_REMOVE_IF_UNCHANGED)

    def put(self, entry_id: str, entry: bytes | str, *, trigger_ttl: int,
            progress: tuple[str, str, str] | None = None, delivery: str | None = None) -> bool:
        """Stage an entry (JSON, workers/records.py); True for the one caller that should enqueue
        the index task now. `progress`: (crawl ID, URL, state), set in the same step, so the
        index task can never mark the URL before this does. `delivery`: a page's delivery count
        (workers/delivery.py), decremented in the same step: the delivery finished."""
        keys, args = [self.key, self.flag, "", delivery or ""], [entry_id, entry, trigger_ttl]
        if progress is not None:
            crawl_id, url, state = progress
            keys[2] = self.keys.crawl(crawl_id)
            args += [url, state]
        return bool(self._stage(keys=keys, args=args))

    def take(self, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` staged (id, raw JSON) pairs, oldest order not guaranteed."""
        # HSCAN may answer a page with no items and a cursor to go on: empty only at cursor 0.
        items: dict[str, str] = {}
        cursor = 0
        while True:
            cursor, page = self.redis.hscan(self.key, cursor, count=limit)
            items.update(page)
            if cursor == 0 or len(items) >= limit:
                return list(items.items())[:limit]

    def remove(self, items: list[tuple[str, str]]) -> int:
        if not items:
            return 0
        return self._remove(keys=[self.key, self.keys.index_attempts], args=[x for pair in items for x in pair])

    def size(self) -> int:
        return self.redis.hlen(self.key)

    def claim_trigger(self, ttl: int) -> bool:
        """True for the one caller that should enqueue the index task now."""
        return bool(self.redis.set(self.flag, "1", nx=True, ex=ttl))

    def refresh_trigger(self, ttl: int) -> None:
        """The index run is alive: keep others from starting one."""
        self.redis.set(self.flag, "1", ex=ttl)

    def release_trigger(self) -> None:
        self.redis.delete(self.flag)

    def count_attempt(self, entry_id: str) -> int:
        """One more attempt at writing this entry alone; the count so far."""
        return self.redis.hincrby(self.keys.index_attempts, entry_id, 1)

