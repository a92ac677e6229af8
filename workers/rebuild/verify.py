"""Before the swap: the target must hold what the run wrote, and no fewer documents than the live
index unless the run explains each one it lacks. After it: catch up with what went meanwhile.

Verification: the target must hold exactly the distinct document IDs the run
wrote (chunks and catch-up, tracked in a Redis set), i.e. raw pages read minus
parse failures minus gone pages minus pages sharing a canonical document; for
`--copy`, the old index's documents. And it must not hold fewer documents than
the live index unless the run explains each one it lacks (its page went, failed
to parse, or now parses into another document); `--allow-shrink` swaps anyway.
A mismatch fails loudly and leaves the old index serving.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

from elasticsearch.helpers import scan

from workers.rebuild.chunks import catch_up
from workers.rebuild.context import Context
from workers.rebuild.errors import RebuildError
from workers.rebuild.lock import RebuildLock
from workers.rebuild.reading import raw_checkpoint
from workers.rebuild.state import RunState

log = logging.getLogger(__name__)

# Catch-up rounds before giving up on a crawl that never pauses long enough to verify.
VERIFY_ROUNDS = 20
VERIFY_PAUSE = 0.2
# A shortfall must look the same in this many quiet rounds before the swap is refused:
# a crawl's document can reach the old index a moment before the target.
SHRINK_ROUNDS = 2
# Seconds the copy waits for its replicas before the swap.
REPLICA_WAIT = 60
# Documents the shrink check names in its error.
SHRINK_EXAMPLES = 10


def await_replicas(ctx: Context, target: str) -> None:
    """Wait a while for the target's replicas (ELASTICSEARCH_REPLICAS, set at its creation): before
    the copy, so a node lost mid-copy leaves a copy of every shard to go on with (the primary alone
    on the lost node stalled every write until it came back); before the swap, so no index with a
    single copy goes behind the alias while the cluster can hold two. On a single node, at once."""
    health = ctx.es.options(ignore_status=408).cluster.health(
        index=target, wait_for_status="green", timeout=f"{REPLICA_WAIT}s")
    if health["timed_out"]:
        log.warning("%s: replicas not all assigned after %ss (%s); going on with its primaries", target,
                    REPLICA_WAIT, health["status"])


def restore_settings(ctx: Context, target: str) -> None:
    """The refresh interval of a live index, now that the bulk copy is done, and its replicas."""
    ctx.es.indices.put_settings(index=target, settings={"index.refresh_interval": None})  # back to the default
    await_replicas(ctx, target)
    ctx.es.indices.refresh(index=target)


@dataclass
class Shrinkage:
    """Documents of the live index that the target lacks and the run cannot account for."""

    old_count: int
    new_count: int
    explained: Counter
    unexplained: list[str]
    urls: dict[str, str]

    def message(self, state: RunState) -> str:
        shown = ", ".join(f"{i} ({self.urls.get(i, 'no url')})" for i in self.unexplained[:SHRINK_EXAMPLES])
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.explained.items())) or "none"
        return (
            f"refusing to swap: {state.target} would serve {self.new_count} documents where {state.old} "
            f"serves {self.old_count}, and {len(self.unexplained)} documents of the live index are missing "
            f"from it for no reason the run recorded (e.g. {shown}); missing for a reason: {why}. "
            f"The old index still serves. Restore their raw pages (or crawl them again) and re-run, "
            f"or re-run with --allow-shrink to accept the smaller index"
        )


def _document_ids(ctx: Context, index: str) -> set[str]:
    return {hit["_id"] for hit in scan(ctx.es, index=index, _source=False, size=1000)}


def shrinkage(ctx: Context, state: RunState) -> Shrinkage | None:
    """None if the target holds at least as many documents as the live index, or the run explains each one
    it lacks: the page went, failed to parse (a recorded failure), or now parses into another document."""
    es = ctx.es
    old_count, new_count = es.count(index=state.old)["count"], es.count(index=state.target)["count"]
    if new_count >= old_count:
        return None
    missing = sorted(_document_ids(ctx, state.old) - _document_ids(ctx, state.target))
    found = es.mget(index=state.old, ids=missing, _source=["url", "container_url"])["docs"] if missing else []
    urls = {d["_id"]: d["_source"].get("url") for d in found if d.get("found")}
    containers = {d["_id"]: d["_source"].get("container_url") for d in found if d.get("found")}
    dropped = ctx.redis.hgetall(ctx.keys.rebuild_of(state.run_id, "dropped"))
    explained: Counter = Counter()
    unexplained = []
    for document_id in missing:
        reason = (dropped.get(document_id) or dropped.get(urls.get(document_id) or "")
                  or dropped.get(containers.get(document_id) or ""))
        if reason:
            explained[reason] += 1
        else:
            unexplained.append(document_id)
    return Shrinkage(old_count, new_count, explained, unexplained, urls) if unexplained else None


def catch_up_and_verify(ctx: Context, state: RunState, lock: RebuildLock, allow_shrink: bool) -> dict:
    """Catch up until the target holds exactly the documents the run wrote, with no write in between,
    and no fewer than the live index unless the run explains why."""
    caught_up, last, repeats = 0, None, 0
    for _ in range(VERIFY_ROUNDS):
        caught_up += catch_up(ctx, state, lock.check)
        ctx.es.indices.refresh(index=[state.target, state.old])
        count = ctx.es.count(index=state.target)["count"]
        expected = ctx.redis.scard(ctx.keys.rebuild_of(state.run_id, "ids"))
        quiet = raw_checkpoint(ctx.es, ctx.names) == state.checkpoint
        if quiet and count == expected:
            shrunk = None if allow_shrink else shrinkage(ctx, state)
            if shrunk is None:
                return {"documents": count, "caught_up": caught_up}
            repeats = repeats + 1 if shrunk.unexplained == last else 1
            last = shrunk.unexplained
            if repeats >= SHRINK_ROUNDS:
                raise RebuildError(shrunk.message(state))
        # Either the crawl wrote meanwhile, or a dual-write landed before its raw page: look again.
        time.sleep(VERIFY_PAUSE)
    raise RebuildError(
        f"verification failed: {state.target} holds {count} documents, the run wrote {expected} "
        f"distinct ones; the old index {state.old} still serves (re-run, or --resume after fixing)"
    )


def settle(ctx: Context, state: RunState, lock: RebuildLock) -> int:
    """After the swap, catch up with raw pages written since verification: a page flagged gone
    in between reached only the old index (documents reached both, through the shadow)."""
    caught_up = 0
    for _ in range(VERIFY_ROUNDS):
        if raw_checkpoint(ctx.es, ctx.names) == state.checkpoint:
            return caught_up
        caught_up += catch_up(ctx, state, lock.check)
    log.warning("run %s: the crawl kept writing after the swap; it writes the live index itself", state.run_id)
    return caught_up
