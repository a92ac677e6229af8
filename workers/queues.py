"""The Celery queues by name, and how many messages wait on each.

Apart from the Celery app (workers/app.py), so `status` counts them without loading Celery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

FETCH_QUEUE = "fetch"
INDEX_QUEUE = "index"
# Rebuilds run on their own workers, so a long reindex never delays the crawl.
REINDEX_QUEUE = "reindex"


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting on the crawl's queues (the Redis transport keeps each as a list of its name)."""
    return {queue: client.llen(queue) for queue in (FETCH_QUEUE, INDEX_QUEUE)}
