"""The index runner lock: one index run writes at a time.

The lock belongs to a run, not to a message: its token is the worker's node name and a
random ID drawn when the run starts. A run delivered again (the same message, after its
worker was taken for dead) takes the lock over at once only if the worker that holds it has
stopped beating (workers/housekeeping.py); while that worker still beats, its run goes on
and takes what is staged, and the new delivery leaves it be. Under the task ID, a redelivered
run took the lock as its own while the first run still wrote: two runs wrote at once.
Renewed before every bulk request, and it lasts longer than one bulk request with the
client's retries, so a run that is still writing never loses it to another; a run that did
lose it stops before its next request. The lock is not what keeps writes in order, though:
documents and raw pages are written with external versions from their fetch time
(workers/records.py), so a late older version is refused by Elasticsearch whatever the lock does.
"""

from __future__ import annotations

import uuid

import redis

from workers.clients import ES_MAX_RETRIES
from workers.keys import Keys
from workers.settings import Settings


def runner_ttl(settings: Settings) -> float:
    """How long the lock lasts after a renewal: one bulk request with all the client's retries
    (each up to ELASTICSEARCH_TIMEOUT), and one timeout more. It lasted three timeouts, less
    than one such request (four), and a second run took over from a run still writing."""
    return (ES_MAX_RETRIES + 2) * settings.elasticsearch_timeout


# KEYS[1] lock, KEYS[2] worker heartbeats (node -> Redis time); ARGV token, ttl (ms), grace (s).
# Taken when free, already ours (a renewal), or held by a run whose worker no longer beats.
_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  local beat = redis.call('ZSCORE', KEYS[2], string.match(holder, '^(.*) ') or holder)
  local now = redis.call('TIME')
  if beat and tonumber(beat) >= tonumber(now[1]) + tonumber(now[2]) / 1e6 - tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class IndexRunner:
    """One index run writes at a time, so an older staged version of a page is never
    written after a newer one. Held by one run of worker `node`, renewed before every bulk request."""

    def __init__(self, client: redis.Redis, namespace: str, node: str, ttl: float, grace: float):
        self.key, self.heartbeats = Keys(namespace).index_runner, Keys("").consumers  # heartbeats: per broker
        self.token, self.ttl_ms, self.grace = f"{node} {uuid.uuid4().hex}", int(ttl * 1000), grace
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE_IF_OURS)

    def hold(self) -> bool:
        """Take (or renew) the lock; False if a run of a live worker holds it."""
        return bool(self._take(keys=[self.key, self.heartbeats], args=[self.token, self.ttl_ms, self.grace]))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])
