"""Zero-downtime rebuilds of the reports index from stored raw pages.

A rebuild fills a new physical index while the `reports` alias keeps serving
the old one, then swaps the alias in one atomic `update_aliases` call:

    lock -> create target (replicas 0, refresh off) -> shadow on -> checkpoint
    -> chunks (Celery tasks) -> restore settings -> catch up + verify -> swap
    -> catch up again if the crawl wrote meanwhile -> shadow off -> failures
    -> delete (or keep) the old index

Chunks are slices of the `_id` keyspace (`slice` on `_id` over a point in
time): Elasticsearch 9 supports neither range nor prefix queries on `_id`, but
its slice hash is stable, so a resumed run re-reads exactly the unfinished
chunks.

Documents crawled during the rebuild are not lost: the index task also writes
them to the target (the shadow key, see `workers.tasks.shadow_index`), and every
raw page written after the checkpoint (`_seq_no` above the raw-pages shards'
`max_seq_no` when the shadow was switched on) is re-parsed into the target
before the swap. That also covers an index task that read the shadow key just
before it was set. Chunks write with `create`, so a chunk reading an older
copy of a raw page never overwrites what the crawl has just written.

Gone pages: the index task marks the raw page (`gone_actions`), so its state
survives every rebuild. Chunks leave out deleted pages and re-parse flagged ones
with `gone: true`; `--copy` copies the live documents as they are. A page that
goes during the rebuild changes its raw page after the checkpoint, so the
catch-up applies it to the target whenever it happened: a delete that a chunk
undid, or a flag the target could not take yet (the index task sends flags to
the live index only, since the target may not hold the report yet). Pages that
go between verification and swap reach only the old index; the catch-up after
the swap applies them.

One rebuild at a time: a Redis lock, renewed by a heartbeat thread. Its token is
the run's owner, and every write checks it: chunks before each bulk write (a
chunk whose run is no longer owned by the lock holder stops), the coordinator
before each catch-up write and, renewing the lock first, right before the swap.
A heartbeat that fails for any reason, or that has not renewed within the lock's
TTL, stops the rebuild. The shadow key expires with the lock, so a dead
coordinator's dual writes stop by themselves; `--resume` switches them on again.

Verification: the target must hold exactly the distinct document IDs the run
wrote (chunks and catch-up, tracked in a Redis set), i.e. raw pages read minus
parse failures minus gone pages minus pages sharing a canonical document; for
`--copy`, the old index's documents. And it must not hold fewer documents than
the live index unless the run explains each one it lacks (its page went, failed
to parse, or now parses into another document); `--allow-shrink` swaps anyway.
A mismatch fails loudly and leaves the old index serving.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Task
from elasticsearch import Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout
from elasticsearch.helpers import scan
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from workers.app import app
from workers.clients import get_es, get_redis
from workers.index import (
    BulkResult, BulkWriteError, IndexNames, bulk_write, create_index, failure_record, indexable,
    load_template,
)
from workers.parse import PARSER_VERSION, ParseError, parse_page
from workers.settings import Settings, get_settings
from workers.urls import InvalidURL, doc_id, normalize_url

log = logging.getLogger(__name__)

REPARSE, COPY = "reparse", "copy"
DEFAULT_CHUNKS = 16
# Raw pages carry their body, so keep scan pages small enough for a worker's memory.
SCAN_PAGE_SIZE = 100
PIT_KEEP_ALIVE = "5m"
# A crashed coordinator blocks the next rebuild for at most this long.
LOCK_TTL = 60.0
CHUNK_TIME_LIMIT = 1800
REBUILD_TIME_LIMIT = 24 * 3600
# Catch-up rounds before giving up on a crawl that never pauses long enough to verify.
VERIFY_ROUNDS = 20
VERIFY_PAUSE = 0.2
# A shortfall must look the same in this many quiet rounds before the swap is refused:
# a crawl's document can reach the old index a moment before the target.
SHRINK_ROUNDS = 2
# Documents the shrink check names in its error.
SHRINK_EXAMPLES = 10
# Run keys outlive a crash long enough for someone to notice and resume.
RUN_KEY_TTL = 7 * 24 * 3600


class RebuildError(Exception):
    """The rebuild stopped; the old index still serves."""


class RebuildLocked(RebuildError):
    """Another rebuild holds the lock."""


class StaleRun(Exception):
    """A chunk belongs to a run that was discarded or finished, or that no rebuild holds the lock for."""


# --- documents -------------------------------------------------------------------


def document_from_raw(raw: dict) -> dict:
    """The report document for a stored raw page, exactly as a fresh fetch would index it.

    Raises ParseError when the page cannot be a report.
    """
    document = parse_page(base64.b64decode(raw["body"]), raw["final_url"], raw.get("content_type"))
    if raw.get("gone"):  # flagged: kept, out of search (deleted ones are never re-parsed)
        document["gone"] = True
    return indexable(document, raw["fetched_at"])


def deleted_as_gone(raw: dict) -> bool:
    return bool(raw.get("gone")) and raw.get("on_gone") != "flag"


def gone_actions(names: IndexNames, raw_id: str, document_id: str, on_gone: str, shadow: str | None) -> list[dict]:
    """Bulk actions for a page that answered 404/410: its report deleted or flagged, its raw page marked.

    The mark is a partial update, so the body stays for the day the page comes
    back (its next good fetch rewrites the raw page whole, mark and all); a
    page with no raw page has nothing a rebuild could bring back. A
    rebuild in progress (`shadow`) gets the delete at once, but not the flag:
    its target may not hold the report yet, and its catch-up re-reads the
    marked raw page anyway (see the module doc).
    """
    flag = on_gone == "flag"
    mark = {"gone": True, "on_gone": "flag" if flag else "delete", "gone_document_id": document_id}
    actions = [{"_op_type": "update", "_index": names.raw_pages, "_id": raw_id, "_source": {"doc": mark},
                "_missing_ok": True}]
    if flag:
        actions.append({"_op_type": "update", "_index": names.reports, "_id": document_id,
                        "_source": {"doc": {"gone": True}}})
    else:
        actions += [{"_op_type": "delete", "_index": index, "_id": document_id}
                    for index in (names.reports, shadow) if index]
    return actions


# --- run state -------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which raw pages are re-parsed; the rest of the live index is copied as it is."""

    source: str | None = None
    since: str | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.source or self.since)

    def _clauses(self) -> list[dict]:
        clauses: list[dict] = []
        if self.source:
            clauses.append({"term": {"source": self.source}})
        if self.since:
            clauses.append({"range": {"fetched_at": {"gte": self.since}}})
        return clauses

    def selected(self) -> dict:
        """Raw pages (and live documents: both carry source and fetched_at) in the selection."""
        return {"bool": {"filter": self._clauses()}}

    def rest(self) -> dict:
        return {"bool": {"must_not": [self.selected()]}}


