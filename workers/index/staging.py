"""The hand-over between fetching and indexing: a Redis hash of staged entries.

Fetch tasks stage what they produced (a document with its raw page, or a
failure record) under a key; the index task takes a batch, bulk-writes it and
removes exactly the entries it wrote (by version). An entry staged again meanwhile
(a newer fetch of the same URL) is not removed, so nothing is lost and nothing is
written twice by accident; a crash between write and remove only rewrites the
same IDs.

Beside the entries, each one's version and the crawls waiting for it (so a URL
staged by two crawls finishes in both), and their bytes: fetches wait while the bytes are over
STAGING_MAX_BYTES (workers/crawl/tasks.py), and an index run takes a batch
bounded by count and bytes, sizes read first.

A trigger key says an index run is queued or running, so staging a thousand
pages enqueues one index task, not a thousand. It expires by itself, so a lost
index task is replaced (workers/housekeeping.py) rather than waited for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import redis

from workers.batching import by_bytes
from workers.clients import get_redis
from workers.delivery_lua import uncount_lua
from workers.keys import Keys
from workers.task_names import INDEX_PENDING
from workers.tracking.progress import CRAWL_TTL, MARK_FUNCTION, progress_keys

if TYPE_CHECKING:
    from workers.records import Staged
    from workers.settings import Settings

# A running index task refreshes the trigger per batch; a trigger this old belongs to a lost
# run, and housekeeping enqueues a new one.
TRIGGER_TTL = 60
# Seconds the index task waits after the first staged page, so pages arriving
# together are written in one bulk request rather than one each.
INDEX_BATCH_WINDOW = 1.0
# The most bytes of staged entries one command reads: about 5 ms of Redis's time.
READ_PIECE_BYTES = 4 * 2**20

# KEYS: staged hash, its meta, its bytes, index trigger, delivery count or "", and when the page
# belongs to a crawl its progress keys (workers/tracking/progress.py: crawl, counts, options, open
# crawls); ARGV: entry id, entry, trigger ttl, crawl ID or ""[, url, state, crawl ttl]. Stages the
# entry, gives it a new version and adds its crawl to those waiting for it (an entry of another
# crawl for the same URL replaces it, and the index run finishes the URL in each), keeps the bytes
# staged, sets the URL's crawl progress, takes the finished delivery off the page's count, and
# returns 1 if the trigger was free.
_STAGE = MARK_FUNCTION + """
local id, entry, crawl_id = ARGV[1], ARGV[2], ARGV[4]
redis.call('INCRBY', KEYS[3], string.len(entry) - redis.call('HSTRLEN', KEYS[1], id))
redis.call('HSET', KEYS[1], id, entry)
local version, crawls = string.match(redis.call('HGET', KEYS[2], id) or '0', '^(%d+)(.*)$')
if crawl_id ~= '' and not string.find(crawls .. ' ', ' ' .. crawl_id .. ' ', 1, true) then
  crawls = crawls .. ' ' .. crawl_id
end
redis.call('HSET', KEYS[2], id, (tonumber(version) + 1) .. crawls)
if #KEYS > 5 then mark_progress(KEYS[6], KEYS[7], KEYS[8], KEYS[9], crawl_id, ARGV[5], ARGV[6], ARGV[7]) end
if KEYS[5] ~= '' then""" + uncount_lua("KEYS[5]") + """end
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[3]) then return 1 end
return 0
"""

# KEYS: staged hash, its meta, its bytes, index attempts; ARGV: id, version, ... Removes an entry
# only if it is still the version that was written: a few bytes compared, never the entry itself
# (comparing 500 staged pages held Redis for 200 ms).
_REMOVE_IF_UNCHANGED = """
local removed = 0
for i = 1, #ARGV, 2 do
  local meta = redis.call('HGET', KEYS[2], ARGV[i])
  if meta and string.match(meta, '^%d+') == ARGV[i + 1] then
    redis.call('DECRBY', KEYS[3], redis.call('HSTRLEN', KEYS[1], ARGV[i]))
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[4], ARGV[i])
  end
