"""The index task: bulk-write what fetch tasks staged, in batches, until nothing is left.

One run writes at a time (IndexRunner). Entries Elasticsearch cannot take for
now (unreachable, 429, 5xx) stay staged and the run retries with backoff for as
long as that lasts; entries it refuses for good become failure records. A run
whose worker died mid-batch is delivered again and then writes one entry at a
time, so an entry that kills the worker is found and recorded as poison.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from celery import Task
from celery.signals import worker_ready
from elasticsearch import ApiError, ConnectionTimeout, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError

from workers.app import app
from workers.backoff import backoff_seconds
from workers.clients import get_es, get_redis
from workers.delivery import CONNECTION_ERRORS, redelivered_unless_recorded
from workers.index.bulk import BulkResult, BulkWriteError, bulk_write
from workers.index.indices import KINDS, IndexNames, add_new_fields, ensure_indices
from workers.index.revisions import revision_actions
from workers.index.runner import IndexRunner
from workers.index.serving import ServingUrls
from workers.index.staging import INDEX_BATCH_WINDOW, TRIGGER_TTL, Staging, Taken
from workers.keys import Keys
from workers.records import DocumentEntry, Failure, FailureEntry, GoneEntry, Staged
from workers.settings import Settings, get_settings
from workers.task_names import INDEX_PENDING, INDEX_TIME_LIMIT, RAISE_ALERTS
from workers.timings import StageTimings
from workers.tracking.progress import FAILED, CrawlTracker
from workers.tracking.state import CrawlState

log = logging.getLogger(__name__)
# Releases of the index lock tried while Redis is out of reach: about 15 s, past a Sentinel failover.
RELEASE_TRIES = 5


class LostRunnerLock(Exception):
    """Another run holds the index runner lock: this one stops before writing again."""


class IndexBackoff(Exception):
    """Elasticsearch is unreachable or overloaded; staged entries wait for the next attempt."""


@lru_cache(maxsize=8)
def indices_ready(prefix: str, schemas_dir: str) -> None:
    """Aliases in place. Setting them up from scratch needs template rights, which a locked-down
    worker lacks (there `report-ingest setup` does it first, and this only checks)."""
    es, names = get_es(), IndexNames(prefix)
    if all(es.indices.exists_alias(name=names.alias(kind)) for kind in KINDS):
        add_new_fields(es, names, Path(schemas_dir))  # an upgraded worker may write new fields
    else:
        ensure_indices(es, names, Path(schemas_dir), get_settings().elasticsearch_replicas)


@worker_ready.connect
def _install_templates_at_start(**_kwargs) -> None:
    """Templates and aliases go in when a worker starts; the index task checks again anyway."""
    settings = get_settings()
    try:
        indices_ready(settings.index_prefix, str(settings.schemas_dir))
    except (ESConnectionError, ConnectionTimeout) as exc:
        log.warning("Elasticsearch not reachable at start-up (%s); indices will be set up on first write", exc)


def shadow_index(settings: Settings) -> str | None:
    """The index a running rebuild fills, if any: new documents must reach it too."""
    return get_redis().get(Keys(settings.index_prefix).rebuild_shadow)


@app.task(
    bind=True, name=INDEX_PENDING,
    # Staged entries are never dropped, so there is no retry cap to reach: the run comes back
    # at most INDEX_BACKOFF_MAX apart until Elasticsearch takes them.
    max_retries=None,
    soft_time_limit=INDEX_TIME_LIMIT - 30, time_limit=INDEX_TIME_LIMIT,
)
def index_pending(self: Task) -> int:
    """Bulk-write staged entries in batches until none are left; return how many were written."""
    settings = get_settings()
    with redelivered_unless_recorded(self, settings) as delivery:
        queue = Staging(get_redis(), settings.index_prefix)
        runner = IndexRunner(get_redis(), settings.index_prefix, self.request.hostname)
        if not runner.hold():
            return _leave_to_holder(queue, runner)
        # Delivered again after its worker died mid-batch: the next batch's worth of entries is
        # written one by one, so an entry that kills the worker is found and recorded as poison.
        careful = 0 if delivery.count_attempt(get_redis()) else settings.index_batch_size
        try:
            with runner.renewed():
                written = _drain(self, settings, queue, runner, careful)
        except LostRunnerLock as exc:  # the run that took over also takes what is staged
            log.warning("index run %s stops: %s", self.request.id, exc)
            return 0
        finally:
            _release_quietly(runner)
        queue.release_trigger()
        # Entries staged after the last take but before the release would wait for
        # housekeeping; pick them up now.
        if queue.size() and queue.claim_trigger(ttl=TRIGGER_TTL):
            index_pending.apply_async(countdown=INDEX_BATCH_WINDOW)
        return written


def _leave_to_holder(queue: Staging, runner: IndexRunner) -> int:
    """Another run holds the lock: a live one takes what is staged now too, and keeps the trigger
    as it goes. A lease with no run behind it (one a failover brought back, its release lost with
    the old master) is renewed by nobody: the trigger lasts no longer than it, so housekeeping
    starts a run once it lapsed. Measured: left at a minute, the staged pages of a Redis failover
    waited 60 s for the trigger, 40 s after the lease had gone."""
    queue.refresh_trigger(math.ceil(runner.lapses_in()) + 2)
    return 0


def _release_quietly(runner: IndexRunner, tries: int = RELEASE_TRIES) -> None:
    # Tried again while Redis comes back: a lock left behind by a run cut off by a failover or a
    # restart holds every index run off until its lease lapses. Never lets cleanup replace the way
    # the run ended.
    for attempt in range(tries):
        try:
            runner.release()
            return
        except CONNECTION_ERRORS as exc:
            if attempt == tries - 1:
                log.warning("could not release the index runner lock (%s); it expires by itself", exc)
                return
            time.sleep(backoff_seconds(attempt, 1.0, 8.0))


def _keep(runner: IndexRunner) -> None:
    # What this run took stays staged: the run that holds the lock now writes it.
    if not runner.hold():
        raise LostRunnerLock("another index run took over the runner lock")


def _drain(task: Task, settings: Settings, queue: Staging, runner: IndexRunner, careful: int) -> int:
    written = 0
    try:
        try:
            indices_ready(settings.index_prefix, str(settings.schemas_dir))
        except ApiError as exc:
            # 401/403 (credentials, privileges), 429, 503: nothing can be written until it passes,
            # and requeued at once the run would take the same first batch in a tight loop.
            raise IndexBackoff(f"readiness check refused: HTTP {exc.meta.status} {exc.message}") from exc
        while batch := queue.take(1 if careful else settings.index_batch_size, settings.index_batch_max_bytes):
            queue.refresh_trigger(TRIGGER_TTL)
            # BatchWriter checks the lock before each bulk request, and stops if it was lost.
            result = BatchWriter(get_es(), settings, queue, keep_lock=lambda: _keep(runner)).write(
                batch, careful > 0)
            careful = max(0, careful - 1)
            written += result.written
            if result.transient:
                raise IndexBackoff(f"{result.transient} entries refused for now: {result.transient_reason}")
            if result.removed == 0:
                break  # every entry was restaged meanwhile: the next run takes them
    except (IndexBackoff, ESConnectionError, ConnectionTimeout) as exc:
        countdown = backoff_seconds(task.request.retries, 1.0, settings.index_backoff_max)
        # The retry is on its way: nobody should start another run before it.
        queue.refresh_trigger(int(countdown) + TRIGGER_TTL)
        log.warning("index run waits %.0fs for Elasticsearch: %s", countdown, exc)
        raise task.retry(countdown=countdown, exc=IndexBackoff(str(exc))) from exc
    return written


@dataclass
class BatchResult:
    written: int = 0
    removed: int = 0
    transient: int = 0
    transient_reason: str = ""


class BatchWriter:
    """One batch of staged entries: write, record what was refused, remember what was written."""

    def __init__(self, es: Elasticsearch, settings: Settings, queue: Staging,
                 keep_lock: Callable[[], None] | None = None):
        self.es, self.settings, self.queue, self.keep_lock = es, settings, queue, keep_lock
        self.names = IndexNames(settings.index_prefix)

    def write(self, batch: list[Taken], careful: bool) -> BatchResult:
        entries = {taken.key: Staged.from_json(taken.key, taken.text) for taken in batch}
        if careful:
            for key, entry in entries.items():
                if self.queue.count_attempt(key) > self.settings.max_deliveries:
                    entries[key] = FailureEntry(entry.url, entry.crawl_id, entry.source, Failure(
                        entry.url, "index", "poison", "its index run was lost every time it was written",
                        crawl_id=entry.crawl_id, source=entry.source))
        serving = ServingUrls(get_redis(), self.settings.index_prefix)
        for key, entry in entries.items():
            if isinstance(entry, GoneEntry):
                # Only what no other address of the same page still serves goes.
                entries[key] = replace(entry, document_ids=serving.release(entry.url, entry.document_ids))
        owner: dict[int, str] = {}
        actions = []
        shadow = shadow_index(self.settings)
        for key, entry in entries.items():
            for action in entry.to_actions(self.names, shadow):
                owner[id(action)] = key
                actions.append(action)
        raws = {key: entry.raw for key, entry in entries.items() if isinstance(entry, DocumentEntry) and entry.raw}
        for key, action in revision_actions(self.es, self.names.raw_pages, raws, self.settings.revisions_kept):
            owner[id(action)] = key
            actions.append(action)
        refused: dict[str, str] = {}
        transient: dict[str, str] = {}
        try:
            with StageTimings(get_redis(), self.settings.index_prefix).measure("index", items=len(entries)):
                result = self._bulk(actions)
        except BulkWriteError as exc:
            result = exc.result
            for error in exc.result.errors:
                (transient if error.transient else refused)[owner[id(error.action)]] = \
                    f"{error.status} {error.reason}"
        # The index holds a newer fetch of these (written late, out of order): the crawl state keeps
        # that fetch's validators, not these older ones.
        superseded = {owner[id(action)] for action in result.superseded}
        refused = {key: reason for key, reason in refused.items() if key not in transient}
        if refused:
            self._record_refused({key: entries[key].refused(reason) for key, reason in refused.items()})
        done = [taken for taken in batch if taken.key not in transient]
        self._remember({taken.key: (entries[taken.key], taken.crawls) for taken in done}, refused, superseded)
        self._hand_to_watches([document.id for taken in done if taken.key not in refused
                               and taken.key not in superseded and isinstance(entries[taken.key], DocumentEntry)
                               for document in entries[taken.key].documents])
        return BatchResult(written=len(done) - len(refused), removed=self.queue.remove(done),
                           transient=len(transient), transient_reason=next(iter(transient.values()), ""))

    def _remember(self, written: dict[str, tuple[Staged, tuple[str, ...]]], refused: dict[str, str],
                  superseded: set[str]) -> None:
        """The crawl state and progress of the URLs whose entries were written (or refused for
        good, or found a newer fetch already written), in every crawl that waited for them: read
        in one round trip, written in one."""
        client, prefix = get_redis(), self.settings.index_prefix
        pipe = client.pipeline(transaction=False)
        CrawlState(client, prefix).update_many(
            {entry.url: entry.remembered for key, (entry, _crawls) in written.items()
             if key not in refused and key not in superseded}, pipe)
        serving = ServingUrls(client, prefix)
        for key, (entry, _crawls) in written.items():
            if isinstance(entry, DocumentEntry) and key not in refused and key not in superseded:
                serving.serve(entry.url, entry.document_ids, entry.dropped, pipe)
        trackers: dict[str, CrawlTracker] = {}
        for key, (entry, crawls) in written.items():
            for crawl_id in dict.fromkeys([*crawls, entry.crawl_id] if entry.crawl_id else crawls):
                if crawl_id not in trackers:
                    trackers[crawl_id] = CrawlTracker(client, prefix, crawl_id)
                trackers[crawl_id].mark(entry.url, FAILED if key in refused else entry.outcome(), pipe)
        pipe.execute()

    def _hand_to_watches(self, document_ids: list[str]) -> None:
        """The written reports, to the watches (when there are any) before the entries leave
        staging: a message that cannot be sent leaves them to be written, and handed over, again."""
        if self.settings.watches_file is not None and document_ids:
            app.send_task(RAISE_ALERTS, args=[document_ids])

    def _bulk(self, actions: list[dict]) -> BulkResult:
        s = self.settings
        return bulk_write(self.es, actions, chunk_size=s.bulk_chunk_size, max_bytes=s.bulk_max_bytes,
                   max_retries=s.bulk_max_retries, before_chunk=self.keep_lock)

    def _record_refused(self, records: dict[str, Failure]) -> None:
        """The entries Elasticsearch refused become failures: recorded, never dropped, never blocking.
        A record refused in turn is written again in its minimal form."""
        try:
            self._bulk([self._failure_action(key, record) for key, record in records.items()])
        except BulkWriteError as exc:
            if any(error.transient for error in exc.result.errors):
                raise IndexBackoff(str(exc)) from exc
            try:
                self._bulk([self._failure_action(error.action["_id"],
                                                 records[error.action["_id"]].minimal(error.reason))
                            for error in exc.result.errors])
            except BulkWriteError as minimal:
                # The entries stay staged, and the run waits for whatever refuses them to end
                # (a write block, a broken mapping), instead of coming back at once.
                log.error("failure records refused even in their minimal form: %s", minimal)
                raise IndexBackoff(f"failure records refused even in their minimal form: {minimal}") from minimal

    def _failure_action(self, key: str, record: Failure) -> dict:
        return {"_op_type": "index", "_index": self.names.failures, "_id": key, "_source": record.to_source()}
