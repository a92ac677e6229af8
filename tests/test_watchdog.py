"""The threads pool's time limits (workers/watchdog.py): the soft limit reaches the task's thread."""

from __future__ import annotations

import threading
import time

from celery.exceptions import SoftTimeLimitExceeded

from workers.watchdog import Running


def test_soft_limit_is_raised_in_the_overrunning_thread_once():
    running, started, ended = Running(), threading.Event(), []

    def task():
        running.started("t1", soft=5.0, hard=None)
        started.set()
        try:
            while True:  # Python code, where the exception arrives
                time.sleep(0.01)
        except SoftTimeLimitExceeded:
            ended.append("soft limit")
        finally:
            running.ended("t1")

    thread = threading.Thread(target=task)
    thread.start()
    started.wait(5)
    running.check(time.monotonic())  # within the limit: nothing happens
    assert not ended and "t1" in running.tasks
    running.check(time.monotonic() + 10)
    thread.join(10)
    assert ended == ["soft limit"] and running.tasks == {}


def test_a_task_within_its_limits_is_left_alone():
    running = Running()
    running.started("t2", soft=None, hard=None)
    running.check(time.monotonic() + 10_000)
    assert "t2" in running.tasks
    running.ended("t2")
    assert running.tasks == {}
