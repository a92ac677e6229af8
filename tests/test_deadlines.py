"""The fetch guards' deadline thread: calls come at their time, in order, and never once cancelled."""

import threading
import time

from workers.crawl.deadlines import Deadlines


def test_calls_come_in_deadline_order_and_a_cancelled_one_never_comes():
    deadlines, calls, done = Deadlines(), [], threading.Event()
    now = time.monotonic()
    deadlines.call_at(now + 0.30, lambda: (calls.append("late"), done.set()))
    cancelled = deadlines.call_at(now + 0.10, lambda: calls.append("cancelled"))
    # Added last and due first: it must wake the thread out of its longer wait.
    deadlines.call_at(now + 0.05, lambda: calls.append("early"))
    cancelled.cancel()
    assert done.wait(5)
    assert calls == ["early", "late"]


def test_a_failing_callback_does_not_stop_the_later_ones():
    deadlines, done = Deadlines(), threading.Event()
    now = time.monotonic()
    deadlines.call_at(now, lambda: 1 / 0)
    deadlines.call_at(now + 0.01, done.set)
    assert done.wait(5)


def test_one_thread_serves_every_deadline():
    def named() -> int:
        return sum(t.name == "deadlines" for t in threading.enumerate())

    deadlines, fired, before = Deadlines(), threading.Semaphore(0), named()
    for _ in range(50):
        deadlines.call_at(time.monotonic() + 0.05, fired.release)
    assert all(fired.acquire(timeout=5) for _ in range(50))
    assert named() == before + 1