end
return removed
"""


@dataclass(frozen=True)
class Taken:
    """A staged entry as an index run took it: its ID, its JSON, its version (each staging of the
    ID makes a new one), and every crawl waiting for it (the crawl of each fetch that staged this
    URL since it was last written)."""

    key: str
    text: str
    version: str = "1"
    crawls: tuple[str, ...] = ()


class Staging:
    def __init__(self, client: redis.Redis, namespace: str):
        self.redis = client
        self.keys = Keys(namespace)
        self.key = self.keys.staged
        self.meta_key, self.bytes_key = self.keys.staged_meta, self.keys.staged_bytes
        self.flag = self.keys.index_trigger
        self._stage = client.register_script(_STAGE)
        self._remove = client.register_script(_REMOVE_IF_UNCHANGED)

    def put(self, entry_id: str, entry: bytes | str, *, trigger_ttl: int,
            progress: tuple[str, str, str] | None = None, crawl_id: str | None = None,
            delivery: str | None = None) -> bool:
        """Stage an entry (JSON, workers/records.py) for `crawl_id`'s page; True for the one caller
        that should enqueue the index task now. `progress`: (crawl ID, URL, state), set in the same
        step, so the index task can never mark the URL before this does. `delivery`: a page's
        delivery count (workers/delivery.py), decremented in the same step: the delivery finished."""
        crawl_id = progress[0] if progress is not None else crawl_id
        keys = [self.key, self.meta_key, self.bytes_key, self.flag, delivery or ""]
        args = [entry_id, entry, trigger_ttl, crawl_id or ""]
        if progress is not None:
            _crawl_id, url, state = progress
            keys += progress_keys(self.keys, crawl_id)
            args += [url, state, CRAWL_TTL]
        return bool(self._stage(keys=keys, args=args))

    def take(self, limit: int, max_bytes: int | None = None) -> list[Taken]:
        """Up to `limit` staged entries, and no more than `max_bytes` of them (but always one), in no
        particular order. Their sizes are read before the entries, so a batch of large PDFs is never
        read whole into the worker."""
        # HSCAN may answer a page with no items and a cursor to go on: empty only at cursor 0.
        meta: dict[str, str] = {}
        cursor = 0
        while True:
            cursor, page = self.redis.hscan(self.meta_key, cursor, count=limit)
            meta.update(page)
            if cursor == 0 or len(meta) >= limit:
                break
        ids = list(meta)[:limit]
        if not ids:
            return self.take(limit, max_bytes) if self._adopt_unlisted(limit) else []
        pipe = self.redis.pipeline(transaction=False)
        for entry_id in ids:
            pipe.hstrlen(self.key, entry_id)
        sized = list(zip(ids, pipe.execute(), strict=True))
        if max_bytes is not None:
            sized = next(by_bytes(sized, _size, max_bytes))
        taken = []
        # A command at a time: one HMGET of a 64 MB batch held Redis for 80 ms.
        for piece in by_bytes(sized, _size, READ_PIECE_BYTES):
            piece_ids = [entry_id for entry_id, _ in piece]
            taken += [Taken(entry_id, text, *_version_and_crawls(meta[entry_id]))
                      for entry_id, text in zip(piece_ids, self.redis.hmget(self.key, piece_ids), strict=True)
                      if text is not None]
        return taken

    def _adopt_unlisted(self, limit: int) -> int:
        """Entries staged before entries had their crawls listed and their bytes counted (an upgrade
        with pages staged) are listed now, a page at a time; how many were."""
        if not self.redis.hlen(self.key):
            return 0
        _cursor, page = self.redis.hscan(self.key, 0, count=limit)
        pipe = self.redis.pipeline(transaction=False)
        for entry_id, text in page.items():
            pipe.hsetnx(self.meta_key, entry_id, f"1 {_crawl_of(text)}".rstrip())
            pipe.incrby(self.bytes_key, len(text.encode()))
        pipe.execute()
        return len(page)

    def remove(self, items: list[Taken]) -> int:
        if not items:
            return 0
        return self._remove(keys=[self.key, self.meta_key, self.bytes_key, self.keys.index_attempts],
                            args=[x for item in items for x in (item.key, item.version)])

    def size(self) -> int:
        return self.redis.hlen(self.meta_key)

    def bytes(self) -> int:
        """What the staged entries weigh, kept by the scripts that stage and remove them."""
        return int(self.redis.get(self.bytes_key) or 0)

    def wait_for_room(self, max_bytes: int, wait: float, poll: float = 1.0) -> bool:
        """True once the staged entries weigh at most `max_bytes`; False if they still weigh more
        after `wait` seconds. One GET a poll: a fetch waiting here costs Redis nothing to speak of."""
        deadline = time.monotonic() + wait
        while self.bytes() > max_bytes:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        return True

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


def _size(sized: tuple[str, int]) -> int:
    return sized[1]


def _version_and_crawls(meta: str) -> tuple[str, tuple[str, ...]]:
    version, *crawls = meta.split()
    return version, tuple(crawls)


def _crawl_of(text: str) -> str:
    """The crawl a staged entry's JSON names ("" for none, or JSON that cannot be read: the index
    run records such an entry as corrupt)."""
    try:
        return orjson.loads(text).get("crawl_id") or ""
    except (orjson.JSONDecodeError, AttributeError):
        return ""


def stage(settings: Settings, entry: Staged, progress: str | None = None, delivery: str | None = None) -> None:
    """Hand an entry to the index task, and make sure one index task is coming. `progress`: the
    state the URL reaches in its crawl now; `delivery`: the page's delivery count, which this
    delivery leaves; both in the same step."""
    from workers.app import app  # here: `status` reads Staging, and must start without Celery

    mark = (entry.crawl_id, entry.url, progress) if progress and entry.crawl_id else None
    if Staging(get_redis(), settings.index_prefix).put(entry.key, entry.to_json(), trigger_ttl=TRIGGER_TTL,
                                                       progress=mark, crawl_id=entry.crawl_id, delivery=delivery):
        app.send_task(INDEX_PENDING, countdown=INDEX_BATCH_WINDOW)
