"""The fixes of other libraries (workers/fixes/), each beside the stock component it fixes.

A canary runs the stock component and shows the bug is still there: it is marked
`xfail(strict=True)`, so the day an upgrade fixes the bug the canary passes, the run fails,
and the fix can go. Real Redis; no worker.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from celery import Celery
from celery.exceptions import Retry
from kombu import Connection

from workers.fixes import kombu_unacked
from workers.fixes.celery_results import App, Task

STOCK_TRANSPORT = "redis"
FIXED_TRANSPORT = "workers.fixes.kombu_redis:Transport"


def _redis_went() -> None:
    raise redis.ConnectionError("Redis went while the channel was closing")


def collected_channel(url: str, transport: str):
    """A channel of a broker connection Celery collected after losing it, whose close failed part
    way (Redis went while it waited on BRPOP): the channel is still open, its transport let go."""
    connection = Connection(url, transport=transport)
    channel = connection.default_channel
    channel.close = _redis_went
    connection.collect()
    assert channel.connection is not None and channel.connection.client is None
    return channel


@pytest.mark.xfail(strict=True, raises=AttributeError,
                   reason="kombu 5.7.0: a collected connection's channel reconnects through a transport "
                          "with no client, and the AttributeError stops the worker")
def test_stock_kombu_a_collected_channel_fails_with_a_connection_error(settings):
    with pytest.raises(redis.ConnectionError):
        collected_channel(settings.redis_url, STOCK_TRANSPORT)._connparams()


def test_a_collected_channel_fails_with_a_connection_error_celery_ignores(settings):
    with pytest.raises(redis.ConnectionError):
        collected_channel(settings.redis_url, FIXED_TRANSPORT)._connparams()


def sending_app(app_class: type[Celery], url: str) -> Celery:
    app = app_class(f"canary-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update(broker_url=url, result_backend=url, task_ignore_result=True)
    return app


def result_subscriber_after_send(app: Celery, client: redis.Redis) -> bool:
    """Whether sending a task by name opened a subscriber to results (the result kept meanwhile:
    dropping it unsubscribes, the subscriber stays)."""
    queue = f"canary-{uuid.uuid4().hex[:8]}"
    try:
        result = app.send_task("canary.nothing", queue=queue)
        consumer = app.backend.result_consumer
        return bool(result) and (consumer._pubsub is not None or bool(consumer.subscribed_to))
    finally:
        client.delete(queue)
        app.close()


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="Celery 5.7.0: send_task subscribes to the result of a task that stores "
                                       "none, and after a Redis restart that subscriber fails later sends")
def test_stock_celery_send_task_of_a_task_storing_no_result_subscribes_to_nothing(settings, redis_client):
    assert not result_subscriber_after_send(sending_app(Celery, settings.redis_url), redis_client)


def test_send_task_of_a_task_storing_no_result_subscribes_to_nothing(settings, redis_client):
    assert not result_subscriber_after_send(sending_app(App, settings.redis_url), redis_client)


def cancelled_retry_written(task_class: type) -> None:
    """What a worker does for a late-acknowledged task it cancels on a lost broker connection: it
    marks the task's run as a retry on the task's backend (here one that cannot be reached)."""
    app = Celery(f"canary-{uuid.uuid4().hex[:6]}", set_as_current=False, task_cls=task_class)
    app.conf.update(result_backend="redis://127.0.0.1:9/0", task_ignore_result=True,
                    redis_socket_connect_timeout=0.2, result_backend_always_retry=False)

    @app.task(name="canary.nothing")
    def nothing() -> None:
        return None

    try:
        nothing.backend.mark_as_retry(uuid.uuid4().hex, Retry("cancelled by Celery"))
    finally:
        app.close()


@pytest.mark.xfail(strict=True, raises=redis.ConnectionError,
                   reason="Celery 5.7.0: a task that stores no result still writes its cancel as a retry to "
                          "the result backend; with Redis gone that raised and its message was lost")
def test_stock_celery_a_task_storing_no_result_writes_nothing_to_the_result_backend():
    cancelled_retry_written(Celery().Task)


def test_a_task_storing_no_result_writes_nothing_to_the_result_backend():
    cancelled_retry_written(Task)


def test_kombu_unacked_messages_are_found_by_delivery_time_and_restored_once(settings, redis_client):
    """The contract housekeeping relies on (private in kombu 5.7.0): a delivered, unacknowledged
    message is in the unacked index by its delivery time, and a restore puts it back on its queue."""
    queue = f"canary-{uuid.uuid4().hex[:8]}"
    with Connection(settings.redis_url, transport=FIXED_TRANSPORT) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            simple.put({"page": 1})
            message = simple.get(timeout=5)
            qos = simple.channel.qos
            assert message.delivery_tag in kombu_unacked.delivered_tags(qos)
            assert message.delivery_tag in kombu_unacked.delivered_before(redis_client, qos, float("inf"))
            assert kombu_unacked.restore(redis_client, qos, [message.delivery_tag])
            assert redis_client.llen(queue) == 1
            assert message.delivery_tag not in kombu_unacked.delivered_before(redis_client, qos, float("inf"))
        finally:
            simple.clear()
            redis_client.delete(queue)


def beat_scheduler(scheduler_class: type, url: str):
    """A RedBeat scheduler of an app of its own, with nothing scheduled, and Redis errors at once
    (redis-py would retry a refused connection for seconds)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    app = Celery(f"canary-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update(redbeat_redis_url=url, redbeat_redis_options={"retry": Retry(NoBackoff(), 0)},
                    redbeat_key_prefix=f"canary-{uuid.uuid4().hex[:8]}:", redbeat_lock_timeout=5,
                    beat_max_loop_interval=1)
    return scheduler_class(app=app, lazy=True)


