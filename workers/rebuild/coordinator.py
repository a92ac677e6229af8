"""A rebuild coordinated by the calling process (`report-ingest reindex`): it holds the lock with
its heartbeat throughout, submits the chunks as Celery tasks, shows their progress, and completes
the run itself. (`--detach` and schedules run the same steps as Celery tasks alone: tasks.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from elasticsearch import Elasticsearch

from workers.progress_line import ProgressPrinter
from workers.rebuild.context import Context
from workers.rebuild.lock import LOCK_TTL, RebuildLock
from workers.rebuild.progress import wait_for_chunks
from workers.rebuild.state import DEFAULT_CHUNKS, REPARSE, Selection, check_request
from workers.rebuild.steps import complete, live, pending_chunks, prepare
from workers.rebuild.summary import RebuildSummary
from workers.rebuild.tasks import reindex_chunk
from workers.settings import Settings


def _submit(run_id: str, chunk: int) -> None:
    reindex_chunk.apply_async((run_id, chunk))


def rebuild(
    es: Elasticsearch, client: redis.Redis, settings: Settings, *, mode: str = REPARSE,
    selection: Selection = Selection(), chunks: int = DEFAULT_CHUNKS, keep_old: bool = False,
    resume: bool = False, allow_shrink: bool = False, lock_ttl: float = LOCK_TTL, lock_wait: float | None = None,
    submit: Callable[[str, int], None] = _submit, echo: Callable[[str], None] | None = None,
    interval: float = 0.5,
) -> RebuildSummary:
    """Rebuild the reports index behind its alias; return a summary. Raises RebuildError.

    `submit(run_id, chunk)` starts one chunk (default: a Celery task). Without
    `resume`, an unfinished earlier run is discarded first. `allow_shrink`
    swaps even if the new index lacks live documents the run cannot explain.
    """
    check_request(mode, selection)
    ctx = Context(es, client, settings)
    say = echo or (lambda _message: None)
    started = time.monotonic()
    wait = lock_ttl * 1.5 if lock_wait is None else lock_wait
    with RebuildLock(client, ctx.keys, lock_ttl).acquire(wait, say) as lock:
        state = prepare(ctx, lock, mode=mode, selection=selection, chunks=chunks, keep_old=keep_old,
                        resume=resume, say=say)
        if live(ctx) != state.target:
            for chunk in pending_chunks(ctx, state):
                submit(state.run_id, chunk)
            wait_for_chunks(ctx, state, lock, ProgressPrinter(echo), started, interval)
        summary = complete(ctx, state, lock, allow_shrink)
    return summary.timed(time.monotonic() - started)
