"""Earlier versions of a page: when a page's content changes, its previous raw page is kept.

A narrative revised in place (same URL, new text) would otherwise be overwritten with no trace.
Before a batch is written, the raw pages it replaces are looked up (content hash only); each
whose content differs is copied, as it was, to `<id>@<fetched_at>` with `revision_of: <id>` in
the raw-pages index, and the versions past the newest `REVISIONS_KEPT` are deleted. A page
written unchanged (a recrawl) keeps no version. Revisions live beside the pages they revise,
so a rebuild of the reports index (which reads pages only, never revisions: raw_pages.pages_only)
keeps them. A page stored in parts (a large PDF) keeps no revisions: copying every part of a
30 MB report on each change is more than an edition view needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from workers.records import RawPage

# Raw-page fields that belong to the live page, not to one version of it.
_LIVE_ONLY = ("gone", "on_gone", "gone_document_id")


def revision_id(key: str, fetched_at: str) -> str:
    return f"{key}@{fetched_at}"


def revision_actions(es: Elasticsearch, index: str, raws: dict[str, RawPage], kept: int) -> Iterator[tuple[str, dict]]:
    """(page key, bulk action) that keep the previous version of every page in `raws` (key -> the
    raw page about to be written) whose stored content differs, and drop versions past `kept`."""
    if kept <= 0 or not raws:
        return
    stored = es.mget(index=index, ids=list(raws), source_includes=["content_sha256", "parts"])["docs"]
    changed = [doc["_id"] for doc in stored if doc.get("found") and (doc["_source"].get("parts") or 1) == 1
               and doc["_source"].get("content_sha256") != raws[doc["_id"]].content_sha256]
    if not changed:
        return
    previous = es.mget(index=index, ids=changed)["docs"]
    searches: list[dict] = []
    for key in changed:
        searches += [{"index": index}, {"query": {"term": {"revision_of": key}}, "sort": [{"fetched_at": "desc"}],
                                        "size": kept + 10, "_source": False}]
    older = es.msearch(searches=searches)["responses"]
    for doc, found in zip(previous, older, strict=True):
        key, source = doc["_id"], {k: v for k, v in doc["_source"].items() if k not in _LIVE_ONLY}
        yield key, {"_op_type": "index", "_index": index, "_id": revision_id(key, source["fetched_at"]),
                    "_source": {**source, "revision_of": key}}
        # The version kept now is the newest: kept - 1 of the older ones stay.
        for hit in found.get("hits", {}).get("hits", [])[kept - 1:]:
            yield key, {"_op_type": "delete", "_index": index, "_id": hit["_id"]}


def revisions_of(es: Elasticsearch, index: str, keys: list[str], kept: int) -> dict[str, list[dict]]:
    """key -> its kept versions, newest first (`fetched_at`, `content_sha256`, `_id`), bodies left out."""
    if not keys:
        return {}
    response = es.search(index=index, query={"terms": {"revision_of": keys}}, size=len(keys) * (kept + 10),
                         sort=[{"fetched_at": "desc"}], source_includes=["revision_of", "fetched_at", "content_sha256"])
    found: dict[str, list[dict]] = {}
    for hit in response["hits"]["hits"]:
        found.setdefault(hit["_source"]["revision_of"], []).append({"_id": hit["_id"], **hit["_source"]})
    return found
