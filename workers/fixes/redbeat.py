"""RedBeat through a Redis failover. Checked against celery-redbeat 2.4.2, Celery 5.7.0 and redis-py 8.2
(the canaries: tests/test_fixes.py; the failover: tests/ha/test_beat_failover.py).

RedBeat lets a Redis error out of beat's loop, and beat exits. When a master died, the beat
holding the lock exited on its next renewal; a standby beat, waiting for the lock, had its wait
fail, Celery swallowed the error and its first tick found no lock (AttributeError): both beats
gone, and scheduled discovery with them until someone restarted one. RedBeat's `retry_period`
does not help: it retries commands of its client, not the lock's nor the schedule's pipeline.

Here a Redis error ends one tick, not beat: the beat fires nothing until Redis answers again, then
goes on with the lock if it still holds it. A lock it no longer holds (it lapsed while Redis was
away, or was lost with the old master) sends it back to waiting for the lock like a standby, so
two beats never fire at once.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import redis
from celery.signals import beat_init
from celery.utils.log import get_logger
from redbeat import RedBeatScheduler
from redbeat.schedulers import acquire_distributed_beat_lock, get_redis

logger = get_logger("celery.beat")  # RedBeat's and beat's own logger: one stream for the operator

REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError)  # MasterNotFoundError is a ConnectionError

# The lock is taken in the first tick, where a Redis error is handled, and not when beat starts,
# where Celery logs the error as a failed signal handler and beat goes on without a lock.
beat_init.disconnect(acquire_distributed_beat_lock)


class FailoverScheduler(RedBeatScheduler):
    away_since: float | None = None

    def tick(self, *args, **kwargs) -> float:
        try:
            if self.lock is None and self.lock_key:
                get_redis(self.app).ping()
                self._answered()
                # RedBeat's own wait, as a standby's at start, so the log says the same ("Acquired lock").
                acquire_distributed_beat_lock(SimpleNamespace(scheduler=self))
            interval = super().tick(*args, **kwargs)
        except redis.exceptions.LockNotOwnedError:
            logger.warning("beat: the lock is no longer this beat's (it lapsed, or was lost with the old "
                           "master): firing nothing until it holds the lock again")
            self.lock = None
            return 0.0
        except REDIS_AWAY as exc:
            if self.away_since is None:
                self.away_since = time.monotonic()
                logger.warning("beat: Redis is away (%s): firing nothing until it answers", exc)
            return self.max_interval
        self._answered()
        return interval

    def _answered(self) -> None:
        if self.away_since is not None:
            logger.warning("beat: Redis answers again after %.1f s", time.monotonic() - self.away_since)
            self.away_since = None

    def close(self) -> None:
        try:
            super().close()
        except REDIS_AWAY as exc:
            logger.warning("beat: could not release the lock (%s): another beat takes it once it lapses", exc)