@dataclass
class RunState:
    run_id: str
    mode: str
    chunks: int
    target: str
    old: str
    started_at: str
    source: str | None = None
    since: str | None = None
    keep_old: bool = False
    total: int = 0
    # Per primary shard of raw-pages: the highest _seq_no already covered.
    checkpoint: dict[str, int] = field(default_factory=dict)
    # The lock token of the coordinator driving the run: chunks write only while it holds the lock.
    owner: str | None = None

    @property
    def selection(self) -> Selection:
        return Selection(self.source, self.since)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunState:
        return cls(**json.loads(text))


class Keys:
    """Redis keys of the rebuild machinery, per index prefix and run."""

    def __init__(self, namespace: str):
        base = f"ri:{namespace}reindex"
        self.lock = f"{base}:lock"
        self.run = f"{base}:run"
        # Read by workers.tasks.shadow_index: the index task writes new documents here too.
        self.shadow = f"{base}:shadow"
        self._base = base

    def of(self, run_id: str, what: str) -> str:
        return f"{self._base}:{run_id}:{what}"

    def run_keys(self, run_id: str) -> list[str]:
        return [self.of(run_id, w)
                for w in ("done", "errors", "read", "ids", "failures", "recovered", "dropped", "stats")]


def load_run(client: redis.Redis, keys: Keys) -> RunState | None:
    text = client.get(keys.run)
    return RunState.from_json(text) if text else None


