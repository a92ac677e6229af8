"""The index runner lock: one index run writes at a time.

The lock belongs to a run, not to a message: its token is the worker's node name, the host
name, the process ID and a random ID drawn when the run starts. It is a short lease that a
thread of the run renews while the run goes on, however long one bulk request takes; once the
run ends, or its process dies, the lease lapses within LEASE_SECONDS. A lease that outlived its
run therefore costs seconds: a lock whose release the old master acknowledged but never passed
on to the replica it promoted (a Sentinel failover) held every index run off for 150 s when the
lock lasted a whole bulk request with its retries. A run delivered again (the same message)
takes the lock over at once if its holder ran in a process of this host that no longer exists
(a pool process killed mid-run, whose redelivery comes at once); otherwise it leaves a live
holder be, which takes what is staged now too. Under the task ID, a redelivered run took the
lock as its own while the first run still wrote: two runs wrote at once.
The run checks the lock before every bulk request and stops if it was taken over (its lease
lapsed while Redis was away). The lock is not what keeps writes in order, though: documents
and raw pages are written with external versions from their fetch time (workers/records.py),
so a late older version is refused by Elasticsearch whatever the lock does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from workers.keys import Keys

log = logging.getLogger(__name__)
# Renewed four times a lease: a renewal can miss three times (Redis slow, a failover under way)
# before another run may take over. Short, because a lease left behind holds every run off for it.
LEASE_SECONDS = 20.0
RENEWALS_PER_LEASE = 4

# KEYS[1] lock; ARGV token, lease (ms), and a holder known to be dead (or ""). Taken when free,
# already ours (a renewal) or held by that dead holder; otherwise answers the holder.
_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and holder ~= ARGV[3] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class IndexRunner:
    """One index run writes at a time, so an older staged version of a page is never written
    after a newer one. Held by one run of one process of worker `node`."""

    def __init__(self, client: redis.Redis, namespace: str, node: str, lease: float = LEASE_SECONDS):
        self.key, self.lease_ms = Keys(namespace).index_runner, int(lease * 1000)
        self.token = f"{node} {socket.gethostname()} {os.getpid()} {uuid.uuid4().hex}"
        self._client, self._take = client, client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE_IF_OURS)

    def hold(self) -> bool:
        """Take (or renew) the lock; False if a live run holds it."""
        answer = self._try("")
        if answer != 1 and self._died_here(answer):
            answer = self._try(answer)
        return answer == 1

    @contextmanager
    def renewed(self) -> Iterator[None]:
        """The lease renewed by a thread of its own while the block runs: a bulk request of
        many minutes (the client's retries) keeps it, and nothing renews it afterwards."""
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(done,), name="index-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join(self.lease_ms / 1000)

    def _renew_until(self, done: threading.Event) -> None:
        while not done.wait(self.lease_ms / 1000 / RENEWALS_PER_LEASE):
            try:
                if self._try("") != 1:
                    # Taken over after the lease lapsed: the run finds it out before its next request.
                    log.warning("index lease %s was taken over", self.token)
                    return
            except redis.RedisError as exc:  # the next renewal tries again; the lease may lapse meanwhile
                log.warning("could not renew the index lease (%s)", exc)

    def _try(self, dead_holder: str) -> int | str:
        return self._take(keys=[self.key], args=[self.token, self.lease_ms, dead_holder])

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

    def lapses_in(self) -> float:
        """Seconds until the lock lapses unless its holder renews it; 0 if it is free."""
        return max(0, self._client.pttl(self.key)) / 1000

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])
