"""The hand-over between fetching and indexing: a Redis hash of staged entries.

Fetch tasks stage what they produced (a document with its raw page, or a
failure record) under a key; the index task takes a batch, bulk-writes it and
removes exactly the entries it wrote. An entry staged again meanwhile (a newer
fetch of the same URL) is not removed, so nothing is lost and nothing is
written twice by accident; a crash between write and remove only rewrites the
same IDs.
"""

from __future__ import annotations

import json

import redis

# Remove a field only if it still holds the value that was written.
_REMOVE_IF_UNCHANGED = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


class Staging:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.key = f"ri:{namespace}staged"
        self.flag = f"ri:{namespace}index-scheduled"
        self._remove = client.register_script(_REMOVE_IF_UNCHANGED)

    def put(self, entry_id: str, entry: dict, *, trigger_ttl: int) -> bool:
        """Stage an entry; True for the one caller that should enqueue the index task now."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key, entry_id, json.dumps(entry, ensure_ascii=False))
        pipe.set(self.flag, "1", nx=True, ex=trigger_ttl)
        return bool(pipe.execute()[1])

    def take(self, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` staged (id, raw JSON) pairs, oldest order not guaranteed."""
        _cursor, items = self.redis.hscan(self.key, 0, count=limit)
        return list(items.items())[:limit]

    def remove(self, items: list[tuple[str, str]]) -> int:
        if not items:
            return 0
        return self._remove(keys=[self.key], args=[x for pair in items for x in pair])

    def size(self) -> int:
        return self.redis.hlen(self.key)

    def claim_trigger(self, ttl: int) -> bool:
        """True for the one caller that should enqueue the index task now."""
        return bool(self.redis.set(self.flag, "1", nx=True, ex=ttl))

    def release_trigger(self) -> None:
        self.redis.delete(self.flag)
