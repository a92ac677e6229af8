"""How a task may end: with its work done, a failure recorded, or its message delivered again.

Never as an acknowledged loss. Celery acknowledges a late-ack task that raises,
so an error raised while recording a failure (Redis gone, say) would drop the
page silently. Tasks run inside `redelivered_unless_recorded`, which turns
every such error into a requeue; a page that keeps coming back is caught by
the delivery counter and recorded as poison. A fetch counts per page of its
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

from workers.delivery_lua import uncount_lua
from workers.keys import Keys
from workers.settings import Settings

log = logging.getLogger(__name__)

# The broker or Redis is out of reach: nothing can be recorded, only redelivered.
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)


@contextmanager
def redelivered_unless_recorded(task: Task) -> Iterator[None]:
    """Requeue the task's message on any error that escapes the task's own failure handling.

    SystemExit and friends pass untouched: Celery leaves the message of a task
    it cancelled or whose worker died unacknowledged, for redelivery.
    """
    try:
        yield
    except (Retry, Reject):
        raise
    except CONNECTION_ERRORS as exc:
        log.warning("%s[%s]: connection lost (%s); the task will be delivered again",
                    task.name, task.request.id, exc)
        _uncount(task)
        raise Reject(f"connection lost: {exc}", requeue=True) from exc
    except Exception as exc:  # noqa: BLE001 - the failure could not be recorded: keep the message
        log.exception("%s[%s]: could not record how it ended; the task will be delivered again",
                      task.name, task.request.id)
        _uncount(task)
        raise Reject(f"{exc.__class__.__name__}: {exc}", requeue=True) from exc


# KEYS[1] count; ARGV[1] its lifetime (s), ARGV[2] '1': leave a count above zero as it is, and
# return it negated (the page was in flight when a worker died: see within_delivery_cap). One
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


def uncount(client, key: str) -> None:
    """Take one finished delivery off the count `key`; `client` may be a pipeline."""
    client.eval(_UNCOUNT, 1, key)


def _uncount(task: Task) -> None:
    """A requeue we chose is not a delivery lost to a dying worker: take it off the poison count.
    Best effort: with Redis gone it stays counted, which only brings the cap one delivery nearer."""
    key = getattr(task.request, "delivery_key", None)
    if key is None:
        return
    from workers.clients import get_redis

    try:
        uncount(get_redis(), key)
    except redis.RedisError:
        pass


def delivery_ttl(settings: Settings) -> int:
    """How long a delivery count must be kept: as long as the broker might deliver the task again."""
    return settings.visibility_timeout * (settings.max_deliveries + 1)


def attempt_key(task: Task, namespace: str) -> str:
    """The delivery count of this attempt of this task (the message that carries it)."""
    return Keys(namespace).deliveries(task.request.id, task.request.retries)


# Deliveries of pages that were in flight when a worker process died run one at a time in each
# process (see within_delivery_cap).
SUSPECTS = threading.Lock()


def within_delivery_cap(task: Task, client: redis.Redis, key: str, cap: int, ttl: int, *,
                        unless_suspect: bool = False) -> bool | None:
    """Count this delivery on `key` (`attempt_key`, or Keys.page_deliveries: a crawl page's,
    whichever message carries it); False once the count is past `cap`.

    A task whose worker keeps dying on it (a parser segfault, memory exhaustion,
    the hard time limit) is requeued each time; this is what ends the loop.

    `unless_suspect`: None, and nothing counted, when the count is above zero. In a threads-pool
    worker a process that dies takes every delivery in flight in it with it, each counted;
    delivered again side by side, the same pages would share the next deaths too, and three
    would make them all `poison`. The caller runs such a delivery holding SUSPECTS, and counts
    it then: the next death is charged to the page that causes it, not to those waiting beside it.
    """
    counted = client.eval(_COUNT, 1, key, ttl, "1" if unless_suspect else "0")
    if counted < 0:
        return None
    task.request.delivery_key = key
    return counted <= cap
