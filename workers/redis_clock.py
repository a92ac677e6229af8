"""Redis's clock, the one clock every worker shares.

Heartbeats, the times kombu records when it delivers a message, and the sweeps that compare
them are all on it: a worker whose own clock is 28 s behind otherwise looks dead on every sweep,
its messages are requeued and reconciliations requested again and again. Each worker's
housekeeping measures how far its clock is from Redis's every round (`sync`); `now` is the
local clock corrected by that.
"""

from __future__ import annotations

import time

import redis

_local_time = time.time
_offset = 0.0  # Redis's clock minus this process's, as last measured


def sync(client: redis.Redis) -> float:
    """Measure this process's offset from Redis's clock; Redis's time now."""
    global _offset
    before = _local_time()
    seconds, micros = client.time()
    after = _local_time()
    server = seconds + micros / 1_000_000
    _offset = server - (before + after) / 2
    return server


def now() -> float:
    """Redis's time, from the local clock and the last measured offset (no round trip)."""
    return _local_time() + _offset
