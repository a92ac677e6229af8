"""A bulk action's NDJSON lines (workers/index/bulk.py): exact, UTF-8, and no bigger in memory than they are."""

from __future__ import annotations

import json
import tracemalloc

from workers.index.bulk import _encode


def test_lines_are_the_action_and_its_source_in_utf8() -> None:
    source = {"title": "Côte d'Ivoire – Tier 2", "year": 2016, "roles": ["source", "transit"]}
    encoded = _encode({"_op_type": "index", "_index": "reports", "_id": "abc", "_source": source})
    meta, body = encoded.lines
    assert json.loads(meta) == {"index": {"_index": "reports", "_id": "abc"}}
    assert json.loads(body) == source
    assert "Côte".encode() in body  # not \u-escaped: fewer bytes per request
    assert encoded.size == len(meta) + len(body) + 2


def test_a_delete_is_one_line() -> None:
    assert len(_encode({"_op_type": "delete", "_index": "failures", "_id": "k"}).lines) == 1


def test_a_batch_of_lines_holds_about_its_own_size() -> None:
    """An index batch keeps every line until its chunks are sent: 1,500 lines of a 500-page batch.
    Each used to keep its serialiser's whole buffer, 4 KB or more for a 60-byte line."""
    actions = [{"_op_type": "delete", "_index": "failures", "_id": f"{n:064x}"} for n in range(1000)]
    tracemalloc.start()
    try:
        encoded = [_encode(action) for action in actions]
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 3 * sum(item.size for item in encoded) + 200_000
