"""Where this project changes or reaches into another library's behaviour, and nowhere else.

Each fix names the upstream versions it was checked against; pyproject.toml pins those
libraries to the range tested, and tests/test_fixes.py runs the stock component beside each
fix: a canary marked `xfail(strict=True)` fails the day an upgrade no longer shows the bug, so
the fix can go.

| module | library | what |
| --- | --- | --- |
| kombu_redis.py | kombu 5.7.0, with Celery 5.7.0 | the Redis transport: a collected connection's channel raises a connection error (not an AttributeError that stops the worker); delivery stamps on Redis's clock |
| kombu_unacked.py | kombu 5.7.0 | the Redis transport's unacked messages, read and handed back by housekeeping through kombu's own (private) index, mutex and restore |
| celery_results.py | Celery 5.7.0 | tasks that store no result never touch the result backend; a task sent by name subscribes to no result channel |
| redbeat.py | celery-redbeat 2.4.2, with Celery 5.7.0 and redis-py 8.2 | beat outlives a Redis failover: a Redis error ends a tick, not beat, and a beat that lost the lock waits for it again before it fires |
"""
