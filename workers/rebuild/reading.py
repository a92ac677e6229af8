"""What a rebuild reads: one `_id` slice of an index, and the raw pages written since a checkpoint.

Chunks are slices of the `_id` keyspace (`slice` on `_id` over a point in time):
Elasticsearch 9 supports neither range nor prefix queries on `_id`, but its slice
hash is stable, so a resumed run re-reads exactly the unfinished chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

from elasticsearch import ApiError, Elasticsearch

from workers.index.indices import IndexNames
from workers.raw_pages import pages_only
from workers.rebuild.errors import LostPointInTime
from workers.search.paging import pages_after

# Raw pages carry their body, so keep scan pages small enough for a worker's memory.
SCAN_PAGE_SIZE = 100
PIT_KEEP_ALIVE = "5m"


def scan_slice(es: Elasticsearch, index: str, query: dict, chunk: int, chunks: int) -> Iterator[dict]:
    """Every hit of `query` in one `_id` slice, through a point in time. A shard whose context was
    lost with its node fails the read (LostPointInTime) rather than leaving its hits out."""
    slice_ = {"field": "_id", "id": chunk, "max": chunks} if chunks > 1 else None
    try:
        for hits in pages_after(es, SCAN_PAGE_SIZE, pit_of=index, keep_alive=PIT_KEEP_ALIVE, query=query,
                                slice=slice_, sort=["_shard_doc"], allow_partial_search_results=False):
            yield from hits
    except ApiError as exc:
        if "search_context_missing" not in str(exc) and "No search context found" not in str(exc):
            raise
        raise LostPointInTime(str(exc)[:300]) from None


def raw_checkpoint(es: Elasticsearch, names: IndexNames) -> dict[str, int]:
    """Highest _seq_no per primary shard of raw-pages, refreshed or not."""
    stats = es.indices.stats(index=names.raw_pages, level="shards", metric="docs")
    (index_stats,) = stats["indices"].values()
    return {
        shard: copy["seq_no"]["max_seq_no"]
        for shard, copies in index_stats["shards"].items()
        for copy in copies if copy["routing"]["primary"]
    }


def raw_written_since(es: Elasticsearch, names: IndexNames, checkpoint: dict[str, int]) -> Iterator[dict]:
    """Raw pages written (or rewritten) after `checkpoint`; _seq_no only orders within a shard."""
    for shard, seq_no in checkpoint.items():
        for hits in pages_after(es, SCAN_PAGE_SIZE, index=names.raw_pages, preference=f"_shards:{shard}",
                                query=pages_only({"range": {"_seq_no": {"gt": seq_no}}}), sort=[{"_seq_no": "asc"}]):
            yield from hits
