"""The copy: raw pages re-parsed (or live documents copied) into the target, one `_id` slice per
chunk, and the catch-up, which re-parses the raw pages written since the run's checkpoint.

Chunks write with `create`, so a chunk reading an older copy of a raw page never
overwrites what the crawl has just written to the target through the shadow key;
the catch-up reads newer pages than any chunk did, so it overwrites.

Gone pages: the index task marks the raw page (see workers.records.GoneEntry), so
its state survives every rebuild. Chunks leave out pages deleted as gone and
re-parse flagged ones with `gone: true`; the catch-up, reading pages that went
during the run, deletes them from the target too.

A PDF stored in parts (workers/raw_pages.py) is read whole and re-parsed into
all its documents, a full report into its country chapters, as a fresh fetch would.

Everything the run must remember goes to Redis with each batch: the distinct IDs
it wrote (verification), parse failures and pages that parse again (the failures
index), and why a live document may be missing from the target (the shrink check).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from elasticsearch.helpers import scan

from workers.documents import ReportDocument
from workers.index.bulk import BulkResult, BulkWriteError
from workers.raw_pages import StoredPage, full_body, pages_only
from workers.parse import parse_documents, parse_failure
from workers.rebuild.context import Context
from workers.rebuild.lock import owned_run
from workers.rebuild.reading import raw_checkpoint, raw_written_since, scan_slice
from workers.rebuild.state import REPARSE, RUN_KEY_TTL, RunState, save_run
from workers.records import Failure
from workers.urls import InvalidURL, doc_id, normalize_url

GONE, RENAMED = "gone", "renamed"


# Reads the whole body of a raw page hit (its further parts included).
BodyReader = Callable[[dict], bytes]


def documents_from_raw(raw: StoredPage, body: bytes) -> list[ReportDocument]:
    """The report documents of a stored raw page (a PDF's chapters, or the page's one), exactly as a
    fresh fetch would index them. Raises ParseError when the page cannot be a report."""
    # A flagged page's documents are kept, out of search (deleted ones are never re-parsed).
    return [replace(document, gone=raw.gone).indexable(raw.fetched_at)
            for document in parse_documents(body, raw.final_url, raw.content_type)]


@dataclass
class Batch:
    """Documents for the target plus what the run must remember about them."""

    actions: list[dict] = field(default_factory=list)
    read: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # raw id -> failure record JSON
    parsed: list[str] = field(default_factory=list)  # raw ids
    recovered: list[str] = field(default_factory=list)  # raw ids that failed at fetch time and parse now
    # Why a live document may be missing from the target: its ID, or URL, -> reason (see verify.py).
    dropped: dict[str, str] = field(default_factory=dict)
    gone: int = 0
    # The catch-up's PDFs: container URL -> the chapters it makes now (the others are deleted).
    chapters: dict[str, set[str]] = field(default_factory=dict)

    def add_raw(self, hit: dict, target: str, read_body: BodyReader, *, newer: bool) -> None:
        """Re-parse one raw page. `newer`: written after anything a chunk read (the catch-up), so it
        overwrites, and a page deleted as gone is deleted from the target too."""
        self.read += 1
        raw = StoredPage.from_source(hit["_source"])
        if raw.deleted_as_gone:
            self.gone += 1
            for gone in raw.gone_document_ids:
                self.dropped[gone] = GONE
                if newer:
                    self.actions.append({"_op_type": "delete", "_index": target, "_id": gone})
            return
        known = doc_id(raw.canonical_url) if raw.canonical_url else None
        try:
            body = read_body(hit)
        except LookupError as exc:  # a part missing from the store: this page cannot be rebuilt
            self._fail(hit["_id"], raw, known, "raw_incomplete", str(exc))
            return
        try:
            documents = documents_from_raw(raw, body)
        except Exception as exc:  # noqa: BLE001 - a parser bug costs one page, recorded, not the rebuild
            self._fail(hit["_id"], raw, known, *parse_failure(exc, raw.url))
            return
        self.parsed.append(hit["_id"])
        if raw.source is None:  # stored by a fetch whose parse failed
            self.recovered.append(hit["_id"])
        if known and known not in {document.id for document in documents}:
            self.dropped[known] = RENAMED
        if container := documents[0].container_url:
            # A PDF's chapters as the parser now splits them replace the ones it split before.
            self.dropped[container] = RENAMED
            if newer:
                self.chapters[container] = {document.id for document in documents}
        op = "index" if newer else "create"
        self.actions += [{"_op_type": op, "_index": target, "_id": document.id, "_source": document.to_source()}
                         for document in documents]

    def _fail(self, key: str, raw: StoredPage, known: str | None, reason: str, detail: str) -> None:
        self.failures[key] = Failure(raw.url, "parse", reason, detail, status=raw.status).to_json()
        if known:
            self.dropped[known] = reason
        try:  # a page whose last fetch failed to parse has no canonical URL: its old report has this one
            self.dropped[normalize_url(raw.final_url)] = reason
        except InvalidURL:
            pass

    def add_copy(self, hit: dict, target: str) -> None:
        self.read += 1
        self.actions.append({"_op_type": "create", "_index": target, "_id": hit["_id"], "_source": hit["_source"]})


def body_reader(ctx: Context) -> BodyReader:
    return lambda hit: full_body(ctx.es, ctx.names.raw_pages, hit["_id"], hit["_source"])


def _write(ctx: Context, batch: Batch) -> None:
    """Bulk-write; a `create` that finds the document already there is fine (see the module doc)."""
    try:
        ctx.bulk(batch.actions)
    except BulkWriteError as exc:
        errors = [e for e in exc.result.errors if not (e.status == 409 and e.action["_op_type"] == "create")]
        if errors:
            raise BulkWriteError(BulkResult(exc.result.succeeded, errors)) from exc


def _record(ctx: Context, run_id: str, batch: Batch, read_field: str) -> None:
    def key(what: str) -> str:
        return ctx.keys.rebuild_of(run_id, what)

    # The last action on an ID decides whether the target holds it.
    held = {a["_id"]: a["_op_type"] != "delete" for a in batch.actions}
    pipe = ctx.redis.pipeline()
    if written := [i for i, kept in held.items() if kept]:
        pipe.sadd(key("ids"), *written)
    if deleted := [i for i, kept in held.items() if not kept]:
        pipe.srem(key("ids"), *deleted)
    if batch.parsed:  # a page re-fetched during the run may parse now where it failed before
        pipe.hdel(key("failures"), *batch.parsed)
    if batch.failures:
        pipe.hset(key("failures"), mapping=batch.failures)
    if batch.recovered:
        pipe.sadd(key("recovered"), *batch.recovered)
    if batch.dropped:
        pipe.hset(key("dropped"), mapping=batch.dropped)
    pipe.hincrby(key("read"), read_field, batch.read)
    for name in ("ids", "failures", "recovered", "dropped", "read"):
        pipe.expire(key(name), RUN_KEY_TTL)
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


def _sources(ctx: Context, state: RunState) -> list[tuple[str, dict, Callable[[Batch, dict], None]]]:
    """(index, query, how a hit joins a batch) for everything a chunk reads."""
    read_body = body_reader(ctx)

    def reparse(batch: Batch, hit: dict) -> None:
        batch.add_raw(hit, state.target, read_body, newer=False)

    def copy(batch: Batch, hit: dict) -> None:
        batch.add_copy(hit, state.target)

    if state.mode != REPARSE:
        return [(state.old, {"match_all": {}}, copy)]
    sources = [(ctx.names.raw_pages, pages_only(state.selection.selected()), reparse)]
    if state.selection.filtered:
        sources.append((state.old, state.selection.rest(), copy))
    return sources


def run_chunk(ctx: Context, run_id: str, chunk: int) -> dict:
    """Fill the target with one `_id` slice; idempotent, so a redelivered chunk just runs again.

    Raises StaleRun, before writing anything more, once the run is discarded or
    its owner has lost the lock.
    """
    keys = ctx.keys
    state = owned_run(ctx.redis, keys, run_id)
    if ctx.redis.sismember(keys.rebuild_of(run_id, "done"), chunk):
        return {"chunk": chunk, "skipped": True}
    field_name = str(chunk)
    ctx.redis.hset(keys.rebuild_of(run_id, "read"), field_name, 0)  # a rerun counts from zero again
    stats = {"read": 0, "written": 0, "failed": 0, "gone": 0}
    for index, query, add in _sources(ctx, state):
        hits = scan_slice(ctx.es, index, query, chunk, state.chunks)
        for batch in _batches(hits, ctx.settings.bulk_chunk_size, add):
            owned_run(ctx.redis, keys, run_id)  # never write for a discarded run, or one another rebuild took over
            _write(ctx, batch)
            _record(ctx, run_id, batch, field_name)
            stats["read"] += batch.read
            stats["written"] += len(batch.actions)
            stats["failed"] += len(batch.failures)
            stats["gone"] += batch.gone
    pipe = ctx.redis.pipeline()
    pipe.hset(keys.rebuild_of(run_id, "stats"), field_name, json.dumps(stats))
    pipe.sadd(keys.rebuild_of(run_id, "done"), chunk)
    for name in ("stats", "done"):
        pipe.expire(keys.rebuild_of(run_id, name), RUN_KEY_TTL)
    pipe.execute()
    return {"chunk": chunk, **stats}


def _stale_chapters(ctx: Context, target: str, chapters: dict[str, set[str]]) -> list[dict]:
    """Deletes of the target's chapters of these PDFs that they no longer make. A chunk reading an
    older copy of a PDF creates the chapters it had then, one the crawl has since deleted
    included; without these deletes the catch-up left it there, and it went live."""
    if not chapters:
        return []
    ctx.es.indices.refresh(index=target)
    hits = scan(ctx.es, index=target, query={"query": {"terms": {"container_url": list(chapters)}}},
                _source=["container_url"])
    return [{"_op_type": "delete", "_index": target, "_id": hit["_id"]} for hit in hits
            if hit["_id"] not in chapters.get(hit["_source"].get("container_url"), {hit["_id"]})]


def catch_up(ctx: Context, state: RunState, guard: Callable[[], None]) -> int:
    """Re-parse raw pages written since the run's checkpoint into the target; advance it.

    `guard()` runs before each write and raises if the run may no longer write.
    """
    checkpoint = raw_checkpoint(ctx.es, ctx.names)
    ctx.es.indices.refresh(index=ctx.names.raw_pages)
    read = 0
    hits = raw_written_since(ctx.es, ctx.names, state.checkpoint)
    read_body = body_reader(ctx)
    for batch in _batches(hits, ctx.settings.bulk_chunk_size,
                          lambda b, h: b.add_raw(h, state.target, read_body, newer=True)):
        batch.actions += _stale_chapters(ctx, state.target, batch.chapters)
        guard()
        _write(ctx, batch)
        _record(ctx, state.run_id, batch, "catch-up")
        read += batch.read
    guard()
    state.checkpoint = checkpoint
    save_run(ctx.redis, ctx.keys, state)
    return read
