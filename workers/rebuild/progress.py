"""How far a rebuild's chunks are, from the counters they keep in Redis; and waiting for them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from workers import progress_line
from workers.rebuild.context import Context
from workers.rebuild.errors import RebuildError
from workers.rebuild.lock import RebuildLock
from workers.rebuild.state import RunState


@dataclass
class Progress:
    done: int
    total: int
    failures: int
    chunks_done: int
    chunks: int
    elapsed: float

    def line(self) -> str:
        return (
            f"{self.done}/{self.total} documents | chunks {self.chunks_done}/{self.chunks} | "
            f"failures {self.failures} | {progress_line.rate_and_eta(self.done, self.total, self.elapsed, 'docs')}"
        )


def progress(ctx: Context, state: RunState, elapsed: float) -> Progress:
    pipe = ctx.redis.pipeline()
    pipe.hvals(ctx.keys.rebuild_of(state.run_id, "read"))
    pipe.hlen(ctx.keys.rebuild_of(state.run_id, "failures"))
    pipe.scard(ctx.keys.rebuild_of(state.run_id, "done"))
    read, failures, done = pipe.execute()
    read = sum(map(int, read))
    # The total was counted at the start; raw pages the crawl adds meanwhile are read too.
    return Progress(read, max(state.total, read), failures, done, state.chunks, elapsed)


def raise_chunk_errors(ctx: Context, state: RunState) -> None:
    """RebuildError if any chunk failed (its task records why, see tasks.py)."""
    if errors := ctx.redis.hgetall(ctx.keys.rebuild_of(state.run_id, "errors")):
        detail = "; ".join(f"chunk {c}: {e}" for c, e in sorted(errors.items()))
        raise RebuildError(f"{len(errors)} chunk(s) failed: {detail[:1000]}")


def wait_for_chunks(ctx: Context, state: RunState, lock: RebuildLock, show: progress_line.ProgressPrinter,
                    started: float, interval: float) -> None:
    """Until every chunk is done, showing progress; RebuildError if one fails or the lock is lost."""
    while True:
        lock.check()
        snap = progress(ctx, state, time.monotonic() - started)
        show(snap.line(), final=snap.chunks_done == state.chunks)
        raise_chunk_errors(ctx, state)
        if snap.chunks_done == state.chunks:
            return
        time.sleep(interval)
