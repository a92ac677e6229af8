"""The aliases in front of the physical indices: which index serves, the atomic swap, the listing.

Each takes alias and index names; none knows about rebuild runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch

from workers.index.indices import KINDS, IndexNames


class AliasError(Exception):
    """An alias does not point at exactly one index."""


def live_index(es: Elasticsearch, alias: str) -> str:
    """The one physical index behind `alias`."""
    indices = list(es.indices.get_alias(name=alias))
    if len(indices) != 1:
        raise AliasError(f"alias {alias} points at {len(indices)} indices: {indices}")
    return indices[0]


def swap_alias(es: Elasticsearch, alias: str, old: str, new: str) -> None:
    """Point `alias` from `old` to `new` in one atomic call.

    must_exist: if someone moved the alias meanwhile (or `new` is gone), the whole
    call fails and nothing changes.
    """
    es.indices.update_aliases(actions=[
        {"remove": {"index": old, "alias": alias, "must_exist": True}},
        {"add": {"index": new, "alias": alias, "is_write_index": True}},
    ])


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


def list_indices(es: Elasticsearch, names: IndexNames, rebuilding: str | None = None) -> list[IndexInfo]:
    """Every physical index of each kind; `rebuilding` is the index a rebuild is filling, if any."""
    rows = []
    for kind in KINDS:
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
                index == rebuilding, meta.get("schema_version"), meta.get("parser_version"),
                meta.get("analysis"), meta.get("created_at"), versions,
            ))
    return rows
