"""The Redis transport's unacknowledged messages, as housekeeping reads and hands them back.

kombu keeps each delivered, unacknowledged message in a hash, indexed by delivery time in a
sorted set, and puts back those older than the visibility timeout (an hour here) under a
mutex. Housekeeping hands back sooner the messages of a worker that died, through the same
index, mutex and restore, so a message is put back once. None of it is public API: checked
against kombu 5.7.0 (`QoS.unacked_index_key`, `unacked_mutex_key`, `unacked_mutex_expire`,
`restore_by_tag`, `QoS._delivered`, `Mutex`, `MutexHeld`; the contract in tests/test_fixes.py).
"""

from __future__ import annotations

import redis
from kombu.transport.redis import Mutex, MutexHeld, QoS


def delivered_tags(qos: QoS) -> list[str]:
    """The delivery tags of the messages delivered on this channel and not yet acknowledged."""
    return list(qos._delivered)


def delivered_before(client: redis.Redis, qos: QoS, before: float) -> list[str]:
    """Delivery tags of the unacknowledged messages delivered before `before` (kombu's clock)."""
    return client.zrangebyscore(qos.unacked_index_key, "-inf", before)


def restore(client: redis.Redis, qos: QoS, tags: list[str]) -> bool:
    """Put the messages `tags` back at the head of their queues; False, nothing done, while kombu
    is restoring by visibility timeout itself."""
    try:
        with Mutex(client, qos.unacked_mutex_key, qos.unacked_mutex_expire):
            for tag in tags:
                qos.restore_by_tag(tag, client=client, leftmost=True)
    except MutexHeld:
        return False
    return True
