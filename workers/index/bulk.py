"""Bulk writes that send every chunk, resend only what the cluster refused for now, then raise
one combined error (kitsune's es_utils does the same).

Chunks are sized by count and by bytes, so a batch of large pages never meets a
413; one that does is halved until it fits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from elasticsearch import ApiError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout

from workers.batching import by_bytes

# Item statuses worth sending again: the cluster was busy or briefly unavailable.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class BulkItemError:
    action: dict
    status: int
    reason: str

    @property
    def transient(self) -> bool:
        """The cluster was busy or out of reach: the same item may well succeed later."""
        return self.status in RETRYABLE_STATUSES


@dataclass
class BulkResult:
    succeeded: int = 0
    errors: list[BulkItemError] = field(default_factory=list)
    # Versioned actions Elasticsearch already held a newer version of: done, and not written.
    superseded: list[dict] = field(default_factory=list)


class BulkWriteError(Exception):
    """Raised after every chunk was sent, carrying every item that still failed."""

    def __init__(self, result: BulkResult):
        self.result = result
        reasons = sorted({f"{e.status} {e.reason}" for e in result.errors})
        super().__init__(
            f"{len(result.errors)} bulk item(s) failed after retries: " + "; ".join(reasons[:5])
        )

    def __reduce__(self):
        # Crosses from a pool process to the worker as a pickle; rebuilt from its result.
        return (BulkWriteError, (self.result,))


@dataclass
class _Encoded:
    action: dict
    lines: list[bytes]

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for line in self.lines)


def _dumps(value: dict) -> bytes:
    # orjson's bytes keep the whole buffer they were written into (4 KB or more for a 50-byte
    # line): a batch held 70 MB for 9 MB of lines. An exact-size copy costs a memcpy.
    return memoryview(orjson.dumps(value)).tobytes()


def _encode(action: dict) -> _Encoded:
    """The NDJSON lines of one action, serialised once (sizing chunks needs the bytes anyway)."""
    op = action["_op_type"]
    meta = {"_index": action["_index"], "_id": action["_id"]}
    if "_version" in action:
        # The fetch time: Elasticsearch refuses a version older than the one it holds (a 409, taken
        # as done: what is there is newer), so writes never go backwards, whatever order they come in.
        meta |= {"version": action["_version"], "version_type": "external_gte"}
    lines = [_dumps({op: meta})]
    if op != "delete":
        lines.append(_dumps(action["_source"]))
    return _Encoded(action, lines)


class _Unreachable(Exception):
    """The cluster did not answer: the chunks after this one would not get through either."""


def _send_chunk(es: Elasticsearch, chunk: list[_Encoded]) -> list[tuple[dict, int, str]]:
    """Send one chunk; return (action, status, reason) for each item that failed (status 409 with
    a versioned action: superseded by a newer version, see _encode)."""
    try:
        response = es.bulk(operations=[line for item in chunk for line in item.lines])
    except (ESConnectionError, ConnectionTimeout) as exc:
        raise _Unreachable(f"connection: {exc}") from exc
    except ApiError as exc:
        if exc.meta.status == 413 and len(chunk) > 1:
            # Too large for the cluster's http.max_content_length: halve until it fits.
            half = len(chunk) // 2
            return _send_chunk(es, chunk[:half]) + _send_chunk(es, chunk[half:])
        return [(item.action, exc.meta.status, str(exc)) for item in chunk]
    failed = []
    for item, result in zip(chunk, response["items"], strict=True):
        result = next(iter(result.values()))
        status = result["status"]
        # Deleting what is not there is done; so is an update marked `_missing_ok`.
        if status >= 300 and not (status == 404 and (item.action["_op_type"] == "delete"
                                                     or item.action.get("_missing_ok"))):
            error = result.get("error", {})
            failed.append((item.action, status, f"{error.get('type', 'error')}: {error.get('reason', '')}"))
    return failed


def bulk_write(
    es: Elasticsearch, actions: Iterable[dict], *, chunk_size: int = 200,
    max_bytes: int = 10 * 1024 * 1024, max_retries: int = 3, backoff: float = 0.5,
    before_chunk: Callable[[], None] | None = None,
) -> BulkResult:
    """Write actions in chunks; resend only the failed, retryable items; then raise one error.

    Actions are dicts with `_op_type` (index/create/update/delete), `_index`, `_id`
    and `_source`, and optionally `_missing_ok` (an update that may find no document).
    Chunks hold at most `chunk_size` actions and `max_bytes` bytes.
    Every chunk is sent before anything is raised, so one bad item never keeps the
    rest from being written; only an unreachable cluster ends the pass early, its
    items failing with status 503 ("connection: ...").
    `before_chunk` runs before each request (the index run renews its lock there).
    """
    pending = [_encode(action) for action in actions]
    result = BulkResult()
    for attempt in range(max_retries + 1):
        retry: list[_Encoded] = []
        unreachable: str | None = None
        for chunk in by_bytes(pending, lambda item: item.size, max_bytes, chunk_size):
            if unreachable is None:
                if before_chunk is not None:
                    before_chunk()
                try:
                    failed = _send_chunk(es, chunk)
                except _Unreachable as exc:
                    unreachable = str(exc)
            if unreachable is not None:
                failed = [(item.action, 503, unreachable) for item in chunk]
            by_action = {id(item.action): item for item in chunk}
            result.succeeded += len(chunk) - len(failed)
            for action, status, reason in failed:
                if status == 409 and "_version" in action:
                    result.superseded.append(action)
                elif status in RETRYABLE_STATUSES and attempt < max_retries:
                    retry.append(by_action[id(action)])
                else:
                    result.errors.append(BulkItemError(action, status, reason))
        if not retry:
            break
        pending = retry
        time.sleep(random.uniform(0, backoff * 2**attempt))  # full jitter
    if result.errors:
        raise BulkWriteError(result)
    return result
