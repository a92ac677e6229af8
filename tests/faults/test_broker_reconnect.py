"""The worker's broker connection, dropped the way Celery 5.7 drops it when Redis goes away."""

from __future__ import annotations

import redis
from kombu import Connection, Exchange, Queue

from workers.app import celery_config
from workers.settings import get_settings


def test_a_connection_lost_mid_close_keeps_its_unacknowledged_message(fault_redis):
    """Celery's consumer collects a lost connection, then closes it. Redis was gone during the
    collect, so a fanout queue's delete failed and left the channel open; the second close then
    restored through a discarded transport, and the worker died (workers/fixes/kombu_redis.py)."""
    client = redis.Redis.from_url(fault_redis.url)
    client.flushall()
    conn = Connection(fault_redis.url, transport=celery_config(get_settings())["broker_transport"])
    tasks = Queue("t", Exchange("t"), "t")
    with conn.Producer() as producer:
        producer.publish({"page": 1}, exchange=tasks.exchange, routing_key="t", declare=[tasks])
    held = []
    consumer = conn.Consumer([tasks, Queue("control", Exchange("control", type="fanout"), auto_delete=True)],
                             callbacks=[lambda body, message: held.append(message)])
    consumer.consume()
    conn.drain_events(timeout=5)
    assert len(held) == 1 and client.hlen("unacked") == 1
    consumer.channel._brpop_start()  # waiting for the next message, as the worker's event loop does
    try:
        fault_redis.shutdown()
        try:
            conn.collect(socket_timeout=1)
        except Exception:  # Celery ignores whatever the collect raises; so does this test
            pass
        assert not consumer.channel.closed, "the scenario needs the collect's close to have failed part-way"
        conn.close()  # Celery ignores connection errors here, and nothing else
    finally:
        fault_redis.start()
    # Still held in Redis (AOF) for housekeeping to hand back: not lost with the connection.
    assert redis.Redis.from_url(fault_redis.url).hlen("unacked") == 1
