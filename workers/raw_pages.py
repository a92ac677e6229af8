"""Raw pages in Elasticsearch, large ones in parts.

A page's raw document holds its fetch metadata and its body (base64). A body
longer than PART_CHARS (a full-report PDF runs to 30 MB) is cut into parts: the
page's document keeps the first and `parts`, the count, and each further part
is a document `<id>~<n>` with `part_of` and `part`. No single document then nears
`http.max_content_length`, every worker host reads the same store, and a rebuild
reassembles a PDF without the network.

Chosen over an object store (S3/MinIO) to keep one storage service; the limit is
Elasticsearch's storage for bodies it never searches: ~1.33x the PDF's size,
plus its replicas.

Below the stages: the records write raw pages this way (workers/records.py `RawPage`), the
index stage stores them, the rebuild reads them back.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

# Characters of base64 per document: 3 MiB of body.
PART_CHARS = 4 * 1024 * 1024
# A PDF rewritten shorter deletes its parts past the new count up to this many (96 MiB of PDF,
# beyond MAX_PDF_BYTES's default): an overwrite leaves no stale part behind.
STALE_PARTS = 32
# Queries over raw pages match pages, never their further parts or earlier versions
# (workers/index/revisions.py).
NOT_A_PART = {"bool": {"must_not": [{"exists": {"field": "part_of"}}, {"exists": {"field": "revision_of"}}]}}


@dataclass(frozen=True)
class StoredPage:
    """A raw page as a rebuild reads it back: the fetch it came from (workers/records.py `RawPage`
    wrote it) and, once its URL answered 404/410, how it went (`GoneEntry` marked it). The body
    is read on its own (`full_body`): a PDF's runs to parts."""

    url: str
    final_url: str
    fetched_at: str
    content_type: str | None = None
    status: int | None = None
    canonical_url: str | None = None
    source: str | None = None  # the site parser that read it; None: its parse failed at fetch time
    gone: bool = False
    on_gone: str | None = None
    # The documents it had made when it went: one, or a PDF's chapters. Stored as
    # `gone_document_id`, a single ID (a string) by pages that went before PDFs were read.
    gone_document_ids: tuple[str, ...] = ()

    @classmethod
    def from_source(cls, source: dict) -> StoredPage:
        ids = source.get("gone_document_id") or ()
        return cls(source["url"], source["final_url"], source["fetched_at"], source.get("content_type"),
                   source.get("status"), source.get("canonical_url"), source.get("source"),
                   bool(source.get("gone")), source.get("on_gone"), (ids,) if isinstance(ids, str) else tuple(ids))

    def to_source(self) -> dict:
        """The fields read back, as stored (for tests and tools; the fetch and GoneEntry write them)."""
        gone = {"gone": True, "on_gone": self.on_gone, "gone_document_id": list(self.gone_document_ids)} \
            if self.gone else {}
        return {"url": self.url, "final_url": self.final_url, "fetched_at": self.fetched_at,
                "content_type": self.content_type, "status": self.status, "canonical_url": self.canonical_url,
                "source": self.source, **gone}

    @property
    def deleted_as_gone(self) -> bool:
        """Went, and its documents were deleted (a flagged one's are kept, out of search)."""
        return self.gone and self.on_gone != "flag"


def pages_only(query: dict) -> dict:
    """`query` over raw pages, their further parts and earlier versions left out."""
    return {"bool": {"filter": [query, NOT_A_PART]}}


def part_id(key: str, part: int) -> str:
    return f"{key}~{part}"


def raw_actions(index: str, key: str, source: dict, *, max_parts: int = 0,
                part_chars: int = PART_CHARS, version: int | None = None) -> list[dict]:
    """Index actions for one raw page; `max_parts`: the most parts an earlier copy could have had,
    whose extra parts are deleted (a PDF that shrank); `version`: its fetch time (bulk.py)."""
    body = source["body"]
    parts = [body[i:i + part_chars] for i in range(0, len(body), part_chars)] or [""]
    first = {**source, "body": parts[0], **({"parts": len(parts)} if len(parts) > 1 else {})}
    versioned = {} if version is None else {"_version": version}
    actions = [{"_op_type": "index", "_index": index, "_id": key, "_source": first, **versioned}]
    actions += [{"_op_type": "index", "_index": index, "_id": part_id(key, n),
                 "_source": {"part_of": key, "part": n, "body": chunk}, **versioned}
                for n, chunk in enumerate(parts) if n]
    actions += [{"_op_type": "delete", "_index": index, "_id": part_id(key, n)}
                for n in range(len(parts), max_parts)]
    return actions


def full_body(es: Elasticsearch, index: str, key: str, source: dict) -> bytes:
    """The whole body of the raw page `source` (its document's `_source`), parts fetched and joined."""
    chunks = [source["body"]]
    if (count := source.get("parts") or 1) > 1:
        found = es.mget(index=index, ids=[part_id(key, n) for n in range(1, count)], _source=["body"])["docs"]
        missing = [doc["_id"] for doc in found if not doc.get("found")]
        if missing:
            raise LookupError(f"raw page {key}: parts {missing} are missing")
        chunks += [doc["_source"]["body"] for doc in found]
    return base64.b64decode("".join(chunks))
