"""The worker freezes its start-up heap and collects the young generation less often (workers/heap.py)."""

from __future__ import annotations

import gc

import pytest
from celery.signals import worker_process_init, worker_ready

import workers.worker  # noqa: F401 - connects the signals, as a worker's start does
from workers.heap import YOUNG_THRESHOLD, freeze_heap


@pytest.fixture
def collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_ready_worker_freezes_what_it_holds(collector):
    gc.unfreeze()
    # A prefork pool process says it started with this signal; a threads-pool worker with worker_ready.
    worker_process_init.send(sender=None)
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_both_kinds_of_worker_start_call_it():
    for signal in (worker_ready, worker_process_init):
        assert freeze_heap in [receiver for _key, receiver in signal.receivers]


def test_the_collector_still_finds_cycles_made_after(collector):
    freeze_heap()

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
