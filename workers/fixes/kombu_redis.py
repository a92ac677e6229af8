"""The Redis broker transport, with one fix to how Celery 5.7 drops a lost connection.

Checked against kombu 5.7.0 and Celery 5.7.0 (the canaries: tests/test_fixes.py).

When the broker connection drops, Celery's consumer collects the connection and then closes it
(Consumer.on_connection_error_after_connected). If the collect's channel close failed part-way
(Redis went while the consumer waited on BRPOP), the close runs a second time and restores the
channel's unacknowledged messages through the transport the collect already discarded: an
AttributeError, which Celery does not ignore, and the worker exits ("Unrecoverable error").
tests/faults/test_outages.py hit it in 2 of 8 graceful Redis restarts; tests/faults/test_broker_reconnect.py
reproduces it against a real Redis.

Here that second restore raises a connection error instead, which Celery ignores. The messages
stay in Redis's unacked set, and housekeeping hands them back (workers/housekeeping.py, through kombu_unacked.py).

And kombu (5.7.0) stamps a delivered message with the delivering host's clock (`time()` in
kombu.transport.redis, for the unacked index and its visibility-timeout restore): here with
Redis's (workers/redis_clock.py), which the housekeeping sweep that finds orphans reads too.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis

from workers import redis_clock

kombu_redis.time = redis_clock.now


class _Collected:
    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection was already collected after a connection loss")
        return super()._connparams(asynchronous)


class Channel(_Collected, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_Collected, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    """The same fix when REDIS_URL names Sentinels (workers/sentinel.py)."""

    Channel = SentinelChannel
