"""Celery tasks: fetch and parse one page; bulk-index what was staged.

Tasks take URLs and IDs, never objects, and are idempotent: a document's `_id`
is a hash of its canonical URL, a raw page's and a failure's the hash of the
requested URL, so running a task twice overwrites the same records.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from functools import lru_cache
from pathlib import Path

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout

from workers.app import DISCOVER_TIME_LIMIT, INDEX_TIME_LIMIT, VISIBILITY_TIMEOUT, app
from workers.clients import get_es, get_redis
from workers.crawlstate import CrawlState
from workers.fetch import Page, PermanentFetchError, RetryableFetchError
from workers.index import BulkWriteError, IndexNames, bulk_write, ensure_indices, failure_record, indexable
from workers.parse import ParseError, parse_page
from workers.polite import Deferred, Disallowed, polite_fetch
from workers.profile import CrawlProfile, load_profile
from workers.progress import FAILED, FETCHED, GONE, INDEXED, SKIPPED, UNCHANGED, CrawlTracker
from workers.reindex import Keys, gone_actions
from workers.settings import Settings, get_settings
from workers.staging import Staging
from workers.timings import StageTimings
from workers.urls import InvalidURL, doc_id, normalize_url

log = logging.getLogger(__name__)

# Seconds the index task waits after the first staged page, so pages arriving
# together are written in one bulk request rather than one each.
INDEX_BATCH_WINDOW = 1.0


def staging(settings: Settings) -> Staging:
    return Staging(get_redis(), settings.index_prefix)


def timings(settings: Settings) -> StageTimings:
    return StageTimings(get_redis(), settings.index_prefix)


def tracker(settings: Settings, crawl_id: str | None) -> CrawlTracker | None:
    return CrawlTracker(get_redis(), settings.index_prefix, crawl_id) if crawl_id else None


def backoff_seconds(attempt: int, base: float, ceiling: float, retry_after: float | None) -> float:
    """Exponential backoff with equal jitter; a server's Retry-After wins, within the ceiling."""
    if retry_after is not None:
        return min(retry_after, ceiling)
    step = min(ceiling, base * 2**attempt)
    return step / 2 + random.uniform(0, step / 2)


def raw_record(page: Page) -> dict:
    return {
        "url": page.url, "canonical_url": None, "final_url": page.final_url, "source": None,
        "status": page.status, "content_type": page.content_type, "etag": page.etag,
        "last_modified": page.last_modified, "fetched_at": page.fetched_at,
        "content_sha256": page.sha256, "content_length": len(page.body),
        "body": base64.b64encode(page.body).decode("ascii"),
    }


def stage_entry(settings: Settings, url: str, entry: dict) -> None:
    """Hand an entry to the index task, and make sure one index task is coming."""
    if staging(settings).put(doc_id(url), entry, trigger_ttl=INDEX_TIME_LIMIT * 2):
        index_pending.apply_async(countdown=INDEX_BATCH_WINDOW)


def _first_delivery_within_cap(task: Task, settings: Settings) -> bool:
    """Count deliveries of this attempt; a page that keeps killing workers is poison."""
    key = f"ri:{settings.index_prefix}deliveries:{task.request.id}:{task.request.retries}"
    pipe = get_redis().pipeline()
    pipe.incr(key)
    pipe.expire(key, VISIBILITY_TIMEOUT * (settings.max_deliveries + 1))
    count, _ = pipe.execute()
    return count <= settings.max_deliveries


