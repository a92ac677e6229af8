"""Pages past the result window: walk the hits in order with search_after over a point in time.

Elasticsearch refuses from + size beyond `index.max_result_window` (10,000 by default), and
field collapsing cannot be combined with search_after unless the search is sorted on the
collapse field alone. So a deep page is found in two steps: walk the matching documents in
the search's own sort order (search_after, one window at a time, only the group key of each
hit) and note each group the first time it appears — which is exactly where collapsing puts
it, since a collapsed group ranks by its top document — then fetch just that page's groups.
The walk costs one request per window of hits before the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.es_read import Searcher


# Elasticsearch's default index.max_result_window; SEARCH_MAX_WINDOW when an index differs.
DEFAULT_WINDOW = 10_000
_KEEP_ALIVE = "1m"


def pages_after(es: Searcher, size: int, *, pit_of: str | None = None, keep_alive: str = _KEEP_ALIVE,
                **request: object) -> Iterator[list[dict]]:
    """Every page of hits of a sorted search, in order, walked with search_after; a page shorter
    than `size` is the last.

    `request` is passed to `es.search` (index, query, sort, ...); the sort must end in a unique
    tiebreaker. With `pit_of`, the walk reads that index through a point in time, so it sees
    one state of it however long it takes; the point in time is closed when the walk ends or
    is closed early.
    """
    pit = es.open_point_in_time(index=pit_of, keep_alive=keep_alive)["id"] if pit_of else None
    after = None
    try:
        while True:
            if pit:
                request["pit"] = {"id": pit, "keep_alive": keep_alive}
            response = es.search(size=size, search_after=after, track_total_hits=False, **request)
            pit = response.get("pit_id", pit)
            hits = response["hits"]["hits"]
            if hits:
                yield hits
            if len(hits) < size:
                return
            after = hits[-1]["sort"]
    finally:
        if pit:
            _close(es, pit)


def _close(es: Searcher, pit: str) -> None:
    """Close a point in time; one whose contexts died with their node (404) needs no closing, and its
    error must not replace the walk's own."""
    from workers.es_read import status_of

    try:
        es.close_point_in_time(id=pit)
    except Exception as exc:
        if status_of(exc) != 404:
            raise


def keys_in_order(es: Searcher, index: str, request: dict, group_field: str, stop: int,
                  window: int = DEFAULT_WINDOW) -> list[str]:
    """The first `stop` distinct values of `group_field` among the hits of `request`, in its order.

    `request` is a search body (query, post_filter, sort); the sort must end in a unique
    tiebreaker, as every sort in workers.search does.
    """
    keys: dict[str, None] = {}
    walk = pages_after(es, window, pit_of=index, query=request.get("query"), post_filter=request.get("post_filter"),
                       sort=request["sort"], source=False, docvalue_fields=[group_field])
    with closing(walk):
        for hits in walk:
            for hit in hits:
                # Documents indexed before report_key existed have none until `reindex --reparse`.
                if group_field in hit.get("fields", {}):
                    keys.setdefault(hit["fields"][group_field][0])
            if len(keys) >= stop:
                break
    return list(keys)[:stop]
