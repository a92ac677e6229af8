"""Per-crawl progress, kept in Redis so every worker process can report to it: the fetch
stage and the index stage both mark URLs (workers/crawl/progress.py follows a crawl).

Each URL of a crawl has one state in a hash, and the crawl keeps a count per
state, changed by the same script that changes a URL's state, so following a
crawl of a million URLs reads a few fields. Setting a state is idempotent, so
a redelivered task never counts a page twice. A crawl lives as long as it has
URLs to finish, and CRAWL_TTL after its last one finished.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import redis

from workers.batching import chunked
from workers.keys import Keys

QUEUED, FETCHED, INDEXED, FAILED = "queued", "fetched", "indexed", "failed"
# Done without indexing: 304 or same bytes; robots.txt said no; 404/410 on recheck.
UNCHANGED, SKIPPED, GONE = "unchanged", "skipped", "gone"
OPEN_STATES = frozenset({QUEUED, FETCHED})
# A finished crawl's record is kept this long for `status` and late readers; an open one is kept
# as long as it has URLs to finish, however long that takes.
CRAWL_TTL = 7 * 24 * 3600
# The field of the counts hash that counts the open URLs, beside one field per state.
OPEN = "open"
# URLs added per script call: one call holds Redis for about a millisecond.
ADD_CHUNK = 1000

# mark_progress(crawl, counts, options, open crawls, crawl ID, url, state, ttl): sets `url`'s state
# only if the URL is part of the crawl (a stray late update must not grow it), keeps the counts,
# and when the crawl's last open URL finishes, gives the crawl's keys their end of life. Embedded
# in every script that sets a state (here and workers/index/staging.py).
MARK_FUNCTION = f"""
local function mark_progress(crawl, counts, options, open_crawls, crawl_id, url, state, ttl)
  local old = redis.call('HGET', crawl, url)
  if (not old) or old == state then return end
  redis.call('HSET', crawl, url, state)
  if redis.call('EXISTS', counts) == 0 then return end  -- a crawl started before counts were kept
  redis.call('HINCRBY', counts, old, -1)
  redis.call('HINCRBY', counts, state, 1)
  local was_open = old == '{QUEUED}' or old == '{FETCHED}'
  local is_open = state == '{QUEUED}' or state == '{FETCHED}'
  if was_open and not is_open then
    if redis.call('HINCRBY', counts, '{OPEN}', -1) <= 0 then
      for _, key in ipairs({{crawl, counts, options}}) do redis.call('EXPIRE', key, ttl) end
      redis.call('SREM', open_crawls, crawl_id)
    end
  elseif is_open and not was_open then
    redis.call('HINCRBY', counts, '{OPEN}', 1)
    for _, key in ipairs({{crawl, counts, options}}) do redis.call('PERSIST', key) end
    redis.call('SADD', open_crawls, crawl_id)
  end
end
"""

# KEYS: crawl, counts, options, open crawls; ARGV: crawl ID, url, state, ttl.
_MARK = MARK_FUNCTION + "mark_progress(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"

# KEYS: crawl, counts, options, open crawls; ARGV: crawl ID, url... Adds the URLs not already part
# of the crawl as queued, and returns a 1 or 0 per URL: added or not. A crawl with open URLs keeps
# its keys (they were given an end of life when it last finished, or when its options were saved).
_ADD = f"""
local added, n = {{}}, 0
for i = 2, #ARGV do
  local new = redis.call('HSETNX', KEYS[1], ARGV[i], '{QUEUED}')
  added[i - 1] = new
  n = n + new
end
if n > 0 then
  redis.call('HINCRBY', KEYS[2], '{QUEUED}', n)
  redis.call('HINCRBY', KEYS[2], '{OPEN}', n)
  for _, key in ipairs({{KEYS[1], KEYS[2], KEYS[3]}}) do redis.call('PERSIST', key) end
  redis.call('SADD', KEYS[4], ARGV[1])
end
return added
"""


def progress_keys(keys: Keys, crawl_id: str) -> list[str]:
    """The keys mark_progress takes, in its order, for one crawl."""
    return [keys.crawl(crawl_id), keys.crawl_counts(crawl_id), keys.crawl_options(crawl_id), keys.open_crawls]


class CrawlTracker:
    def __init__(self, client: redis.Redis, namespace: str, crawl_id: str):
        self.redis = client
        self.crawl_id = crawl_id
        self.keys = progress_keys(Keys(namespace), crawl_id)
        self.key, self.counts_key = self.keys[0], self.keys[1]
        self._mark = client.register_script(_MARK)
        self._add = client.register_script(_ADD)

    def add(self, urls: Iterable[str]) -> list[str]:
        """Record URLs as queued; return those not already part of this crawl."""
        added: list[str] = []
        for chunk in chunked(urls, ADD_CHUNK):
            flags = self._add(keys=self.keys, args=[self.crawl_id, *chunk])
            added += [url for url, new in zip(chunk, flags, strict=True) if new]
        return added

    def mark(self, url: str, state: str, pipe: redis.client.Pipeline | None = None) -> None:
        """Set `url`'s state, if it belongs to the crawl; on `pipe` if given (its caller executes it)."""
        self._mark(keys=self.keys, args=[self.crawl_id, url, state, CRAWL_TTL], client=pipe)

    def counts(self) -> Counter:
        """How many of the crawl's URLs are in each state: a read of a few fields, whatever its size."""
        counts = Counter({state: int(n) for state, n in self.redis.hgetall(self.counts_key).items()})
        del counts[OPEN]
        return +counts  # states no URL is in any more are left out

    def states(self, urls: list[str]) -> dict[str, str | None]:
        """The state of each of `urls` in this crawl (None: not part of it)."""
        return dict(zip(urls, self.redis.hmget(self.key, urls) if urls else [], strict=True))
