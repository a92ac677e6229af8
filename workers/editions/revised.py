"""`diff URL`: the last two fetched versions of one page (the page and its newest kept revision,
workers/index/revisions.py), parsed again with the parser that read the page, and compared."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from workers.documents import PDF_SOURCE, ReportDocument, tier_rank
from workers.editions.diff import diff_documents
from workers.editions.moves import tier_move
from workers.es_read import status_of
from workers.index.indices import IndexNames
from workers.index.revisions import revisions_of
from workers.parse import parse_page
from workers.urls import doc_id, normalize_url

if TYPE_CHECKING:
    from workers.es_read import Searcher


def _parsed(source: dict, url: str, parser: str | None) -> ReportDocument:
    return parse_page(base64.b64decode(source["body"]), url, source.get("content_type"), parser=parser)


def _side(source: dict, document: ReportDocument) -> dict:
    return {"fetched_at": source["fetched_at"], "tier": document.tier, "year": document.report_year}


def compare_versions(es: Searcher, names: IndexNames, url: str, kept: int) -> dict:
    """The `diff URL --json` contract: the page, the two versions compared and what changed."""
    key = doc_id(normalize_url(url))
    try:
        current = es.get(index=names.raw_pages, id=key)["_source"]
    except Exception as exc:
        if status_of(exc) != 404:
            raise
        raise LookupError(f"{url} was never fetched") from None
    versions = revisions_of(es, names.raw_pages, [key], kept).get(key)
    if not versions:
        raise LookupError(f"{url} has one fetched version (fetched {current['fetched_at']}): nothing to compare")
    if current.get("source") == PDF_SOURCE:
        raise LookupError(f"{url} is a PDF: its versions are kept, but compare them by edition (diff COUNTRY A B)")
    previous = es.get(index=names.raw_pages, id=versions[0]["_id"])["_source"]
    parser = current.get("source")
    old, new = _parsed(previous, url, parser), _parsed(current, url, parser)
    return {"url": url, "from": _side(previous, old), "to": _side(current, new),
            "tier_move": tier_move(tier_rank(old.tier), tier_rank(new.tier)),
            "sections": [s.as_dict() for s in diff_documents(old, new)],
            "revisions": [v["fetched_at"] for v in versions]}