def owned_run(client: redis.Redis, keys: Keys, run_id: str) -> RunState:
    """The run, if it is still current and the lock holder is its owner; else StaleRun."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.run)
    pipe.get(keys.lock)
    text, holder = pipe.execute()
    state = RunState.from_json(text) if text else None
    if state is None or state.run_id != run_id:
        raise StaleRun(f"run {run_id} was discarded or has finished")
    if state.owner is None or holder != state.owner:
        raise StaleRun(f"run {run_id}: its coordinator no longer holds the rebuild lock")
    return state


def _save_run(client: redis.Redis, keys: Keys, state: RunState) -> None:
    client.set(keys.run, state.to_json(), ex=RUN_KEY_TTL)


# --- reading ---------------------------------------------------------------------


def _scan_slice(es: Elasticsearch, index: str, query: dict, chunk: int, chunks: int) -> Iterator[dict]:
    """Every hit of `query` in one `_id` slice, through a point in time."""
    pit = es.open_point_in_time(index=index, keep_alive=PIT_KEEP_ALIVE)["id"]
    slice_ = {"field": "_id", "id": chunk, "max": chunks} if chunks > 1 else None
    after = None
    try:
        while True:
            response = es.search(
                pit={"id": pit, "keep_alive": PIT_KEEP_ALIVE}, query=query, slice=slice_,
                size=SCAN_PAGE_SIZE, sort=["_shard_doc"], search_after=after, track_total_hits=False,
            )
            pit = response.get("pit_id", pit)
            hits = response["hits"]["hits"]
            if not hits:
                return
            yield from hits
            after = hits[-1]["sort"]
    finally:
        es.close_point_in_time(id=pit)


def raw_checkpoint(es: Elasticsearch, names: IndexNames) -> dict[str, int]:
    """Highest _seq_no per primary shard of raw-pages, refreshed or not."""
    stats = es.indices.stats(index=names.raw_pages, level="shards", metric="docs")
    (index_stats,) = stats["indices"].values()
    return {
        shard: copy["seq_no"]["max_seq_no"]
        for shard, copies in index_stats["shards"].items()
        for copy in copies if copy["routing"]["primary"]
    }


def _raw_written_since(es: Elasticsearch, names: IndexNames, checkpoint: dict[str, int]) -> Iterator[dict]:
    """Raw pages written (or rewritten) after `checkpoint`; _seq_no only orders within a shard."""
    for shard, seq_no in checkpoint.items():
        after = None
        while True:
            response = es.search(
                index=names.raw_pages, preference=f"_shards:{shard}",
                query={"range": {"_seq_no": {"gt": seq_no}}}, sort=[{"_seq_no": "asc"}],
                size=SCAN_PAGE_SIZE, search_after=after, track_total_hits=False,
            )
            hits = response["hits"]["hits"]
            if not hits:
                break
            yield from hits
            after = hits[-1]["sort"]


# --- writing ---------------------------------------------------------------------


GONE, RENAMED = "gone", "renamed"


@dataclass
class Batch:
    """Documents for the target plus what the run must remember about them."""

    actions: list[dict] = field(default_factory=list)
    read: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # raw id -> failure record JSON
    parsed: list[str] = field(default_factory=list)  # raw ids
    recovered: list[str] = field(default_factory=list)  # raw ids that failed at fetch time and parse now
    # Why a live document may be missing from the target: its ID, or URL, -> reason (see _shrinkage).
    dropped: dict[str, str] = field(default_factory=dict)
    gone: int = 0

    def add_raw(self, hit: dict, target: str, *, newer: bool) -> None:
        """Re-parse one raw page. `newer`: written after anything a chunk read (the catch-up), so it
        overwrites, and a page deleted as gone is deleted from the target too."""
        self.read += 1
        raw = hit["_source"]
        if deleted_as_gone(raw):
            self.gone += 1
            self.dropped[raw["gone_document_id"]] = GONE
            if newer:
                self.actions.append({"_op_type": "delete", "_index": target, "_id": raw["gone_document_id"]})
            return
        known = doc_id(raw["canonical_url"]) if raw.get("canonical_url") else None
        try:
            document = document_from_raw(raw)
        except ParseError as exc:
            self._fail(hit, known, "parse_error", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a parser bug costs one page, recorded, not the rebuild
            log.exception("parser crashed on %s", raw["url"])
            self._fail(hit, known, "parser_crash", f"{exc.__class__.__name__}: {exc}")
            return
        self.parsed.append(hit["_id"])
        if raw.get("source") is None:  # stored by a fetch whose parse failed
            self.recovered.append(hit["_id"])
        if known and known != document["id"]:
            self.dropped[known] = RENAMED
        op = "index" if newer else "create"
        self.actions.append({"_op_type": op, "_index": target, "_id": document["id"], "_source": document})

    def _fail(self, hit: dict, known: str | None, reason: str, detail: str) -> None:
        raw = hit["_source"]
        self.failures[hit["_id"]] = json.dumps(
            failure_record(raw["url"], "parse", reason, detail, status=raw.get("status")))
        if known:
            self.dropped[known] = reason
        try:  # a page whose last fetch failed to parse has no canonical URL: its old report has this one
            self.dropped[normalize_url(raw["final_url"])] = reason
        except InvalidURL:
            pass

    def add_copy(self, hit: dict, target: str) -> None:
        self.read += 1
        self.actions.append({"_op_type": "create", "_index": target, "_id": hit["_id"], "_source": hit["_source"]})


def _write(es: Elasticsearch, settings: Settings, batch: Batch) -> None:
    """Bulk-write; a `create` that finds the document already there is fine (see module doc)."""
    try:
        bulk_write(es, batch.actions, chunk_size=settings.bulk_chunk_size, max_retries=settings.bulk_max_retries)
    except BulkWriteError as exc:
        errors = [e for e in exc.result.errors if not (e.status == 409 and e.action["_op_type"] == "create")]
        if errors:
            raise BulkWriteError(BulkResult(exc.result.succeeded, errors)) from exc


def _record(client: redis.Redis, keys: Keys, run_id: str, batch: Batch, read_field: str) -> None:
    # The last action on an ID decides whether the target holds it.
    held = {a["_id"]: a["_op_type"] != "delete" for a in batch.actions}
    pipe = client.pipeline()
    if written := [i for i, kept in held.items() if kept]:
        pipe.sadd(keys.of(run_id, "ids"), *written)
    if deleted := [i for i, kept in held.items() if not kept]:
        pipe.srem(keys.of(run_id, "ids"), *deleted)
    if batch.parsed:  # a page re-fetched during the run may parse now where it failed before
        pipe.hdel(keys.of(run_id, "failures"), *batch.parsed)
    if batch.failures:
        pipe.hset(keys.of(run_id, "failures"), mapping=batch.failures)
    if batch.recovered:
        pipe.sadd(keys.of(run_id, "recovered"), *batch.recovered)
    if batch.dropped:
        pipe.hset(keys.of(run_id, "dropped"), mapping=batch.dropped)
    pipe.hincrby(keys.of(run_id, "read"), read_field, batch.read)
    for name in ("ids", "failures", "recovered", "dropped", "read"):
        pipe.expire(keys.of(run_id, name), RUN_KEY_TTL)
    pipe.execute()


def _batches(hits: Iterator[dict], size: int, add: Callable[[Batch, dict], None]) -> Iterator[Batch]:
    batch = Batch()
    for hit in hits:
        add(batch, hit)
        if batch.read >= size:
            yield batch
            batch = Batch()
    if batch.read:
        yield batch


def run_chunk(es: Elasticsearch, client: redis.Redis, settings: Settings, run_id: str, chunk: int) -> dict:
    """Fill the target with one `_id` slice; idempotent, so a redelivered chunk just runs again.

    Raises StaleRun, before writing anything more, once the run is discarded or
    its coordinator has lost the lock.
    """
    names, keys = IndexNames(settings.index_prefix), Keys(settings.index_prefix)
    state = owned_run(client, keys, run_id)
    if client.sismember(keys.of(run_id, "done"), chunk):
        return {"chunk": chunk, "skipped": True}
    field_name = str(chunk)
    client.hset(keys.of(run_id, "read"), field_name, 0)  # a rerun counts from zero again
    sources: list[tuple[str, dict, Callable[[Batch, dict], None]]] = []
    if state.mode == REPARSE:
        sources.append((names.raw_pages, state.selection.selected(),
                        lambda b, h: b.add_raw(h, state.target, newer=False)))
        if state.selection.filtered:
            sources.append((state.old, state.selection.rest(), lambda b, h: b.add_copy(h, state.target)))
    else:
        sources.append((state.old, {"match_all": {}}, lambda b, h: b.add_copy(h, state.target)))
    stats = {"read": 0, "written": 0, "failed": 0, "gone": 0}
    for index, query, add in sources:
        for batch in _batches(_scan_slice(es, index, query, chunk, state.chunks), settings.bulk_chunk_size, add):
            owned_run(client, keys, run_id)  # never write for a discarded run, or one another rebuild took over
            _write(es, settings, batch)
            _record(client, keys, run_id, batch, field_name)
            stats["read"] += batch.read
            stats["written"] += len(batch.actions)
            stats["failed"] += len(batch.failures)
            stats["gone"] += batch.gone
    pipe = client.pipeline()
    pipe.hset(keys.of(run_id, "stats"), field_name, json.dumps(stats))
    pipe.sadd(keys.of(run_id, "done"), chunk)
    for name in ("stats", "done"):
        pipe.expire(keys.of(run_id, name), RUN_KEY_TTL)
    pipe.execute()
    return {"chunk": chunk, **stats}


def catch_up(es: Elasticsearch, client: redis.Redis, settings: Settings, state: RunState,
             guard: Callable[[], None]) -> int:
    """Re-parse raw pages written since the run's checkpoint into the target; advance it.

    `guard()` runs before each write and raises if the run may no longer write.
    """
    names, keys = IndexNames(settings.index_prefix), Keys(settings.index_prefix)
    checkpoint = raw_checkpoint(es, names)
    es.indices.refresh(index=names.raw_pages)
    read = 0
    hits = _raw_written_since(es, names, state.checkpoint)
    for batch in _batches(hits, settings.bulk_chunk_size, lambda b, h: b.add_raw(h, state.target, newer=True)):
        guard()
        _write(es, settings, batch)
        _record(client, keys, state.run_id, batch, "catch-up")
        read += batch.read
    guard()
    state.checkpoint = checkpoint
    _save_run(client, keys, state)
    return read


# --- progress --------------------------------------------------------------------


@dataclass
class Progress:
    done: int
    total: int
    failures: int
    chunks_done: int
    chunks: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return max(self.total - self.done, 0) / self.rate if self.rate > 0 else None

    def line(self) -> str:
        eta = f"{self.eta:.0f}s" if self.eta is not None else "?"
        return (
            f"{self.done}/{self.total} documents | chunks {self.chunks_done}/{self.chunks} | "
            f"failures {self.failures} | {self.rate:.1f} docs/s | ETA {eta}"
        )


def progress(client: redis.Redis, keys: Keys, state: RunState, elapsed: float) -> Progress:
    pipe = client.pipeline()
    pipe.hvals(keys.of(state.run_id, "read"))
    pipe.hlen(keys.of(state.run_id, "failures"))
    pipe.scard(keys.of(state.run_id, "done"))
    read, failures, done = pipe.execute()
    read = sum(map(int, read))
    # The total was counted at the start; raw pages the crawl adds meanwhile are read too.
    return Progress(read, max(state.total, read), failures, done, state.chunks, elapsed)


class _Printer:
    """One progress line: rewritten in place on a terminal, every few seconds in a log."""

    def __init__(self, echo: Callable[[str], None] | None, every: float = 5.0):
        self.echo, self.every = echo, every
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, line: str, final: bool = False) -> None:
        if self.echo is None:
            return
        now = time.monotonic()
        if self.tty:
            print("\r" + line, end="\n" if final else "", file=sys.stderr, flush=True)
        elif final or now - self.last >= self.every:
            self.echo(line)
            self.last = now


# --- the lock --------------------------------------------------------------------


class _Heartbeat:
    """Keep the lock alive from a thread; once it may have been lost, nothing more is written or swapped.

    Lost means: a renewal found the lock gone or held by someone else, or no
    renewal succeeded for a whole TTL (Redis down, slow, or the thread stuck), after
    which the lock may have expired and been taken.
    """

    def __init__(self, lock: Lock, ttl: float, renewed: Callable[[], None] = lambda: None):
        self.lock, self.ttl, self._renewed = lock, ttl, renewed
        self._lost: str | None = None
        # Monotonic time of the last renewal's request: the lock lives at least a TTL after it.
        self._since = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reindex-lock", daemon=True)

    def _renew(self) -> None:
        sent = time.monotonic()
        self.lock.reacquire()
        self._since = max(self._since, sent)
        self._renewed()

    def _run(self) -> None:
        pause = self.ttl / 3
        while not self._stop.wait(pause):
            try:
                self._renew()
                pause = self.ttl / 3
            except LockError:
                self._lost = "another process holds it, or it expired"
                return
            except Exception as exc:  # noqa: BLE001 - Redis unreachable or slow: retry while the lock may be ours
                log.warning("could not renew the rebuild lock: %s", exc)
                if self._expired():
                    self._lost = f"not renewed for {self.ttl:g}s ({exc.__class__.__name__}: {exc})"
                    return
                pause = self.ttl / 10

    def _expired(self) -> bool:
        return time.monotonic() - self._since >= self.ttl

    def check(self) -> None:
        """Raise RebuildError if the lock may have been lost."""
        lost = self._lost or (f"not renewed for {self.ttl:g}s" if self._expired() else None)
        if lost:
            raise RebuildError(
                f"lost the rebuild lock ({lost}; another rebuild may be running): stopped before writing "
                "or swapping; the old index still serves (`reindex --resume` continues this run)"
            )

    def hold(self) -> None:
        """Renew now: the lock is certainly ours for one TTL, the time a guarded step may take."""
        self.check()
        try:
            self._renew()
        except LockError:
            self._lost = "another process holds it, or it expired"
        except RedisError as exc:
            self._lost = f"could not renew it: {exc}"
        self.check()

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.lock.release()
        except RedisError:
            pass  # not ours any more, or Redis is away: either way it expires by itself


def acquire_lock(client: redis.Redis, keys: Keys, ttl: float, wait: float,
                 say: Callable[[str], None], token: str | None = None) -> Lock:
    """The rebuild lock; `token` (its value while held) names the holder, for fencing."""
    lock = client.lock(keys.lock, timeout=ttl, thread_local=False)
    if lock.acquire(blocking=False, token=token):
        return lock
    say(f"another rebuild holds the lock; waiting up to {wait:.0f}s (a crashed one's lock expires by itself)")
    if not lock.acquire(blocking_timeout=wait, token=token):
        raise RebuildLocked(
            "another rebuild is running (or crashed less than "
            f"{ttl:.0f}s ago and its lock has not expired yet)"
        )
    return lock


# --- the coordinator -------------------------------------------------------------


def live_index(es: Elasticsearch, names: IndexNames) -> str:
    indices = list(es.indices.get_alias(name=names.reports))
    if len(indices) != 1:
        raise RebuildError(f"alias {names.reports} points at {len(indices)} indices: {indices}")
    return indices[0]


def discard(es: Elasticsearch, client: redis.Redis, names: IndexNames, keys: Keys, state: RunState) -> None:
    """Forget an unfinished run: shadow off, its half-built index gone (never a live one)."""
    if client.get(keys.shadow) == state.target:
        client.delete(keys.shadow)
    if state.target != live_index(es, names):
        es.options(ignore_status=404).indices.delete(index=state.target)
    client.delete(keys.run, *keys.run_keys(state.run_id))


def _shadow_on(client: redis.Redis, keys: Keys, target: str, ttl: float) -> None:
    """Dual writes into `target`, for as long as the heartbeat renews them (see _Heartbeat)."""
    client.set(keys.shadow, target, px=int(ttl * 1000))


def _start(es: Elasticsearch, client: redis.Redis, settings: Settings, *, mode: str, selection: Selection,
           chunks: int, keep_old: bool, owner: str, ttl: float) -> RunState:
    names, keys = IndexNames(settings.index_prefix), Keys(settings.index_prefix)
    old = live_index(es, names)
    run_id = uuid.uuid4().hex[:12]
    target = create_index(
        es, names, "reports", settings.schemas_dir,
        settings={"number_of_replicas": 0, "refresh_interval": "-1"},
        extra_meta={"parser_version": PARSER_VERSION, "reindex": {"run_id": run_id, "mode": mode}},
    )
    state = RunState(run_id, mode, chunks, target, old, datetime.now(UTC).isoformat(timespec="seconds"),
                     source=selection.source, since=selection.since, keep_old=keep_old, owner=owner)
    # Checkpoint before the shadow goes on: every raw page written after it is
    # re-parsed by the catch-up, whether or not its index task saw the shadow;
    # every one written before it is visible to the chunks after the refresh.
    state.checkpoint = raw_checkpoint(es, names)
    _save_run(client, keys, state)
    _shadow_on(client, keys, target, ttl)
    es.indices.refresh(index=[names.raw_pages, old])
    if mode == COPY:
        state.total = es.count(index=old)["count"]
    else:
        state.total = es.count(index=names.raw_pages, query=selection.selected())["count"]
        if selection.filtered:
            state.total += es.count(index=old, query=selection.rest())["count"]
    _save_run(client, keys, state)
    return state


def _resume(client: redis.Redis, keys: Keys, state: RunState, owner: str) -> None:
    """Take over an interrupted run: its chunks write for this coordinator from now on."""
    state.owner = owner
    _save_run(client, keys, state)
    client.delete(keys.of(state.run_id, "errors"))


def _wait_for_chunks(client: redis.Redis, keys: Keys, state: RunState, heartbeat: _Heartbeat,
                     printer: _Printer, started: float, interval: float) -> None:
    while True:
        heartbeat.check()
        snap = progress(client, keys, state, time.monotonic() - started)
        printer(snap.line(), final=snap.chunks_done == state.chunks)
        if errors := client.hgetall(keys.of(state.run_id, "errors")):
            detail = "; ".join(f"chunk {c}: {e}" for c, e in sorted(errors.items()))
            raise RebuildError(f"{len(errors)} chunk(s) failed: {detail[:1000]}")
        if snap.chunks_done == state.chunks:
            return
        time.sleep(interval)


def _restore_settings(es: Elasticsearch, settings: Settings, target: str) -> None:
    template = load_template(settings.schemas_dir, "reports")["template"]["settings"]
    es.indices.put_settings(index=target, settings={
        "index.refresh_interval": None,  # back to the default
        "index.number_of_replicas": template.get("number_of_replicas", 1),
    })
    es.indices.refresh(index=target)


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


def _document_ids(es: Elasticsearch, index: str) -> set[str]:
    return {hit["_id"] for hit in scan(es, index=index, _source=False, size=1000)}


def _shrinkage(es: Elasticsearch, client: redis.Redis, keys: Keys, state: RunState) -> Shrinkage | None:
    """None if the target holds at least as many documents as the live index, or the run explains each one
    it lacks: the page went, failed to parse (a recorded failure), or now parses into another document."""
    old_count, new_count = es.count(index=state.old)["count"], es.count(index=state.target)["count"]
    if new_count >= old_count:
        return None
    missing = sorted(_document_ids(es, state.old) - _document_ids(es, state.target))
    found = es.mget(index=state.old, ids=missing, _source=["url"])["docs"] if missing else []
    urls = {d["_id"]: d["_source"].get("url") for d in found if d.get("found")}
    dropped = client.hgetall(keys.of(state.run_id, "dropped"))
    explained: Counter = Counter()
    unexplained = []
    for document_id in missing:
        reason = dropped.get(document_id) or dropped.get(urls.get(document_id) or "")
        if reason:
            explained[reason] += 1
        else:
            unexplained.append(document_id)
    return Shrinkage(old_count, new_count, explained, unexplained, urls) if unexplained else None


def _catch_up_and_verify(es: Elasticsearch, client: redis.Redis, settings: Settings, state: RunState,
                         heartbeat: _Heartbeat, allow_shrink: bool) -> dict:
    """Catch up until the target holds exactly the documents the run wrote, with no write in between,
    and no fewer than the live index unless the run explains why."""
    keys = Keys(settings.index_prefix)
    names = IndexNames(settings.index_prefix)
    caught_up, last, repeats = 0, None, 0
    for _ in range(VERIFY_ROUNDS):
        caught_up += catch_up(es, client, settings, state, heartbeat.check)
        es.indices.refresh(index=[state.target, state.old])
        count = es.count(index=state.target)["count"]
        expected = client.scard(keys.of(state.run_id, "ids"))
        quiet = raw_checkpoint(es, names) == state.checkpoint
        if quiet and count == expected:
            shrinkage = None if allow_shrink else _shrinkage(es, client, keys, state)
            if shrinkage is None:
                return {"documents": count, "caught_up": caught_up}
            repeats = repeats + 1 if shrinkage.unexplained == last else 1
            last = shrinkage.unexplained
            if repeats >= SHRINK_ROUNDS:
                raise RebuildError(shrinkage.message(state))
        # Either the crawl wrote meanwhile, or a dual-write landed before its raw page: look again.
        time.sleep(VERIFY_PAUSE)
    raise RebuildError(
        f"verification failed: {state.target} holds {count} documents, the run wrote {expected} "
        f"distinct ones; the old index {state.old} still serves (re-run, or --resume after fixing)"
    )


def _swap(es: Elasticsearch, names: IndexNames, state: RunState, heartbeat: _Heartbeat) -> None:
    # The lock is renewed first, so no other rebuild can take over during the call; and
    # must_exist: if someone moved the alias meanwhile, the whole call fails and nothing
    # changes (as it does if a rebuild that took over has deleted this run's target).
    heartbeat.hold()
    es.indices.update_aliases(actions=[
        {"remove": {"index": state.old, "alias": names.reports, "must_exist": True}},
        {"add": {"index": state.target, "alias": names.reports, "is_write_index": True}},
    ])


def _settle(es: Elasticsearch, client: redis.Redis, settings: Settings, state: RunState,
            heartbeat: _Heartbeat) -> int:
    """After the swap, catch up with raw pages written since verification: a page flagged gone
    in between reached only the old index (documents reached both, through the shadow)."""
    names = IndexNames(settings.index_prefix)
    caught_up = 0
    for _ in range(VERIFY_ROUNDS):
        if raw_checkpoint(es, names) == state.checkpoint:
            return caught_up
        caught_up += catch_up(es, client, settings, state, heartbeat.check)
    log.warning("run %s: the crawl kept writing after the swap; it writes the live index itself", state.run_id)
    return caught_up


def _sync_failures(es: Elasticsearch, client: redis.Redis, settings: Settings, state: RunState) -> int:
    """Make the failures index describe the now-live index: new parse failures in, recovered pages out."""
    names, keys = IndexNames(settings.index_prefix), Keys(settings.index_prefix)
    failures = client.hgetall(keys.of(state.run_id, "failures"))
    recovered = client.smembers(keys.of(state.run_id, "recovered")) - failures.keys()
    actions = [{"_op_type": "index", "_index": names.failures, "_id": raw_id, "_source": json.loads(record)}
               for raw_id, record in failures.items()]
    actions += [{"_op_type": "delete", "_index": names.failures, "_id": raw_id} for raw_id in recovered]
    bulk_write(es, actions, chunk_size=settings.bulk_chunk_size, max_retries=settings.bulk_max_retries)
    return len(failures)


def _finish(es: Elasticsearch, client: redis.Redis, settings: Settings, state: RunState) -> dict:
    keys = Keys(settings.index_prefix)
    if client.get(keys.shadow) == state.target:
        client.delete(keys.shadow)
    failures = _sync_failures(es, client, settings, state) if state.mode == REPARSE else 0
    if not state.keep_old:
        es.options(ignore_status=404).indices.delete(index=state.old)
    stats = [json.loads(s) for s in client.hvals(keys.of(state.run_id, "stats"))]
    gone = sum(1 for reason in client.hvals(keys.of(state.run_id, "dropped")) if reason == GONE)
    client.delete(keys.run, *keys.run_keys(state.run_id))
    return {
        "run_id": state.run_id, "mode": state.mode, "live": state.target, "old": state.old,
        "old_deleted": not state.keep_old, "read": sum(s["read"] for s in stats), "failures": failures,
        "gone": gone,
    }


def rebuild(
    es: Elasticsearch, client: redis.Redis, settings: Settings, *, mode: str = REPARSE,
    selection: Selection = Selection(), chunks: int = DEFAULT_CHUNKS, keep_old: bool = False,
    resume: bool = False, allow_shrink: bool = False, lock_ttl: float = LOCK_TTL, lock_wait: float | None = None,
    submit: Callable[[str, int], None] | None = None, echo: Callable[[str], None] | None = None,
    interval: float = 0.5,
) -> dict:
    """Rebuild the reports index behind its alias; return a summary. Raises RebuildError.

    `submit(run_id, chunk)` starts one chunk (default: a Celery task). Without
    `resume`, an unfinished earlier run is discarded first. `allow_shrink`
    swaps even if the new index lacks live documents the run cannot explain.
    """
    if mode not in (REPARSE, COPY):
        raise ValueError(f"unknown mode {mode!r}")
    if mode == COPY and selection.filtered:
        raise ValueError("--source/--since select pages to re-parse; --copy copies everything")
    names, keys = IndexNames(settings.index_prefix), Keys(settings.index_prefix)
    submit = submit or (lambda run_id, chunk: reindex_chunk.apply_async((run_id, chunk)))
    say = echo or (lambda _message: None)
    started = time.monotonic()
    owner = uuid.uuid4().hex
    lock = acquire_lock(client, keys, lock_ttl, lock_ttl * 1.5 if lock_wait is None else lock_wait, say, owner)

    def renew_shadow() -> None:  # dual writes live as long as the lock: a dead coordinator's stop by themselves
        client.pexpire(keys.shadow, int(lock_ttl * 1000))

    with _Heartbeat(lock, lock_ttl, renewed=renew_shadow) as heartbeat:
        previous = load_run(client, keys)
        if resume:
            if previous is None:
                raise RebuildError("no interrupted rebuild to resume")
            state = previous
            _resume(client, keys, state, owner)
            say(f"resuming run {state.run_id} into {state.target}: "
                f"{client.scard(keys.of(state.run_id, 'done'))}/{state.chunks} chunks already done")
        else:
            if previous is not None:
                say(f"discarding unfinished run {previous.run_id} ({previous.target})")
                discard(es, client, names, keys, previous)
            state = _start(es, client, settings, mode=mode, selection=selection, chunks=chunks,
                           keep_old=keep_old, owner=owner, ttl=lock_ttl)
            say(f"run {state.run_id}: {mode} {state.total} documents into {state.target} "
                f"({state.chunks} chunks); {state.old} keeps serving")
        if live_index(es, names) != state.target:  # a resumed run may have crashed after its swap
            _shadow_on(client, keys, state.target, lock_ttl)  # again, if it expired with a dead coordinator
            done = client.smembers(keys.of(state.run_id, "done"))
            for chunk in range(state.chunks):
                if str(chunk) not in done:
                    submit(state.run_id, chunk)
            _wait_for_chunks(client, keys, state, heartbeat, _Printer(echo), started, interval)
            _restore_settings(es, settings, state.target)
            verified = _catch_up_and_verify(es, client, settings, state, heartbeat, allow_shrink)
            _swap(es, names, state, heartbeat)
        else:
            verified = {"documents": es.count(index=state.target)["count"], "caught_up": 0}
        verified["caught_up"] += _settle(es, client, settings, state, heartbeat)
        summary = {**_finish(es, client, settings, state), **verified}
    elapsed = time.monotonic() - started
    summary |= {"elapsed": round(elapsed, 2), "docs_per_second": round(summary["documents"] / elapsed, 1)}
    return summary


# --- listing ---------------------------------------------------------------------


@dataclass
class IndexInfo:
    kind: str
    index: str
    documents: int
    live: bool
    rebuilding: bool
    schema_version: int | None
    parser_version: str | None
    analysis: str | None
    created_at: str | None
    doc_parser_versions: dict[str, int]


def list_indices(es: Elasticsearch, client: redis.Redis, names: IndexNames) -> list[IndexInfo]:
    shadow = client.get(Keys(names.prefix).shadow)
    rows = []
    for kind in ("reports", "raw-pages", "failures"):
        alias = names.alias(kind)
        found = es.indices.get(index=f"{alias}-v*", allow_no_indices=True, expand_wildcards="open")
        for index, body in sorted(found.items()):
            meta = body["mappings"].get("_meta", {})
            versions: dict[str, int] = {}
            if kind == "reports":
                aggs = es.search(index=index, size=0, aggs={"v": {"terms": {"field": "parser_version"}}})
                versions = {b["key"]: b["doc_count"] for b in aggs["aggregations"]["v"]["buckets"]}
            rows.append(IndexInfo(
                kind, index, es.count(index=index)["count"], alias in body.get("aliases", {}),
                index == shadow, meta.get("schema_version"), meta.get("parser_version"),
                meta.get("analysis"), meta.get("created_at"), versions,
            ))
    return rows


# --- Celery tasks ----------------------------------------------------------------


class _ChunkTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        """Tell the coordinator, which would otherwise wait for this chunk forever."""
        run_id, chunk = args
        key = Keys(get_settings().index_prefix).of(run_id, "errors")
        get_redis().hset(key, str(chunk), f"{exc.__class__.__name__}: {exc}"[:500])
        get_redis().expire(key, RUN_KEY_TTL)


@app.task(
    bind=True, base=_ChunkTask, name="workers.reindex.reindex_chunk",
    autoretry_for=(ESConnectionError, ConnectionTimeout), retry_backoff=5, retry_backoff_max=120,
    retry_jitter=True, max_retries=5,
    soft_time_limit=CHUNK_TIME_LIMIT - 30, time_limit=CHUNK_TIME_LIMIT,
)
def reindex_chunk(self: Task, run_id: str, chunk: int) -> dict:
    """Fill one `_id` slice of a rebuild's target index."""
    try:
        return run_chunk(get_es(), get_redis(), get_settings(), run_id, chunk)
    except StaleRun as exc:
        log.info("chunk %s stopped: %s", chunk, exc)
        return {"chunk": chunk, "stale": True}


@app.task(
    name="workers.reindex.rebuild_index",
    # Acknowledged on receipt: a crashed rebuild is resumed on purpose, not replayed by the broker.
    acks_late=False, soft_time_limit=REBUILD_TIME_LIMIT - 60, time_limit=REBUILD_TIME_LIMIT,
)
def rebuild_index(mode: str = REPARSE, source: str | None = None, since: str | None = None,
                  chunks: int = DEFAULT_CHUNKS, keep_old: bool = False, resume: bool = False,
                  allow_shrink: bool = False) -> dict:
    """The whole rebuild, for schedules and other systems. Holds one worker slot while chunks run."""
    summary = rebuild(get_es(), get_redis(), get_settings(), mode=mode, selection=Selection(source, since),
                      chunks=chunks, keep_old=keep_old, resume=resume, allow_shrink=allow_shrink, echo=log.info)
    log.info("rebuild finished: %s", summary)
    return summary