@app.task(bind=True, name="workers.tasks.fetch_page")
def fetch_page(self: Task, url: str, crawl_id: str | None = None) -> str:
    """Fetch `url` politely, parse it, and stage the document, raw page or failure for indexing."""
    settings = get_settings()
    try:
        url = normalize_url(url)
    except InvalidURL as exc:
        log.warning("dropping invalid URL: %s", exc)
        return "invalid"
    profile = load_profile(get_redis(), settings, crawl_id)
    progress = tracker(settings, crawl_id)

    def fail(stage: str, reason: str, detail: str, *, status: int | None = None,
             raw: dict | None = None) -> str:
        record = failure_record(url, stage, reason, detail, status=status,
                                attempts=self.request.retries + 1, crawl_id=crawl_id)
        stage_entry(settings, url, {"url": url, "crawl_id": crawl_id, "failure": record, "raw": raw})
        return f"failed:{reason}"

    def finish(state: str) -> str:
        if progress is not None:
            progress.mark(url, state)
        return state

    if not _first_delivery_within_cap(self, settings):
        return fail("fetch", "poison", f"worker lost {settings.max_deliveries} times on this page")

    state = crawl_state(settings, profile)
    previous = None if profile.force else state.get(url)
    try:
        with timings(settings).measure("fetch"):
            page = polite_fetch(settings, profile, url, etag=previous and previous.etag,
                                last_modified=previous and previous.last_modified)
    except Deferred as exc:
        # Not a retry: the page did nothing wrong, its host is just busy.
        fetch_page.apply_async((url, crawl_id), countdown=exc.seconds)
        return "deferred"
    except Disallowed as exc:
        stage_entry(settings, url, {"url": url, "crawl_id": crawl_id, "skipped": True,
                                    "failure": failure_record(url, "robots", "robots_disallowed", str(exc),
                                                              crawl_id=crawl_id)})
        return "skipped"
    except RetryableFetchError as exc:
        if self.request.retries < settings.fetch_max_retries:
            countdown = backoff_seconds(
                self.request.retries, settings.fetch_backoff_base, settings.fetch_backoff_max,
                exc.retry_after,
            )
            raise self.retry(countdown=countdown, exc=exc, max_retries=settings.fetch_max_retries) from exc
        return fail("fetch", exc.reason, f"gave up after {self.request.retries + 1} attempts: {exc}",
                    status=exc.status)
    except PermanentFetchError as exc:
        if exc.status in (404, 410) and previous is not None and previous.document_id:
            stage_entry(settings, url, {"url": url, "crawl_id": crawl_id, "gone": previous.document_id,
                                        "on_gone": profile.on_gone})
            return "gone"
        return fail("fetch", exc.reason, str(exc), status=exc.status)
    except SoftTimeLimitExceeded:
        return fail("fetch", "time_limit", f"{url}: task time limit exceeded")
    except Exception as exc:  # noqa: BLE001 - a bug must cost one page, recorded, not the crawl
        log.exception("unexpected error fetching %s", url)
        return fail("fetch", "unexpected_error", f"{exc.__class__.__name__}: {exc}")

    if page.status == 304 or (previous is not None and previous.content_sha256 == page.sha256):
        state.record_unchanged(url)
        return finish(UNCHANGED)

    raw = raw_record(page)
    try:
        with timings(settings).measure("parse"):
            document = parse_page(page.body, page.final_url, page.content_type, parser=profile.parser)
    except ParseError as exc:
        # The raw page is kept all the same: a better parser can read it later.
        return fail("parse", "parse_error", str(exc), status=page.status, raw=raw)
    except Exception as exc:  # noqa: BLE001 - as above
        log.exception("parser crashed on %s", url)
        return fail("parse", "parser_crash", f"{exc.__class__.__name__}: {exc}", status=page.status, raw=raw)
    raw["canonical_url"] = document["canonical_url"]
    raw["source"] = document["source"]
    indexable(document, page.fetched_at)
    stage_entry(settings, url, {"url": url, "crawl_id": crawl_id, "document": document, "raw": raw,
                                "recheck": [profile.recheck_min, profile.recheck_max]})
    return finish(FETCHED)


def crawl_state(settings: Settings, profile: CrawlProfile) -> CrawlState:
    return CrawlState(get_redis(), settings.index_prefix,
                      min_interval=profile.recheck_min, max_interval=profile.recheck_max)


@app.task(name="workers.tasks.discover_source", soft_time_limit=DISCOVER_TIME_LIMIT - 60,
          time_limit=DISCOVER_TIME_LIMIT)
def discover_source(name: str) -> dict:
    """Scheduled by beat per source: find its report URLs and enqueue the new or due ones."""
    from workers.crawl import run_source

    found, plan = run_source(get_settings(), name)
    for error in found.errors:
        log.warning("%s: %s", name, error)
    return {"source": name, "found": len(found.urls), "queued": len(plan.queued), "crawl_id": plan.crawl_id,
            "errors": len(found.errors)}


@lru_cache(maxsize=8)
def _ensure_indices_once(prefix: str, schemas_dir: str) -> None:
    ensure_indices(get_es(), IndexNames(prefix), Path(schemas_dir))


@worker_ready.connect
def _install_templates_at_start(**_kwargs) -> None:
    """Templates and aliases go in when a worker starts; the index task checks again anyway."""
    settings = get_settings()
    try:
        _ensure_indices_once(settings.index_prefix, str(settings.schemas_dir))
    except (ESConnectionError, ConnectionTimeout) as exc:
        log.warning("Elasticsearch not reachable at start-up (%s); indices will be set up on first write", exc)


def shadow_index(settings: Settings) -> str | None:
    """The index a running rebuild fills, if any: new documents must reach it too."""
    return get_redis().get(Keys(settings.index_prefix).shadow)


