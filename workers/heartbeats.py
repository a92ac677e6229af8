"""Worker heartbeats in Redis: which workers are alive, and what each holds.

Each worker's housekeeping (workers/housekeeping.py) beats; its sweep and `status` read who is
alive. Apart from housekeeping, which runs inside Celery's worker, so `status` reads them
without loading Celery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers import redis_clock
from workers.keys import Keys

if TYPE_CHECKING:
    import redis

# Worker heartbeats are per broker database, whatever the index prefix: orphans are a broker matter.
BROKER_KEYS = Keys("")


def live_workers(client: redis.Redis, grace: float, now: float | None = None) -> list[str]:
    """Node names of the workers whose housekeeping beat within the last `grace` seconds of Redis's
    clock (`now`, or Redis's time)."""
    return client.zrangebyscore(BROKER_KEYS.consumers, (redis_clock.sync(client) if now is None else now) - grace,
                                "+inf")


def beat(client: redis.Redis, node: str, tags: set[str], grace: float) -> float:
    """Publish the delivery tags `node` holds and its heartbeat, on Redis's clock; Redis's time."""
    now = redis_clock.sync(client)
    pipe = client.pipeline()
    key = BROKER_KEYS.consumer(node)
    pipe.delete(key)
    if tags:
        pipe.sadd(key, *tags)
        pipe.expire(key, int(grace))
    pipe.zadd(BROKER_KEYS.consumers, {node: now})
    pipe.execute()
    return now


def leave(client: redis.Redis, node: str) -> None:
    """Take `node` off the workers that beat: it stopped cleanly, holding nothing, so a worker
    started again under its name is not taken for one that died (whose start asks for a
    reconciliation, workers/housekeeping.py)."""
    pipe = client.pipeline()
    pipe.zrem(BROKER_KEYS.consumers, node)
    pipe.delete(BROKER_KEYS.consumer(node))
    pipe.execute()
