"""Sending again the fetches whose broker message was lost with a connection.

The Redis transport takes a message off its queue (BRPOP) before the worker has
written it to the unacknowledged set. If the connection drops in between (Redis
restarted, a network cut), the message exists nowhere: not queued, not
unacknowledged, so neither the visibility timeout nor housekeeping's orphan sweep
can bring it back. The same goes for a worker killed in between. A Redis killed
outright also loses its last second of writes (AOF everysec). The crawl's
progress hash still says the URL is queued.

So housekeeping asks for a reconciliation when a worker reconnects to the broker,
restarts under the name of one that died, or stays dead (workers/housekeeping.py); a
worker that stopped cleanly has left the live workers, and starting it again asks for none.
One worker claims it under a lease and runs it in steps of bounded work, whatever
the size of the crawls (`lost_fetches`):

1. the queued URLs of every open crawl, read a page at a time, become candidates,
   kept as 8-byte hashes in this process (8 MB for a million);
2. every message that exists strikes its pages off: the fetch queue read a page at a
   time from its head (new messages are pushed there, so a page read twice is the only
   effect of pushes, and the head is read again down to where the pass began), then
   the unacknowledged messages and the parked pages, in that order, so a message
   taken off the queue meanwhile is found where it went;
3. a candidate left is sent again if its URL is still queued and has no outcome
   staged (a failure stays "queued" in its crawl until the index task writes it).

URLs added after the pass began are not candidates, so a crawl starting meanwhile is
not sent twice. A message restored from the unacknowledged set to the queue while
step 2 reads them may be missed by both reads: its URL is sent a second time, which
costs a conditional fetch (tasks are idempotent). A worker that dies mid-run lets its
lease expire, and another worker runs the claimed request again from the start.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from array import array
from collections.abc import Iterable, Iterator

import orjson
import redis

from workers.crawl.parked import Parked
from workers.tracking.progress import QUEUED
from workers.keys import Keys
from workers.task_names import FETCH_PAGE, FETCH_PAGES
from workers.urls import doc_id

# Items one Redis command reads: about 0.3 MB of queued messages, well under a millisecond of Redis.
PAGE = 1000

# KEYS: request, claimed, lease; ARGV: now, node, lease ms. A run already claimed whose lease expired
# (its worker died) is taken over; otherwise a request that is due is moved to `claimed`.
_CLAIM = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local due = redis.call('GET', KEYS[1])
  if (not due) or tonumber(due) > tonumber(ARGV[1]) then return 0 end
  redis.call('RENAME', KEYS[1], KEYS[2])
end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 1
"""
# KEYS: lease[, claimed]; ARGV: node, lease ms. Renews the lease if it is still ours; with `claimed`,
# ends the run instead.
_RENEW_OR_END = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if KEYS[2] then redis.call('DEL', KEYS[1], KEYS[2]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


def fetch_targets(message: str | bytes | dict) -> list[tuple[str, str | None]]:
    """(url, crawl_id) of each page a kombu message of fetch_page or fetch_pages names; none for
    any other message."""
    if not isinstance(message, dict):
        message = orjson.loads(message)
    task = message.get("headers", {}).get("task")
    if task not in (FETCH_PAGE, FETCH_PAGES):
        return []
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = orjson.loads(body)
    first = "url" if task == FETCH_PAGE else "urls"
    call = dict(zip((first, "crawl_id"), args)) | kwargs
    urls = [call["url"]] if task == FETCH_PAGE else call["urls"]
    return [(url, call.get("crawl_id")) for url in urls]


def page_hash(url: str, crawl_id: str) -> int:
    """The 64-bit hash a page of a crawl is known by during a pass."""
    return int.from_bytes(hashlib.blake2b(f"{crawl_id} {url}".encode(), digest_size=8).digest(), "big")


class Candidates:
    """The queued pages of a pass, as sorted hashes, and which of them a message was found for."""

    def __init__(self, hashes: Iterable[int]):
        self.hashes = array("Q", sorted(set(hashes)))
        self.found = bytearray(len(self.hashes))

    def __len__(self) -> int:
        return len(self.hashes)

    def _at(self, value: int) -> int | None:
        i = bisect.bisect_left(self.hashes, value)
        return i if i < len(self.hashes) and self.hashes[i] == value else None

    def strike(self, targets: Iterable[tuple[str, str | None]]) -> None:
        for url, crawl_id in targets:
            if crawl_id is not None and (i := self._at(page_hash(url, crawl_id))) is not None:
                self.found[i] = 1

    def left(self, url: str, crawl_id: str) -> bool:
        i = self._at(page_hash(url, crawl_id))
        return i is not None and not self.found[i]

    @property
    def left_count(self) -> int:
        return len(self.found) - sum(self.found)


class Reconciler:
    def __init__(self, client: redis.Redis, namespace: str, queue: str, *, unacked_key: str = "unacked",
                 page: int = PAGE):
        self.redis, self.keys, self.queue, self.unacked_key = client, Keys(namespace), queue, unacked_key
        self.page = page
        self.parked = Parked(client, namespace)
        self._claim = client.register_script(_CLAIM)
        self._renew_or_end = client.register_script(_RENEW_OR_END)

    # --- who runs it ------------------------------------------------------------------

    def request(self, due: float) -> None:
        """Ask for a reconciliation from `due` on (an earlier pending request stands)."""
        self.redis.set(self.keys.reconcile, due, nx=True)

    def claim(self, now: float, node: str = "", lease: float = 30.0) -> bool:
        """True for the one worker that runs the due request (or takes over a run whose worker died)."""
        return bool(self._claim(keys=[self.keys.reconcile, self.keys.reconcile_claimed, self.keys.reconcile_lease],
                                args=[now, node, int(lease * 1000)]))

    def renew(self, node: str = "", lease: float = 30.0) -> bool:
        """Keep the run ours; False if the lease was lost (another worker runs it now)."""
        return bool(self._renew_or_end(keys=[self.keys.reconcile_lease], args=[node, int(lease * 1000)]))

    def end(self, node: str = "") -> None:
        self._renew_or_end(keys=[self.keys.reconcile_lease, self.keys.reconcile_claimed], args=[node, 0])

    # --- the pass ---------------------------------------------------------------------

    def lost_fetches(self) -> Iterator[list[tuple[str, str]]]:
        """One pass (module doc); yields after every Redis command or two, with the (url, crawl_id)
        pages found lost since the last yield, so its caller can renew its lease, send, and stop."""
        hashes = array("Q")
        for crawl_id, page in self._queued_pages():
            hashes.extend(page_hash(url, crawl_id) for url in page)
            yield []
        candidates = Candidates(hashes)
        del hashes
        if not candidates:
            return
        for targets in self._existing_messages():
            candidates.strike(targets)
            yield []
        if not candidates.left_count:
            return
        for crawl_id, page in self._queued_pages():
            left = [url for url in page if candidates.left(url, crawl_id)]
            yield self._confirm(crawl_id, left) if left else []

    def _queued_pages(self) -> Iterator[tuple[str, list[str]]]:
        """(crawl ID, its URLs in state queued) a page of the crawl hash at a time, for every open crawl."""
        for crawl_id in self.redis.sscan_iter(self.keys.open_crawls, count=self.page):
            key, cursor = self.keys.crawl(crawl_id), None
            while cursor != 0:
                cursor, states = self.redis.hscan(key, cursor or 0, count=self.page)
                yield crawl_id, [url for url, state in states.items() if state == QUEUED]

    def _existing_messages(self) -> Iterator[list[tuple[str, str | None]]]:
        """The pages of every fetch message that exists, a command's read at a time (module doc, 2)."""
        head, start = None, 0
        while True:
            raw = self.redis.lrange(self.queue, start, start + self.page - 1)
            head = head if head is not None or not raw else raw[0]
            yield [target for message in raw for target in fetch_targets(message)]
            if len(raw) < self.page:
                break
            start += len(raw)
        if head is not None:  # what was pushed at the head while the queue was read
            start = 0
            while True:
                raw = self.redis.lrange(self.queue, start, start + self.page - 1)
                new = raw[:raw.index(head)] if head in raw else raw
                yield [target for message in new for target in fetch_targets(message)]
                if len(new) < len(raw) or len(raw) < self.page:
                    break
                start += len(raw)
        cursor = None
        while cursor != 0:
            # kombu keeps an unacknowledged message as [message, exchange, routing key].
            cursor, unacked = self.redis.hscan(self.unacked_key, cursor or 0, count=self.page)
            yield [target for raw in unacked.values() for target in fetch_targets(orjson.loads(raw)[0])]
        yield from self.parked.scan(self.page)

    def _confirm(self, crawl_id: str, urls: list[str]) -> list[tuple[str, str]]:
        """Those of `urls` still queued in the crawl, with no outcome staged."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.crawl(crawl_id), urls)
        for url in urls:
            pipe.hexists(self.keys.staged, doc_id(url))
        states, *staged = pipe.execute()
        return [(url, crawl_id) for url, state, done in zip(urls, states, staged, strict=True)
                if state == QUEUED and not done]
