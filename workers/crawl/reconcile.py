"""Sending again the fetches whose broker message was lost with a connection.

The Redis transport takes a message off its queue (BRPOP) before the worker has
written it to the unacknowledged set. If the connection drops in between (Redis
restarted, a network cut), the message exists nowhere: not queued, not
unacknowledged, so neither the visibility timeout nor housekeeping's orphan sweep
can bring it back. The same goes for a worker killed in between. A Redis killed
outright also loses its last second of writes (AOF everysec). The crawl's
progress hash still says the URL is queued.

So housekeeping asks for a reconciliation when a worker reconnects to the broker,
restarts under the name of one that died, or stays dead (workers/housekeeping.py),
and runs it at its next sweep. It reads every message that exists (queued,
unacknowledged, parked) in one transaction and sends a fetch for each URL an
open crawl still has as queued with no message. A URL sent twice costs a
conditional fetch: tasks are idempotent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import redis

from workers.crawl.progress import QUEUED
from workers.keys import Keys
from workers.urls import doc_id

# Sent by these names wherever importing the tasks (and the parsers behind them) is not needed.
FETCH_TASK = "workers.tasks.fetch_page"
FETCH_BATCH_TASK = "workers.tasks.fetch_pages"
# Take the request (only once it is due), so exactly one sweep runs it.
_CLAIM = """
local due = redis.call('GET', KEYS[1])
if due and tonumber(due) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def fetch_targets(message: str | bytes | dict) -> list[tuple[str, str | None]]:
    """(url, crawl_id) of each page a kombu message of fetch_page or fetch_pages names; none for
    any other message."""
    if not isinstance(message, dict):
        message = json.loads(message)
    task = message.get("headers", {}).get("task")
    if task not in (FETCH_TASK, FETCH_BATCH_TASK):
        return []
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = json.loads(body)
    first = "url" if task == FETCH_TASK else "urls"
    call = dict(zip((first, "crawl_id"), args)) | kwargs
    urls = [call["url"]] if task == FETCH_TASK else call["urls"]
    return [(url, call.get("crawl_id")) for url in urls]


class Reconciler:
    def __init__(self, client: redis.Redis, namespace: str, queue: str, *, unacked_key: str = "unacked"):
        self.redis, self.keys, self.queue, self.unacked_key = client, Keys(namespace), queue, unacked_key
        self._claim = client.register_script(_CLAIM)

    def request(self, due: float) -> None:
        """Ask for a reconciliation from `due` on (an earlier pending request stands)."""
        self.redis.set(self.keys.reconcile, due, nx=True)

    def claim(self, now: float) -> bool:
        return bool(self._claim(keys=[self.keys.reconcile], args=[now]))

    def existing(self) -> set[tuple[str, str | None]]:
        """(url, crawl_id) of every fetch that has a message, read as one snapshot."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrange(self.queue, 0, -1)
        pipe.hvals(self.unacked_key)
        pipe.zrange(self.keys.parked, 0, -1)
        queued, unacked, parked = pipe.execute()
        targets = {target for raw in queued for target in fetch_targets(raw)}
        # kombu keeps an unacknowledged message as [message, exchange, routing key].
        targets |= {target for raw in unacked for target in fetch_targets(json.loads(raw)[0])}
        targets |= {(p["url"], p.get("crawl_id")) for p in map(json.loads, parked)}
        return targets

    def open_crawls(self) -> Iterator[str]:
        prefix = self.keys.crawl("")
        for key in self.redis.scan_iter(match=f"{prefix}*", count=500):
            crawl_id = _text(key)[len(prefix):]
            if ":" not in crawl_id:
                yield crawl_id

    def lost(self) -> list[tuple[str, str]]:
        """(url, crawl_id) of every URL an open crawl has as queued with no message for it, and
        no outcome staged for the index task either (a failure stays "queued" in its crawl until
        the index task has written it).

        A message on its way between lists (taken off the queue and not yet recorded as
        unacknowledged, or being requeued) is in neither for a moment; so a candidate counts
        only if a second snapshot, read after the crawls, misses it too and it is still queued.
        """
        exists = self.existing()
        candidates = [(_text(url), crawl_id) for crawl_id in self.open_crawls()
                      for url, state in self.redis.hscan_iter(self.keys.crawl(crawl_id))
                      if _text(state) == QUEUED and (_text(url), crawl_id) not in exists]
        if not candidates:
            return []
        exists = self.existing()
        pipe = self.redis.pipeline(transaction=False)
        for url, crawl_id in candidates:
            pipe.hget(self.keys.crawl(crawl_id), url)
            pipe.hexists(self.keys.staged, doc_id(url))
        answers = pipe.execute()
        return [(url, crawl_id) for (url, crawl_id), state, staged
                in zip(candidates, answers[::2], answers[1::2], strict=True)
                if state is not None and _text(state) == QUEUED and not staged and (url, crawl_id) not in exists]

    def run(self, send: Callable[[str, str], None]) -> int:
        lost = self.lost()
        for url, crawl_id in lost:
            send(url, crawl_id)
        return len(lost)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
