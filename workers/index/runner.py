"""The index runner lock: one index run writes at a time.

The lock belongs to a run, not to a message: its token is the worker's node name, the host
name, the process ID and a random ID drawn when the run starts. A run delivered again (the
same message) takes the lock over at once only if the run that holds it is gone: its worker
has stopped beating (workers/housekeeping.py), or it ran in a process of this host that no
longer exists (a pool process killed mid-run, whose node lives on or was restarted). While the holder lives, its run goes on and
takes what is staged, and the new delivery leaves it be. Under the task ID, a redelivered
run took the lock as its own while the first run still wrote: two runs wrote at once.
Renewed before every bulk request, and it lasts longer than one bulk request with the
client's retries, so a run that is still writing never loses it to another; a run that did
lose it stops before its next request. The lock is not what keeps writes in order, though:
documents and raw pages are written with external versions from their fetch time
(workers/records.py), so a late older version is refused by Elasticsearch whatever the lock does.
"""

from __future__ import annotations

import os
import socket
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


# KEYS[1] lock, KEYS[2] worker heartbeats (node -> Redis time); ARGV token, ttl (ms), grace (s),
# and a holder known to be dead (or ""). Taken when free, already ours (a renewal), held by a run
# whose worker no longer beats, or by that dead holder; otherwise answers the holder.
_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and holder ~= ARGV[4] then
  local beat = redis.call('ZSCORE', KEYS[2], string.match(holder, '^(.+) %S+ %d+ %x+$') or holder)
  local now = redis.call('TIME')
  if beat and tonumber(beat) >= tonumber(now[1]) + tonumber(now[2]) / 1e6 - tonumber(ARGV[3]) then
    return holder
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
    """One index run writes at a time, so an older staged version of a page is never written
    after a newer one. Held by one run of one process of worker `node`, renewed before every
    bulk request."""

    def __init__(self, client: redis.Redis, namespace: str, node: str, ttl: float, grace: float):
        self.key, self.heartbeats = Keys(namespace).index_runner, Keys("").consumers  # heartbeats: per broker
        self.ttl_ms, self.grace = int(ttl * 1000), grace
        self.token = f"{node} {socket.gethostname()} {os.getpid()} {uuid.uuid4().hex}"
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE_IF_OURS)

    def hold(self) -> bool:
        """Take (or renew) the lock; False if a live run holds it."""
        answer = self._try("")
        if answer != 1 and self._died_here(answer):
            answer = self._try(answer)
        return answer == 1

    def _try(self, dead_holder: str) -> int | str:
        return self._take(keys=[self.key, self.heartbeats], args=[self.token, self.ttl_ms, self.grace, dead_holder])

    def _died_here(self, holder: str) -> bool:
        """Whether `holder` ran in a process of this host that is gone: a worker process killed
        mid-run, whose node another process (or its own restart) keeps beating; its redelivered
        run must not wait for the lock to lapse."""
        parts = holder.split(" ")
        if len(parts) != 4 or parts[1] != socket.gethostname() or not parts[2].isdigit():
            return False
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])