def holding_its_lock(scheduler):
    """As if it had taken the lock (there is no Redis to take it from)."""
    from redbeat.schedulers import get_redis

    scheduler.lock = get_redis(scheduler.app).lock(scheduler.lock_key, timeout=scheduler.lock_timeout)
    scheduler.lock.local.token = uuid.uuid4().hex.encode()
    return scheduler


REDIS_AWAY = "redis://127.0.0.1:9/0"  # the discard port: nothing listens


@pytest.mark.xfail(strict=True, raises=redis.ConnectionError,
                   reason="celery-redbeat 2.4.2: a Redis error in a tick leaves beat's loop, and beat exits")
def test_stock_redbeat_a_tick_that_meets_redis_away_leaves_beat_running():
    from redbeat import RedBeatScheduler

    holding_its_lock(beat_scheduler(RedBeatScheduler, REDIS_AWAY)).tick()


def test_a_tick_that_meets_redis_away_fires_nothing_and_leaves_beat_running():
    from workers.fixes.redbeat import FailoverScheduler

    scheduler = holding_its_lock(beat_scheduler(FailoverScheduler, REDIS_AWAY))
    assert scheduler.tick() == scheduler.max_interval


@pytest.mark.xfail(strict=True, raises=AttributeError,
                   reason="celery-redbeat 2.4.2: a standby whose wait for the lock met a Redis error (Celery "
                          "swallows it) has no lock, and its first tick ends beat")
def test_stock_redbeat_a_beat_whose_wait_for_the_lock_failed_takes_it_on_its_next_tick(settings):
    from redbeat import RedBeatScheduler

    beat_scheduler(RedBeatScheduler, settings.redis_url).tick()


def test_a_beat_without_the_lock_takes_it_before_it_fires_and_a_lost_lock_again(settings, redis_client):
    from workers.fixes.redbeat import FailoverScheduler

    scheduler = beat_scheduler(FailoverScheduler, settings.redis_url)
    try:
        scheduler.tick()
        first = scheduler.lock.local.token
        assert redis_client.get(scheduler.lock_key) == first.decode()
        redis_client.delete(scheduler.lock_key)  # lost with the old master, say
        assert scheduler.tick() == 0.0 and scheduler.lock is None
        scheduler.tick()
        assert redis_client.get(scheduler.lock_key) == scheduler.lock.local.token.decode() != first.decode()
    finally:
        redis_client.delete(scheduler.lock_key)
