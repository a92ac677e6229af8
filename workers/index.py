"""Elasticsearch indices, templates and bulk writes.

Every physical index lives behind an alias (`reports`, `raw-pages`,
`failures`, each with the configured prefix), so a rebuild can swap what
the alias points at in one atomic call. Index names are always passed in,
never taken from shared state.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import ApiError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout

from workers.copies import report_key

log = logging.getLogger(__name__)

KINDS = ("reports", "raw-pages", "failures")
# Item statuses worth sending again: the cluster was busy or briefly unavailable.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
TIER_RANKS = {"Tier 1": 1.0, "Tier 2": 2.0, "Tier 2 Watch List": 2.5, "Tier 3": 3.0}

ENGLISH_ANALYSIS = {
    "filter": {
        "english_stop": {"type": "stop", "stopwords": "_english_"},
        "english_possessive": {"type": "stemmer", "language": "possessive_english"},
        "english_stemmer": {"type": "stemmer", "language": "english"},
    },
    "analyzer": {
        # Default analyzer of the index, so the template never names an analyzer
        # that a minimal cluster lacks.
        "default": {
            "tokenizer": "standard",
            "filter": ["english_possessive", "lowercase", "asciifolding", "english_stop", "english_stemmer"],
        }
    },
}


@dataclass(frozen=True)
class IndexNames:
    """The aliases (and physical-index prefixes) for one index prefix."""

    prefix: str = ""

    def alias(self, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}")
        return f"{self.prefix}{kind}"

    @property
    def reports(self) -> str:
        return self.alias("reports")

    @property
    def raw_pages(self) -> str:
        return self.alias("raw-pages")

    @property
    def failures(self) -> str:
        return self.alias("failures")

    def physical(self, kind: str, schema_version: int, stamp: str) -> str:
        return f"{self.alias(kind)}-v{schema_version}-{stamp}"


def load_template(schemas_dir: Path, kind: str) -> dict:
    return json.loads((schemas_dir / "templates" / f"{kind}.json").read_text())


def schema_version(template: dict) -> int:
    return template["template"]["mappings"]["_meta"]["schema_version"]


def install_templates(es: Elasticsearch, names: IndexNames, schemas_dir: Path) -> list[str]:
    """Put every index template, prefixed; PUT overwrites, so this is idempotent."""
    installed = []
    for kind in KINDS:
        template = load_template(schemas_dir, kind)
        name = f"{names.prefix}report-ingest-{kind}"
        es.indices.put_index_template(
            name=name,
            index_patterns=[names.prefix + p for p in template["index_patterns"]],
            priority=template["priority"],
            template=template["template"],
            meta={"managed_by": "report-ingest", "schema_version": schema_version(template)},
        )
        installed.append(name)
    return installed


def cluster_has_english(es: Elasticsearch) -> bool:
    """English stemming lives in the analysis-common module, which minimal nodes lack."""
    info = es.nodes.info(metric="plugins", filter_path="nodes.*.modules.name")
    nodes = info.get("nodes", {}).values()
    return bool(nodes) and all(
        any(m["name"] == "analysis-common" for m in node.get("modules", [])) for node in nodes
    )


def create_index(
    es: Elasticsearch, names: IndexNames, kind: str, schemas_dir: Path, *,
    stamp: str | None = None, extra_meta: dict | None = None, settings: dict | None = None,
    aliases: dict | None = None,
) -> str:
    """Create a physical index for `kind`; the analysis choice is made here and recorded."""
    template = load_template(schemas_dir, kind)
    version = schema_version(template)
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    index = names.physical(kind, version, stamp)
    english = kind == "reports" and cluster_has_english(es)
    index_settings = dict(settings or {})
    if english:
        index_settings["analysis"] = ENGLISH_ANALYSIS
    meta = {
        **template["template"]["mappings"]["_meta"],
        "analysis": "english" if english else "standard",
        "created_at": datetime.now(UTC).isoformat(),
        **(extra_meta or {}),
    }
    es.indices.create(
        index=index, settings=index_settings, mappings={"_meta": meta}, aliases=aliases or {}
    )
    return index


def ensure_indices(es: Elasticsearch, names: IndexNames, schemas_dir: Path) -> dict[str, str]:
    """Install templates and make sure every alias points at an index. Safe to run anywhere, any time.

    The first index of each kind has a fixed name, so two processes bootstrapping
    at once create one index, not two.
    """
    install_templates(es, names, schemas_dir)
    live = {}
    for kind in KINDS:
        alias = names.alias(kind)
        if not es.indices.exists_alias(name=alias):
            try:
                create_index(
                    es, names, kind, schemas_dir, stamp="initial",
                    aliases={alias: {"is_write_index": True}},
                )
            except ApiError as exc:
                if exc.meta.status != 400 or "already_exists" not in str(exc):
                    raise
        live[kind] = next(iter(es.indices.get_alias(name=alias)))
    add_new_fields(es, names, schemas_dir)
    return live


def add_new_fields(es: Elasticsearch, names: IndexNames, schemas_dir: Path) -> list[str]:
    """Give the live indices the fields their templates gained since they were created.

    Mappings are strict, so a document with a field its index lacks is refused; adding
    fields is safe on a live index (changing one is not: that takes `report-ingest reindex`).
    Needs only index privileges, so a worker can do it. Returns the indices it could not update.
    """
    stale = []
    for kind in KINDS:
        properties = load_template(schemas_dir, kind)["template"]["mappings"]["properties"]
        try:
            es.indices.put_mapping(index=names.alias(kind), properties=properties)
        except ApiError as exc:
            if exc.meta.status != 400:
                raise
            log.warning("%s: the template's mapping conflicts with the live index (%s); "
                        "run `report-ingest reindex` to rebuild it", names.alias(kind), exc)
            stale.append(names.alias(kind))
    return stale


# --- documents ------------------------------------------------------------------


def tier_rank(tier: str | None) -> float | None:
    """Sortable tier: Watch List sits between Tier 2 and Tier 3."""
    return TIER_RANKS.get(tier or "")


def failure_record(url: str, stage: str, reason: str, detail: str, *, status: int | None = None,
                   attempts: int = 1, crawl_id: str | None = None, source: str | None = None) -> dict:
    """A document for the failures index: what failed, where, why, and when.

    `source` (None for an ad-hoc crawl) lets `retry-failed` crawl the page again under its
    source's policy long after the crawl's own options expired. It is left out when None:
    a failures index created before the field existed has a strict mapping without it,
    which refuses the field even as null.
    """
    record = {
        "url": url, "stage": stage, "reason": reason, "detail": detail[:2000], "status": status,
        "attempts": attempts, "crawl_id": crawl_id,
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if source is not None:
        record["source"] = source
    return record


def indexable(document: dict, fetched_at: str) -> dict:
    """A parsed document with the fields the pipeline adds: when it was fetched, a sortable tier,
    the key shared by every copy of the same report."""
    document["fetched_at"] = fetched_at
    document["tier_rank"] = tier_rank(document.get("tier"))
    document["report_key"] = report_key(document)
    return document


# --- bulk writes ------------------------------------------------------------------


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


def _encode(action: dict) -> _Encoded:
    """The NDJSON lines of one action, serialised once (sizing chunks needs the bytes anyway)."""
    op = action["_op_type"]
    meta = {"_index": action["_index"], "_id": action["_id"]}
    lines = [json.dumps({op: meta}, separators=(",", ":")).encode()]
    if op != "delete":
        lines.append(json.dumps(action["_source"], ensure_ascii=False, separators=(",", ":")).encode())
    return _Encoded(action, lines)


def _chunks(items: list[_Encoded], size: int, max_bytes: int) -> Iterator[list[_Encoded]]:
    """Chunks of at most `size` items and `max_bytes` bytes (an item larger than that goes alone)."""
    chunk: list[_Encoded] = []
    total = 0
    for item in items:
        if chunk and (len(chunk) >= size or total + item.size > max_bytes):
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += item.size
    if chunk:
        yield chunk


class _Unreachable(Exception):
    """The cluster did not answer: the chunks after this one would not get through either."""


def _send_chunk(es: Elasticsearch, chunk: list[_Encoded]) -> list[tuple[dict, int, str]]:
    """Send one chunk; return (action, status, reason) for each item that failed."""
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
) -> BulkResult:
    """Write actions in chunks; resend only the failed, retryable items; then raise one error.

    Actions are dicts with `_op_type` (index/create/update/delete), `_index`, `_id`
    and `_source`, and optionally `_missing_ok` (an update that may find no document).
    Chunks hold at most `chunk_size` actions and `max_bytes` bytes.
    Every chunk is sent before anything is raised, so one bad item never keeps the
    rest from being written; only an unreachable cluster ends the pass early, its
    items failing with status 503 ("connection: ...").
    """
    pending = [_encode(action) for action in actions]
    result = BulkResult()
    for attempt in range(max_retries + 1):
        retry: list[_Encoded] = []
        unreachable: str | None = None
        for chunk in _chunks(pending, chunk_size, max_bytes):
            if unreachable is None:
                try:
                    failed = _send_chunk(es, chunk)
                except _Unreachable as exc:
                    unreachable = str(exc)
            if unreachable is not None:
                failed = [(item.action, 503, unreachable) for item in chunk]
            by_action = {id(item.action): item for item in chunk}
            result.succeeded += len(chunk) - len(failed)
            for action, status, reason in failed:
                if status in RETRYABLE_STATUSES and attempt < max_retries:
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
