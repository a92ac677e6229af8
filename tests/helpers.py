"""Helpers shared by test modules (fixtures stay in conftest.py)."""

from __future__ import annotations

from workers.index.staging import Staging
from workers.index.tasks import BatchWriter
from workers.records import Staged


def write_staged(es, settings, redis_client, entries: list[Staged]) -> int:
    """Stage `entries` and write them as the index task does; how many were written (not refused)."""
    queue = Staging(redis_client, settings.index_prefix)
    for entry in entries:
        queue.put(entry.key, entry.to_json(), trigger_ttl=60)
    return BatchWriter(es, settings, queue).write(queue.take(100), careful=False).written
