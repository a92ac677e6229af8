"""How a task may end: with its work done, a failure recorded, or its message delivered again.

Never as an acknowledged loss. Celery acknowledges a late-ack task that raises,
so an error raised while recording a failure (Redis gone, say) would drop the
page silently. Tasks run inside `redelivered_unless_recorded`, which turns
every such error into a requeue; a page that keeps coming back is caught by
the delivery count (`Delivery`) and recorded as poison. A fetch counts per page of its
crawl, whichever message carries it (workers/crawl/tasks.py, PageRun.within_cap).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import kombu.exceptions
import redis
from celery import Task
from celery.exceptions import Reject, Retry

from workers.clients import get_redis
from workers.delivery_lua import uncount_lua
from workers.keys import Keys
from workers.settings import Settings
from workers.urls import PageURL

log = logging.getLogger(__name__)

# The broker or Redis is out of reach: nothing can be recorded, only redelivered.
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)


@contextmanager
def redelivered_unless_recorded(task: Task, settings: Settings) -> Iterator[Delivery]:
    """Requeue the task's message on any error that escapes the task's own failure handling;
    yields this delivery, to be counted.

    SystemExit and friends pass untouched: Celery leaves the message of a task
    it cancelled or whose worker died unacknowledged, for redelivery.
    """
    delivery = Delivery(task, settings)
    try:
        yield delivery
    except (Retry, Reject):
        raise
    except CONNECTION_ERRORS as exc:
        log.warning("%s[%s]: connection lost (%s); the task will be delivered again",
                    task.name, task.request.id, exc)
        delivery.leave_quietly()
        raise Reject(f"connection lost: {exc}", requeue=True) from exc
    except Exception as exc:  # noqa: BLE001 - the failure could not be recorded: keep the message
        log.exception("%s[%s]: could not record how it ended; the task will be delivered again",
                      task.name, task.request.id)
        delivery.leave_quietly()
        raise Reject(f"{exc.__class__.__name__}: {exc}", requeue=True) from exc


# KEYS[1] count; ARGV[1] its lifetime (s), ARGV[2] '1': leave a count above zero as it is, and
# return it negated (the page was in flight when a worker died: see Delivery.count_page). One
# delivery more; the count's lifetime starts with its first, and a count without one (made by an
# older DECR) is given one.
_COUNT = """
if ARGV[2] == '1' then
  local before = tonumber(redis.call('GET', KEYS[1]) or '0')
  if before > 0 then return -before end
end
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_UNCOUNT = uncount_lua("KEYS[1]")

# Deliveries of pages that were in flight when a worker process died run one at a time in each
# process (see Delivery.count_page).
SUSPECTS = threading.Lock()


class Delivery:
    """One delivery of a task's message, and the delivery count it is on (`key`), if any.

    A count is kept per page of a crawl, whichever message carries the page (the original, a
    copy the reconciliation sent, a deferral's, a retry), or per attempt of a task (the message
    itself: a batch of pages, an index run). A delivery is counted when it starts; one that
    finishes, or sends its work on, leaves the count; so only deliveries a worker died in add
    up, and past the cap the page is recorded as poison. A requeue we chose leaves it too
    (`redelivered_unless_recorded`).
    """

    def __init__(self, task: Task, settings: Settings):
        self.task, self.settings = task, settings
        self.keys = Keys(settings.index_prefix)
        self.key: str | None = None

    @property
    def ttl(self) -> int:
        """How long a count is kept: as long as the broker might deliver the task again."""
        return self.settings.visibility_timeout * (self.settings.max_deliveries + 1)

    def count_attempt(self, client: redis.Redis) -> bool:
        """Count this delivery of this attempt of the task; False from the second on (the worker of
        the first died on it)."""
        request = self.task.request
        return bool(self._count(client, self.keys.deliveries(request.id, request.retries), 1))

    def count_page(self, client: redis.Redis, crawl_id: str | None, page: PageURL, *,
                   unless_suspect: bool = False) -> bool | None:
        """Count this delivery of the page; False once MAX_DELIVERIES are on the count.

        A task whose worker keeps dying on it (a parser segfault, memory exhaustion,
        the hard time limit) is requeued each time; this is what ends the loop.

        `unless_suspect`: None, and nothing counted, when the count is above zero. In a threads-pool
        worker a process that dies takes every delivery in flight in it with it, each counted;
        delivered again side by side, the same pages would share the next deaths too, and three
        would make them all `poison`. The caller runs such a delivery holding SUSPECTS, and counts
        it then: the next death is charged to the page that causes it, not to those waiting beside it.
        """
        return self._count(client, self.keys.page_deliveries(crawl_id, page.key), self.settings.max_deliveries,
                           unless_suspect)

    def _count(self, client: redis.Redis, key: str, cap: int, unless_suspect: bool = False) -> bool | None:
        counted = client.eval(_COUNT, 1, key, self.ttl, "1" if unless_suspect else "0")
        if counted < 0:
            return None
        self.key = key
        return counted <= cap

    def uncount(self, client) -> None:
        """Take this delivery off its count, on `client` (a pipeline: its caller executes it, then
        calls `left`)."""
        if self.key is not None:
            client.eval(_UNCOUNT, 1, self.key)

    def left(self) -> None:
        """This delivery is off its count (taken off by `uncount`, or by a script given `key`): a
        requeue must not take it off a second time."""
        self.key = None

    def leave(self, client: redis.Redis) -> None:
        """This delivery finished, or sent its work on: off the count, now."""
        self.uncount(client)
        self.left()

    def leave_quietly(self) -> None:
        """A requeue we chose is not a delivery lost to a dying worker: off the count. Best effort:
        with Redis gone it stays counted, which only brings the cap one delivery nearer."""
        try:
            self.leave(get_redis())
        except redis.RedisError:
            pass
