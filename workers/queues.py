"""How many messages wait on each of the crawl's Celery queues (named in workers/task_names.py).

Apart from the Celery app (workers/app.py), so `status` counts them without loading Celery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.task_names import FETCH_QUEUE, INDEX_QUEUE

if TYPE_CHECKING:
    import redis


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting on the crawl's queues (the Redis transport keeps each as a list of its name)."""
    return {queue: client.llen(queue) for queue in (FETCH_QUEUE, INDEX_QUEUE)}
