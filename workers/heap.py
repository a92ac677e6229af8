"""The worker process's heap, kept out of the garbage collector's way.

A worker imports Celery, kombu, redis-py, Elasticsearch's client, lxml and the
parsers before its first task: over 100,000 objects that live as long as the
process. Parsing a page allocates tens of thousands of short-lived objects, so
CPython's collector ran every 700 allocations, and each full collection walked
the long-lived objects again. Frozen once the worker is ready, they are skipped,
and the youngest generation is collected less often. Reference counting frees
nearly all of a page's objects anyway; the collector is there for cycles, and
still finds them. Measured in docs/benchmarks.md ("The garbage collector").
"""

from __future__ import annotations

import gc

from celery.signals import worker_process_init, worker_ready

# Allocations (net of frees) before the youngest generation is collected; CPython's default is 700.
YOUNG_THRESHOLD = 10_000


def freeze_heap(**_signal) -> None:
    """Move every object alive now out of the collector's generations, and collect the young less often."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


# A threads-pool worker is ready after its imports; a prefork pool process starts after its fork.
worker_ready.connect(freeze_heap, weak=False)
worker_process_init.connect(freeze_heap, weak=False)