def _actions(names: IndexNames, key: str, entry: dict, shadow: str | None) -> list[dict]:
    reports = [index for index in (names.reports, shadow) if index]
    actions = []
    if entry.get("raw"):
        actions.append({"_op_type": "index", "_index": names.raw_pages, "_id": key, "_source": entry["raw"]})
    if (document := entry.get("document")) is not None:
        actions += [{"_op_type": "index", "_index": i, "_id": document["id"], "_source": document} for i in reports]
        # A page that now works is no longer a failure.
        actions.append({"_op_type": "delete", "_index": names.failures, "_id": key})
    elif gone := entry.get("gone"):
        actions += gone_actions(names, key, gone, entry.get("on_gone", "delete"), shadow)
    else:
        actions.append({"_op_type": "index", "_index": names.failures, "_id": key, "_source": entry["failure"]})
    return actions


def _outcome(entry: dict, failed: bool) -> str:
    if failed:
        return FAILED
    if "document" in entry:
        return INDEXED
    if "gone" in entry:
        return GONE
    return SKIPPED if entry.get("skipped") else FAILED


def _record_state(settings: Settings, entry: dict) -> None:
    """Validators and content hash are remembered only once the content is in the index."""
    url = entry["url"]
    if "document" in entry:
        low, high = entry.get("recheck") or (settings.recheck_min, settings.recheck_max)
        raw = entry["raw"]
        CrawlState(get_redis(), settings.index_prefix, min_interval=low, max_interval=high).record_indexed(
            url, content_sha256=raw["content_sha256"], document_id=entry["document"]["id"],
            etag=raw["etag"], last_modified=raw["last_modified"],
        )
    elif "gone" in entry:
        CrawlState(get_redis(), settings.index_prefix).record_gone(url)


@app.task(
    bind=True, name="workers.tasks.index_pending",
    # Only a cluster that cannot be reached is worth retrying; staged entries
    # stay in Redis until written, so giving up loses nothing.
    autoretry_for=(ESConnectionError, ConnectionTimeout), retry_backoff=5, retry_backoff_max=300,
    retry_jitter=True, max_retries=10,
    soft_time_limit=INDEX_TIME_LIMIT - 30, time_limit=INDEX_TIME_LIMIT,
)
def index_pending(self: Task) -> int:
    """Bulk-write staged entries in batches until none are left; return how many were written."""
    settings = get_settings()
    names = IndexNames(settings.index_prefix)
    es = get_es()
    _ensure_indices_once(names.prefix, str(settings.schemas_dir))
    queue = staging(settings)
    written = 0
    while batch := queue.take(settings.index_batch_size):
        entries = {key: json.loads(raw) for key, raw in batch}
        written += _write_batch(es, names, settings, entries)
        if queue.remove(batch) == 0:
            break  # every entry was restaged meanwhile: the next run takes them
    queue.release_trigger()
    # Entries staged after the last take but before the release would wait for
    # the periodic run; pick them up now.
    if queue.size() and queue.claim_trigger(ttl=INDEX_TIME_LIMIT * 2):
        index_pending.apply_async(countdown=INDEX_BATCH_WINDOW)
    return written


def _write_batch(es, names: IndexNames, settings: Settings, entries: dict[str, dict]) -> int:
    owner: dict[int, str] = {}
    actions = []
    shadow = shadow_index(settings)
    for key, entry in entries.items():
        for action in _actions(names, key, entry, shadow):
            owner[id(action)] = key
            actions.append(action)
    failed: dict[str, str] = {}
    try:
        with timings(settings).measure("index", items=len(entries)):
            bulk_write(es, actions, chunk_size=settings.bulk_chunk_size, max_retries=settings.bulk_max_retries)
    except BulkWriteError as exc:
        failed = {owner[id(e.action)]: f"{e.status} {e.reason}" for e in exc.result.errors}
    if failed:
        # The items Elasticsearch refused become failures: recorded, never dropped.
        records = [
            {"_op_type": "index", "_index": names.failures, "_id": key, "_source": failure_record(
                entries[key]["url"], "index", "index_error", reason, crawl_id=entries[key].get("crawl_id"))}
            for key, reason in failed.items()
        ]
        bulk_write(es, records, chunk_size=settings.bulk_chunk_size, max_retries=settings.bulk_max_retries)
    for key, entry in entries.items():
        if key not in failed:
            _record_state(settings, entry)
        if (progress := tracker(settings, entry.get("crawl_id"))) is not None:
            progress.mark(entry["url"], _outcome(entry, key in failed))
    return len(entries) - len(failed)
