"""The rebuild's Celery tasks. Their names keep the `workers.reindex.` prefix: queued messages
carry them, and workers/task_names.py routes `workers.reindex.*` to the reindex queue.

A rebuild run as tasks (`reindex --detach`, schedules) is a chain of hand-overs,
so no task waits for another and one worker slot is enough: `rebuild_index`
starts (or resumes) the run under the lock and hands the lock on to a chord of
its chunks (`reindex_chunk`, each renewing it before every write); the chord's
callback, `finish_rebuild`, takes the lock back and completes the run. A CLI-run
rebuild (coordinator.py) submits the same chunks one by one and waits for them.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from celery import Task, chord
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout

from workers.app import app
from workers.rebuild.chunks import run_chunk
from workers.rebuild.context import Context
from workers.rebuild.errors import LostPointInTime, RebuildError, RebuildLocked, StaleRun
from workers.rebuild.lock import LOCK_TTL, RebuildLock
from workers.rebuild.progress import raise_chunk_errors
from workers.rebuild.state import (
    DEFAULT_CHUNKS, REPARSE, RUN_KEY_TTL, RunState, Selection, check_request, load_run, save_run,
)
from workers.rebuild.steps import complete, pending_chunks, prepare
from workers.task_names import CHUNK_TIME_LIMIT, FINISH_REBUILD, REBUILD_INDEX, REINDEX_CHUNK

log = logging.getLogger(__name__)

# Starting a run and completing one (catch-up, verification, swap) each run up to this long.
REBUILD_TIME_LIMIT = 24 * 3600


class _ChunkTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        """Record why, for whoever completes the run (a CLI coordinator waits for every chunk)."""
        run_id, chunk = args
        ctx = Context.current()
        key = ctx.keys.rebuild_of(run_id, "errors")
        ctx.redis.hset(key, str(chunk), f"{exc.__class__.__name__}: {exc}"[:500])
        ctx.redis.expire(key, RUN_KEY_TTL)


@app.task(
    bind=True, base=_ChunkTask, name=REINDEX_CHUNK,
    autoretry_for=(ESConnectionError, ConnectionTimeout, LostPointInTime), retry_backoff=5, retry_backoff_max=120,
    retry_jitter=True, max_retries=5,
    soft_time_limit=CHUNK_TIME_LIMIT - 30, time_limit=CHUNK_TIME_LIMIT,
)
def reindex_chunk(self: Task, run_id: str, chunk: int) -> dict:
    """Fill one `_id` slice of a rebuild's target index."""
    try:
        return run_chunk(Context.current(), run_id, chunk)
    except StaleRun as exc:
        log.info("chunk %s stopped: %s", chunk, exc)
        return {"chunk": chunk, "stale": True}


@app.task(
    bind=True, name=REBUILD_INDEX,
    # Acknowledged on receipt: a crashed rebuild is resumed on purpose, not replayed by the broker.
    acks_late=False, soft_time_limit=REBUILD_TIME_LIMIT - 60, time_limit=REBUILD_TIME_LIMIT,
)
def rebuild_index(self: Task, mode: str = REPARSE, source: str | None = None, since: str | None = None,
                  chunks: int = DEFAULT_CHUNKS, keep_old: bool = False, resume: bool = False,
                  allow_shrink: bool = False, lock_ttl: float = LOCK_TTL, lock_wait: float | None = None) -> dict:
    """The whole rebuild, for schedules and other systems: start it and hand it on to its chunks."""
    selection = Selection(source, since)
    check_request(mode, selection)
    ctx = Context.current()
    try:
        lock = RebuildLock(ctx.redis, ctx.keys, lock_ttl).acquire(0, log.info)
    except RebuildLocked as exc:
        # Waiting here would hold a slot the running rebuild's chunks may need: come back later.
        step = lock_ttl / 3
        wait = lock_ttl * 1.5 if lock_wait is None else lock_wait
        raise self.retry(exc=exc, countdown=step, max_retries=math.ceil(wait / step)) from exc
    with lock:
        state = prepare(ctx, lock, mode=mode, selection=selection, chunks=chunks, keep_old=keep_old,
                        resume=resume, say=log.info)
        if pending := pending_chunks(ctx, state):
            _hand_on(ctx, state, lock, pending, allow_shrink)
            return {"run_id": state.run_id, "chunks": len(pending)}
        summary = complete(ctx, state, lock, allow_shrink).to_dict()
    log.info("rebuild finished: %s", summary)
    return summary


def _hand_on(ctx: Context, state: RunState, lock: RebuildLock, pending: list[int], allow_shrink: bool) -> None:
    """From here the chunks renew the lock (see lock.py), and the chord callback takes it back."""
    state.lock_ttl = lock.ttl
    save_run(ctx.redis, ctx.keys, state)
    lock.hand_on()
    chord([reindex_chunk.si(state.run_id, chunk) for chunk in pending],
          finish_rebuild.s(state.run_id, lock.token, allow_shrink)).apply_async()


@app.task(
    name=FINISH_REBUILD,
    acks_late=False, soft_time_limit=REBUILD_TIME_LIMIT - 60, time_limit=REBUILD_TIME_LIMIT,
)
def finish_rebuild(_chunks: list, run_id: str, owner: str, allow_shrink: bool = False) -> dict:
    """Once a task-run rebuild's chunks are done: take the lock back and complete the run."""
    ctx = Context.current()
    state = load_run(ctx.redis, ctx.keys)
    if state is None or state.run_id != run_id or state.owner != owner:
        log.info("run %s was taken over, discarded or finished meanwhile: nothing to finish", run_id)
        return {"run_id": run_id, "stale": True}
    with RebuildLock(ctx.redis, ctx.keys, state.lock_ttl or LOCK_TTL, owner).take_over() as lock:
        state.lock_ttl = None  # this task's heartbeat renews it from here
        save_run(ctx.redis, ctx.keys, state)
        raise_chunk_errors(ctx, state)
        done = ctx.redis.scard(ctx.keys.rebuild_of(run_id, "done"))
        if done < state.chunks:
            raise RebuildError(f"run {run_id}: only {done}/{state.chunks} chunks done; the old index "
                               "still serves (`reindex --resume` continues this run)")
        summary = complete(ctx, state, lock, allow_shrink).to_dict()
    log.info("rebuild finished: %s", summary)
    return summary
