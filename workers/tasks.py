"""Celery tasks: fetch and parse one page; bulk-index what was staged.

Tasks take URLs and IDs, never objects, and are idempotent: a document's `_id`
is a hash of its canonical URL, a raw page's and a failure's the hash of the
requested URL, so running a task twice overwrites the same records.

Every way a task ends leaves a document, a failure record, or a message that
will be delivered again (workers/delivery.py): errors become failure records,
connection losses and errors while recording become redeliveries, and a page
that keeps killing its worker is recorded as poison.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from celery import Task
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded
from celery.signals import worker_ready
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout

from workers.app import DISCOVER_TIME_LIMIT, INDEX_TIME_LIMIT, app
from workers.clients import get_es, get_redis
from workers.crawlstate import CrawlState
from workers.delivery import CONNECTION_ERRORS, redelivered_unless_recorded, within_delivery_cap
from workers.fetch import Page, PermanentFetchError, RetryableFetchError
from workers.index import (
    KINDS, BulkWriteError, IndexNames, add_new_fields, bulk_write, ensure_indices, failure_record, indexable,
)
from workers.keys import Keys
from workers.parked import Parked
from workers.parse import ParseError, parse_page
from workers.polite import Deferred, Disallowed, polite_fetch
from workers.profile import CrawlProfile, load_profile
from workers.progress import FAILED, FETCHED, GONE, INDEXED, SKIPPED, UNCHANGED, CrawlTracker
from workers.reindex import Keys as RebuildKeys
from workers.reindex import gone_actions
from workers.settings import Settings, get_settings
from workers.staging import TRIGGER_TTL, IndexRunner, Staging
from workers.timings import StageTimings
from workers.urls import InvalidURL, doc_id, normalize_url

log = logging.getLogger(__name__)

# Seconds the index task waits after the first staged page, so pages arriving
# together are written in one bulk request rather than one each.
INDEX_BATCH_WINDOW = 1.0
# The index runner lock outlives one batch's writes, retries included.
INDEX_RUNNER_TTL = 300
# Failure records are cut to fit a keyword field (32,766 bytes) when the full one is refused.
MINIMAL_URL_CHARS = 2000


class IndexBackoff(Exception):
    """Elasticsearch is unreachable or overloaded; staged entries wait for the next attempt."""


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
    if staging(settings).put(doc_id(url), entry, trigger_ttl=TRIGGER_TTL):
        index_pending.apply_async(countdown=INDEX_BATCH_WINDOW)


def defer(settings: Settings, url: str, crawl_id: str | None, seconds: float, **kwargs: int) -> None:
    """Fetch `url` again in `seconds`: a broker countdown when short, parked in Redis when long."""
    if seconds <= settings.max_countdown:
        fetch_page.apply_async((url, crawl_id), kwargs, countdown=seconds)
    else:
        Parked(get_redis(), settings.index_prefix).park(url, crawl_id, seconds, **kwargs)


def delivery_ttl(settings: Settings) -> int:
    """How long a delivery count must be kept: as long as the broker might deliver the task again."""
    return settings.visibility_timeout * (settings.max_deliveries + 1)


class PageRun:
    """One delivery of fetch_page: its URL and crawl, and how it records what came of it."""

    def __init__(self, task: Task, settings: Settings, url: str, crawl_id: str | None):
        self.task, self.settings, self.url, self.crawl_id = task, settings, url, crawl_id
        self.source: str | None = None  # the crawl's source, once its profile is read

    def stage(self, entry: dict) -> None:
        stage_entry(self.settings, self.url, {"url": self.url, "crawl_id": self.crawl_id, **entry})

    def fail(self, stage: str, reason: str, detail: str, *, status: int | None = None,
             raw: dict | None = None) -> str:
        record = failure_record(self.url, stage, reason, detail, status=status,
                                attempts=self.task.request.retries + 1, crawl_id=self.crawl_id,
                                source=self.source)
        self.stage({"failure": record, "raw": raw, "source": self.source})
        return f"failed:{reason}"

    def finish(self, state: str) -> str:
        if (progress := tracker(self.settings, self.crawl_id)) is not None:
            progress.mark(self.url, state)
        return state


@app.task(bind=True, name="workers.tasks.fetch_page")
def fetch_page(self: Task, url: str, crawl_id: str | None = None, robots_deferrals: int = 0) -> str:
    """Fetch `url` politely, parse it, and stage the document, raw page or failure for indexing."""
    settings = get_settings()
    with redelivered_unless_recorded(self):
        try:
            url = normalize_url(url)
        except InvalidURL as exc:
            return PageRun(self, settings, url, crawl_id).fail("fetch", "invalid_url", str(exc))
        run = PageRun(self, settings, url, crawl_id)
        if not within_delivery_cap(self, get_redis(), Keys(settings.index_prefix), settings.max_deliveries,
                                   delivery_ttl(settings)):
            return run.fail("fetch", "poison", f"delivered {settings.max_deliveries} times without finishing "
                                               "(its worker was lost, or it hit the hard time limit)")
        try:
            return _crawl(run, robots_deferrals)
        except (Retry, Reject, *CONNECTION_ERRORS):
            raise
        except SoftTimeLimitExceeded:
            return run.fail("fetch", "time_limit", f"{url}: task time limit exceeded")
        except Exception as exc:  # noqa: BLE001 - a bug must cost one page, recorded, not the crawl
            log.exception("unexpected error fetching %s", url)
            return run.fail("fetch", "unexpected_error", f"{exc.__class__.__name__}: {exc}")


def _profile(run: PageRun) -> CrawlProfile:
    try:
        return load_profile(get_redis(), run.settings, run.crawl_id)
    except KeyError as exc:
        raise _ConfigError(f"crawl {run.crawl_id}: its source {exc} is no longer in "
                           f"{run.settings.sources_file}") from exc
    except (ValueError, OSError) as exc:  # SourcesError is a ValueError
        raise _ConfigError(f"crawl {run.crawl_id}: cannot read {run.settings.sources_file}: {exc}") from exc


class _ConfigError(Exception):
    pass


def _crawl(run: PageRun, robots_deferrals: int) -> str:
    settings, url, task = run.settings, run.url, run.task
    try:
        profile = _profile(run)
    except _ConfigError as exc:
        return run.fail("fetch", "source_unavailable", str(exc))
    run.source = profile.source
    state = crawl_state(settings, profile)
    previous = None if profile.force else state.get(url)
    try:
        with timings(settings).measure("fetch"):
            page = polite_fetch(settings, profile, url, etag=previous and previous.etag,
                                last_modified=previous and previous.last_modified)
    except Deferred as exc:
        # Not a retry: the page did nothing wrong, its host is just busy or its rules unknown.
        if exc.reason == "robots_unreachable":
            if robots_deferrals >= settings.robots_max_deferrals:
                return run.fail("robots", "robots_unreachable",
                                f"{exc} (still unreachable after {robots_deferrals} deferrals)")
            robots_deferrals += 1
        defer(settings, url, run.crawl_id, exc.seconds,
              **({"robots_deferrals": robots_deferrals} if robots_deferrals else {}))
        return "deferred"
    except Disallowed as exc:
        run.stage({"skipped": True, "source": run.source, "failure": failure_record(
            url, "robots", "robots_disallowed", str(exc), crawl_id=run.crawl_id, source=run.source)})
        return "skipped"
    except RetryableFetchError as exc:
        if task.request.retries < settings.fetch_max_retries:
            countdown = backoff_seconds(
                task.request.retries, settings.fetch_backoff_base, settings.fetch_backoff_max, exc.retry_after,
            )
            raise task.retry(countdown=countdown, exc=exc, max_retries=settings.fetch_max_retries) from exc
        return run.fail("fetch", exc.reason, f"gave up after {task.request.retries + 1} attempts: {exc}",
                        status=exc.status)
    except PermanentFetchError as exc:
        if exc.status in (404, 410) and previous is not None and previous.document_id:
            run.stage({"gone": previous.document_id, "on_gone": profile.on_gone})
            return "gone"
        return run.fail("fetch", exc.reason, str(exc), status=exc.status)

    if page.status == 304 or (previous is not None and previous.content_sha256 == page.sha256):
        state.record_unchanged(url)
        return run.finish(UNCHANGED)

    raw = raw_record(page)
    try:
        with timings(settings).measure("parse"):
            document = parse_page(page.body, page.final_url, page.content_type, parser=profile.parser)
    except ParseError as exc:
        # The raw page is kept all the same: a better parser can read it later.
        return run.fail("parse", exc.reason, str(exc), status=page.status, raw=raw)
    except (SoftTimeLimitExceeded, *CONNECTION_ERRORS):
        raise
    except Exception as exc:  # noqa: BLE001 - as above
        log.exception("parser crashed on %s", url)
        return run.fail("parse", "parser_crash", f"{exc.__class__.__name__}: {exc}", status=page.status, raw=raw)
    raw["canonical_url"] = document["canonical_url"]
    raw["source"] = document["source"]
    indexable(document, page.fetched_at)
    run.stage({"document": document, "raw": raw, "source": run.source,
               "recheck": [profile.recheck_min, profile.recheck_max]})
    return run.finish(FETCHED)


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
def _indices_ready(prefix: str, schemas_dir: str) -> None:
    """Aliases in place. Setting them up from scratch needs template rights, which a locked-down
    worker lacks (there `report-ingest setup` does it first, and this only checks)."""
    es, names = get_es(), IndexNames(prefix)
    if all(es.indices.exists_alias(name=names.alias(kind)) for kind in KINDS):
        add_new_fields(es, names, Path(schemas_dir))  # an upgraded worker may write new fields
    else:
        ensure_indices(es, names, Path(schemas_dir))


@worker_ready.connect
def _install_templates_at_start(**_kwargs) -> None:
    """Templates and aliases go in when a worker starts; the index task checks again anyway."""
    settings = get_settings()
    try:
        _indices_ready(settings.index_prefix, str(settings.schemas_dir))
    except (ESConnectionError, ConnectionTimeout) as exc:
        log.warning("Elasticsearch not reachable at start-up (%s); indices will be set up on first write", exc)


def shadow_index(settings: Settings) -> str | None:
    """The index a running rebuild fills, if any: new documents must reach it too."""
    return get_redis().get(RebuildKeys(settings.index_prefix).shadow)


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
    soft_time_limit=INDEX_TIME_LIMIT - 30, time_limit=INDEX_TIME_LIMIT,
)
def index_pending(self: Task) -> int:
    """Bulk-write staged entries in batches until none are left; return how many were written.

    One run writes at a time (IndexRunner). Entries Elasticsearch could not take
    for now (unreachable, 429, 5xx) stay staged and the run retries with backoff
    for as long as that lasts: staged entries are never dropped, so there is no
    retry cap to reach. A run whose worker died mid-batch is delivered again and
    then writes one entry at a time, so the entry that killed it is found and
    recorded as poison.
    """
    settings = get_settings()
    with redelivered_unless_recorded(self):
        queue = staging(settings)
        runner = IndexRunner(get_redis(), settings.index_prefix, self.request.id, INDEX_RUNNER_TTL)
        if not runner.hold():
            return 0  # another run is writing; it takes what is staged now too
        careful = not within_delivery_cap(self, get_redis(), Keys(settings.index_prefix), 1,
                                          delivery_ttl(settings))
        try:
            written = _drain(self, settings, queue, runner, careful)
        finally:
            _release_quietly(runner)
        queue.release_trigger()
        # Entries staged after the last take but before the release would wait for
        # housekeeping; pick them up now.
        if queue.size() and queue.claim_trigger(ttl=TRIGGER_TTL):
            index_pending.apply_async(countdown=INDEX_BATCH_WINDOW)
        return written


def _release_quietly(runner: IndexRunner) -> None:
    # Never let cleanup replace the way the run ended; the lock expires by itself.
    try:
        runner.release()
    except CONNECTION_ERRORS as exc:
        log.warning("could not release the index runner lock (%s); it expires by itself", exc)


def _drain(task: Task, settings: Settings, queue: Staging, runner: IndexRunner, careful: bool) -> int:
    names = IndexNames(settings.index_prefix)
    written = 0
    try:
        _indices_ready(names.prefix, str(settings.schemas_dir))
        while batch := queue.take(1 if careful else settings.index_batch_size):
            queue.refresh_trigger(TRIGGER_TTL)
            runner.hold()
            result = _write_batch(get_es(), names, settings, queue, batch, careful)
            written += result.written
            if result.transient:
                raise IndexBackoff(f"{result.transient} entries refused for now: {result.transient_reason}")
            if result.removed == 0:
                break  # every entry was restaged meanwhile: the next run takes them
    except (IndexBackoff, ESConnectionError, ConnectionTimeout) as exc:
        countdown = backoff_seconds(task.request.retries, 1.0, settings.index_backoff_max, None)
        # The retry is on its way: nobody should start another run before it.
        queue.refresh_trigger(int(countdown) + TRIGGER_TTL)
        log.warning("index run waits %.0fs for Elasticsearch: %s", countdown, exc)
        raise task.retry(countdown=countdown, exc=IndexBackoff(str(exc)), max_retries=None) from exc
    return written


@dataclass
class BatchResult:
    written: int = 0
    removed: int = 0
    transient: int = 0
    transient_reason: str = ""


def _decode(key: str, text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError as exc:
        # Not something this system wrote; kept as a failure so it is seen, not retried forever.
        return {"url": f"staged:{key}", "failure": failure_record(
            f"staged:{key}", "index", "staging_corrupt", f"staged entry is not JSON: {exc}: {text[:200]!r}")}


def _write_batch(es, names: IndexNames, settings: Settings, queue: Staging, batch: list[tuple[str, str]],
                 careful: bool) -> BatchResult:
    entries = {key: _decode(key, text) for key, text in batch}
    if careful:
        for key, entry in entries.items():
            if queue.count_attempt(key) > settings.max_deliveries:
                entries[key] = {"url": entry.get("url", key), "crawl_id": entry.get("crawl_id"),
                                "failure": failure_record(entry.get("url", key), "index", "poison",
                                                          "its index run was lost every time it was written",
                                                          crawl_id=entry.get("crawl_id"),
                                                          source=entry.get("source"))}
    owner: dict[int, str] = {}
    actions = []
    shadow = shadow_index(settings)
    for key, entry in entries.items():
        for action in _actions(names, key, entry, shadow):
            owner[id(action)] = key
            actions.append(action)
    refused: dict[str, str] = {}
    transient: dict[str, str] = {}
    try:
        with timings(settings).measure("index", items=len(entries)):
            _bulk(es, settings, actions)
    except BulkWriteError as exc:
        for error in exc.result.errors:
            (transient if error.transient else refused)[owner[id(error.action)]] = f"{error.status} {error.reason}"
    refused = {key: reason for key, reason in refused.items() if key not in transient}
    if refused:
        _record_refused(es, names, settings, entries, refused)
    done = [(key, text) for key, text in batch if key not in transient]
    for key, _text in done:
        entry = entries[key]
        if key not in refused:
            _record_state(settings, entry)
        if (progress := tracker(settings, entry.get("crawl_id"))) is not None:
            progress.mark(entry["url"], _outcome(entry, key in refused))
    return BatchResult(written=len(done) - len(refused), removed=queue.remove(done), transient=len(transient),
                       transient_reason=next(iter(transient.values()), ""))


def _bulk(es, settings: Settings, actions: list[dict]) -> None:
    bulk_write(es, actions, chunk_size=settings.bulk_chunk_size, max_bytes=settings.bulk_max_bytes,
               max_retries=settings.bulk_max_retries)


def _record_refused(es, names: IndexNames, settings: Settings, entries: dict[str, dict],
                    refused: dict[str, str]) -> None:
    """The items Elasticsearch refused become failures: recorded, never dropped, never blocking.

    A refused document becomes an `index_error` record. A refused failure record
    (a URL too long for a keyword, say) is written again in a minimal form, with
    its URL cut short, and so is an `index_error` record that is refused in turn.
    """
    records = {}
    for key, reason in refused.items():
        entry = entries[key]
        if "document" not in entry and entry.get("failure"):  # the failure record itself was refused
            records[key] = _minimal(entry["failure"], reason)
        else:
            records[key] = failure_record(entry["url"], "index", "index_error", reason,
                                          crawl_id=entry.get("crawl_id"), source=entry.get("source"))
    try:
        _bulk(es, settings, [{"_op_type": "index", "_index": names.failures, "_id": key, "_source": record}
                             for key, record in records.items()])
    except BulkWriteError as exc:
        if any(error.transient for error in exc.result.errors):
            raise IndexBackoff(str(exc)) from exc
        _bulk(es, settings, [{"_op_type": "index", "_index": names.failures, "_id": error.action["_id"],
                              "_source": _minimal(error.action["_source"], error.reason)}
                             for error in exc.result.errors])


def _minimal(record: dict, why: str) -> dict:
    url = record["url"]
    return {
        **record, "url": url[:MINIMAL_URL_CHARS],
        "detail": (f"the full failure record was refused ({why[:300]}); URL of {len(url)} characters "
                   f"cut short. {record.get('detail') or ''}")[:2000],
    }
