"""The index runner lock: one index run writes at a time.

Held under the run's task ID, so a run delivered again after its worker died (the same
message) takes its own lock over at once, and writes carefully (workers/index/tasks.py).
Renewed before every bulk request, and it lasts longer than one bulk request with the
client's retries, so a run that is still writing never loses it to another. The lock is
not what keeps writes in order, though: documents and raw pages are written with external
versions from their fetch time (workers/records.py), so a late older version is refused
by Elasticsearch whatever the lock does.
"""

from __future__ import annotations

import redis

from workers.clients import ES_MAX_RETRIES
from workers.keys import Keys
from workers.settings import Settings


def runner_ttl(settings: Settings) -> float:
    """How long the lock lasts after a renewal: one bulk request with all the client's retries
    (each up to ELASTICSEARCH_TIMEOUT), and one timeout more. It lasted three timeouts, less
    than one such request (four), and a second run took over from a run still writing."""
    return (ES_MAX_RETRIES + 2) * settings.elasticsearch_timeout


# KEYS[1] lock; ARGV token, ttl (ms). Taken when free or already ours: a run redelivered
# after its worker died takes its own lock over instead of waiting for it to expire.
_TAKE_IF_FREE_OR_OURS = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class IndexRunner:
    """One index run writes at a time, so an older staged version of a page is never
    written after a newer one. Held under the run's task ID, renewed before every bulk request."""

    def __init__(self, client: redis.Redis, namespace: str, token: str, ttl: float):
        self.key = Keys(namespace).index_runner
        self.token, self.ttl_ms = token, int(ttl * 1000)
        self._take = client.register_script(_TAKE_IF_FREE_OR_OURS)
        self._release = client.register_script(_RELEASE_IF_OURS)

    def hold(self) -> bool:
        """Take (or renew) the lock; False if another run holds it."""
        return bool(self._take(keys=[self.key], args=[self.token, self.ttl_ms]))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])
