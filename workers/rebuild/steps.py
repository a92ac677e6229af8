"""The steps of a run around its chunks, shared by the CLI coordinator (coordinator.py) and the
Celery tasks (tasks.py): start or resume it, and once its chunks are done, complete it (verify,
swap, settle, finish).

Documents crawled during the rebuild are not lost: the index task also writes
them to the target (the shadow key, see `workers.index.tasks.shadow_index`), and
every raw page written after the checkpoint (`_seq_no` above the raw-pages
shards' `max_seq_no` when the shadow was switched on) is re-parsed into the
target before the swap. That also covers an index task that read the shadow key
just before it was set. Pages that go between verification and swap reach only
the old index; the catch-up after the swap (`settle`) applies them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from workers.index.aliases import AliasError, live_index, swap_alias
from workers.index.indices import create_index, replica_settings
from workers.raw_pages import pages_only
from workers.parse import PARSER_VERSION
from workers.rebuild.chunks import GONE
from workers.rebuild.context import Context
from workers.rebuild.errors import RebuildError
from workers.rebuild.lock import RebuildLock
from workers.rebuild.reading import raw_checkpoint
from workers.rebuild.state import COPY, REPARSE, RunState, Selection, load_run, save_run
from workers.rebuild.summary import RebuildSummary
from workers.records import Failure
from workers.rebuild.verify import await_replicas, catch_up_and_verify, restore_settings, settle


def live(ctx: Context) -> str:
    """The index the reports alias serves."""
    try:
        return live_index(ctx.es, ctx.names.reports)
    except AliasError as exc:
        raise RebuildError(str(exc)) from exc


def shadow_on(ctx: Context, target: str, ttl: float) -> None:
    """Dual writes into `target`, for as long as the lock is renewed (see lock.py)."""
    ctx.redis.set(ctx.keys.rebuild_shadow, target, px=int(ttl * 1000))


def discard(ctx: Context, state: RunState) -> None:
    """Forget an unfinished run: shadow off, its half-built index gone (never a live one)."""
    if ctx.redis.get(ctx.keys.rebuild_shadow) == state.target:
        ctx.redis.delete(ctx.keys.rebuild_shadow)
    if state.target != live(ctx):
        ctx.es.options(ignore_status=404).indices.delete(index=state.target)
    ctx.redis.delete(ctx.keys.rebuild_run, *ctx.keys.rebuild_run_keys(state.run_id))


def _start(ctx: Context, lock: RebuildLock, *, mode: str, selection: Selection, chunks: int,
           keep_old: bool) -> RunState:
    es, names = ctx.es, ctx.names
    old = live(ctx)
    run_id = uuid.uuid4().hex[:12]
    target = create_index(
        es, names, "reports", ctx.settings.schemas_dir,
        # Replicas from the start: on a cluster, a node lost mid-copy must not take the only copy of a
        # target shard with it (on a single node, "auto" means none anyway).
        settings={**replica_settings(ctx.settings.elasticsearch_replicas), "refresh_interval": "-1"},
        extra_meta={"parser_version": PARSER_VERSION, "reindex": {"run_id": run_id, "mode": mode}},
    )
    await_replicas(ctx, target)
    state = RunState(run_id, mode, chunks, target, old, datetime.now(UTC).isoformat(timespec="seconds"),
                     source=selection.source, since=selection.since, keep_old=keep_old, owner=lock.token)
    # Checkpoint before the shadow goes on: every raw page written after it is
    # re-parsed by the catch-up, whether or not its index task saw the shadow;
    # every one written before it is visible to the chunks after the refresh.
    state.checkpoint = raw_checkpoint(es, names)
    save_run(ctx.redis, ctx.keys, state)
    shadow_on(ctx, target, lock.ttl)
    es.indices.refresh(index=[names.raw_pages, old])
    if mode == COPY:
        state.total = es.count(index=old)["count"]
    else:
        state.total = es.count(index=names.raw_pages, query=pages_only(selection.selected()))["count"]
        if selection.filtered:
            state.total += es.count(index=old, query=selection.rest())["count"]
    save_run(ctx.redis, ctx.keys, state)
    return state


def prepare(ctx: Context, lock: RebuildLock, *, mode: str, selection: Selection, chunks: int, keep_old: bool,
            resume: bool, say: Callable[[str], None]) -> RunState:
    """Start a run, discarding an unfinished one, or (`resume`) take the unfinished one over:
    its chunks write for the holder of `lock` from now on. Dual writes are on while it fills its target."""
    previous = load_run(ctx.redis, ctx.keys)
    if not resume:
        if previous is not None:
            say(f"discarding unfinished run {previous.run_id} ({previous.target})")
            discard(ctx, previous)
        state = _start(ctx, lock, mode=mode, selection=selection, chunks=chunks, keep_old=keep_old)
        say(f"run {state.run_id}: {mode} {state.total} documents into {state.target} "
            f"({state.chunks} chunks); {state.old} keeps serving")
        return state
    if previous is None:
        raise RebuildError("no interrupted rebuild to resume")
    state = previous
    state.owner, state.lock_ttl = lock.token, None
    save_run(ctx.redis, ctx.keys, state)
    ctx.redis.delete(ctx.keys.rebuild_of(state.run_id, "errors"))
    say(f"resuming run {state.run_id} into {state.target}: "
        f"{ctx.redis.scard(ctx.keys.rebuild_of(state.run_id, 'done'))}/{state.chunks} chunks already done")
    if live(ctx) != state.target:  # a resumed run may have crashed after its swap
        shadow_on(ctx, state.target, lock.ttl)  # again, if it expired with a dead holder
    return state


def pending_chunks(ctx: Context, state: RunState) -> list[int]:
    """The chunks still to run: none once the target serves (a run that crashed after its swap)."""
    if live(ctx) == state.target:
        return []
    done = ctx.redis.smembers(ctx.keys.rebuild_of(state.run_id, "done"))
    return [chunk for chunk in range(state.chunks) if str(chunk) not in done]


def complete(ctx: Context, state: RunState, lock: RebuildLock, allow_shrink: bool) -> RebuildSummary:
    """Once every chunk is done: restore settings, catch up and verify, swap, catch up again, finish."""
    if live(ctx) != state.target:
        restore_settings(ctx, state.target)
        verified = catch_up_and_verify(ctx, state, lock, allow_shrink)
        # Renewed first, so no other rebuild can take over during the call; and if someone moved
        # the alias meanwhile (or a rebuild that took over deleted this target), nothing changes.
        lock.hold()
        swap_alias(ctx.es, ctx.names.reports, state.old, state.target)
    else:
        verified = {"documents": ctx.es.count(index=state.target)["count"], "caught_up": 0}
    verified["caught_up"] += settle(ctx, state, lock)
    return RebuildSummary(**_finish(ctx, state), **verified)


def _sync_failures(ctx: Context, state: RunState) -> int:
    """Make the failures index describe the now-live index: new parse failures in, recovered pages out."""
    failures = ctx.redis.hgetall(ctx.keys.rebuild_of(state.run_id, "failures"))
    recovered = ctx.redis.smembers(ctx.keys.rebuild_of(state.run_id, "recovered")) - failures.keys()
    index = ctx.names.failures
    actions = [{"_op_type": "index", "_index": index, "_id": raw_id, "_source": Failure.from_json(record).to_source()}
               for raw_id, record in failures.items()]
    actions += [{"_op_type": "delete", "_index": index, "_id": raw_id} for raw_id in recovered]
    ctx.bulk(actions)
    return len(failures)


def _finish(ctx: Context, state: RunState) -> dict:
    keys = ctx.keys
    if ctx.redis.get(keys.rebuild_shadow) == state.target:
        ctx.redis.delete(keys.rebuild_shadow)
    failures = _sync_failures(ctx, state) if state.mode == REPARSE else 0
    if not state.keep_old:
        ctx.es.options(ignore_status=404).indices.delete(index=state.old)
    stats = [json.loads(s) for s in ctx.redis.hvals(keys.rebuild_of(state.run_id, "stats"))]
    gone = sum(1 for reason in ctx.redis.hvals(keys.rebuild_of(state.run_id, "dropped")) if reason == GONE)
    ctx.redis.delete(keys.rebuild_run, *keys.rebuild_run_keys(state.run_id))
    return {
        "run_id": state.run_id, "mode": state.mode, "live": state.target, "old": state.old,
        "old_deleted": not state.keep_old, "read": sum(s["read"] for s in stats), "failures": failures,
        "gone": gone,
    }
