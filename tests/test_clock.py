"""One clock for heartbeats and delivery times, Redis's: a worker whose own clock is behind does not
look dead, and its messages do not look old (real Redis)."""

from __future__ import annotations

import time
import uuid

from kombu import Connection

import workers.fixes.kombu_redis  # noqa: F401 - puts kombu on Redis's clock

from workers import redis_clock
from workers.heartbeats import BROKER_KEYS, beat, live_workers

SKEW = 300.0  # seconds this "worker" is behind: far more than any grace


def test_a_worker_whose_clock_is_behind_does_not_look_dead(redis_client, monkeypatch):
    node = f"clock-{uuid.uuid4().hex[:6]}@behind"
    monkeypatch.setattr(redis_clock, "_local_time", lambda: time.time() - SKEW)
    try:
        beat(redis_client, node, {"tag-1"}, grace=30)
        monkeypatch.setattr(redis_clock, "_local_time", time.time)  # the sweeper's clock is right
        assert node in live_workers(redis_client, grace=30)
    finally:
        redis_client.zrem(BROKER_KEYS.consumers, node)
        redis_client.delete(BROKER_KEYS.consumer(node))


def test_kombu_stamps_a_delivered_message_with_redis_time(settings, redis_client, monkeypatch):
    """The sweep finds orphans by the time kombu recorded a delivery: it must be Redis's too."""
    from kombu.transport import redis as kombu_redis

    assert kombu_redis.time is redis_clock.now  # kombu's clock, for every stamp it writes
    monkeypatch.setattr(redis_clock, "_local_time", lambda: time.time() - SKEW)
    redis_clock.sync(redis_client)
    queue = f"clock-{uuid.uuid4().hex[:8]}"
    with Connection(settings.redis_url, transport="workers.fixes.kombu_redis:Transport") as connection:
        simple = connection.SimpleQueue(queue)
        try:
            simple.put({"hello": "world"})
            message = simple.get(timeout=10)
            qos = simple.consumer.channel.qos
            stamped = redis_client.zscore(qos.unacked_index_key, message.delivery_tag)
            seconds, micros = redis_client.time()
            assert abs(seconds + micros / 1e6 - stamped) < 5, "stamped with the local clock, not Redis's"
            message.ack()
        finally:
            simple.clear()
            simple.close()
    monkeypatch.setattr(redis_clock, "_local_time", time.time)
    redis_clock.sync(redis_client)
