"""Every Redis key the system uses, in one place, with who writes it, who reads it, and its lifetime.

All keys of one deployment start with `ri:{INDEX_PREFIX}`, so two deployments
(or two test modules) can share a Redis without seeing each other's state.
Celery's own keys (queues, `unacked`, `unacked_index`) are kombu's and live
in the broker database unprefixed: give each deployment its own database.
The result backend's keys (only the rebuild's chord uses it) are Celery's too,
under `ri:{INDEX_PREFIX}celery:` (workers/app.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.urls import doc_id


@dataclass(frozen=True)
class Keys:
    namespace: str = ""

    @property
    def base(self) -> str:
        return f"ri:{self.namespace}"

    # --- the hand-over from fetch to index ------------------------------------------

    @property
    def staged(self) -> str:
        """Hash doc-id -> staged entry JSON. Fetch tasks write; index_pending reads and removes
        exactly what it wrote. No expiry: an entry leaves only once it is in Elasticsearch."""
        return f"{self.base}staged"

    @property
    def index_trigger(self) -> str:
        """String, set while an index run is queued or running, so one is enqueued, not one per page.
        Set by whoever stages first; refreshed by the running index task; expires after
        TRIGGER_TTL (workers/staging.py) if that task is lost, and housekeeping then enqueues a new one."""
        return f"{self.base}index-scheduled"

    @property
    def index_runner(self) -> str:
        """Lock (string token) held by the one index_pending run writing at a time, so an older
        version of a page is never written after a newer one. Expires unless renewed per batch."""
        return f"{self.base}index-runner"

    @property
    def index_attempts(self) -> str:
        """Hash doc-id -> attempts, for entries written one by one after an index run was lost
        mid-batch; an entry that keeps killing the index task is recorded as poison. Cleared
        when the entry leaves staging."""
        return f"{self.base}index-attempts"

    # --- the crawl ------------------------------------------------------------------

    def url_state(self, url_id: str) -> str:
        """Hash: what the crawler knows of one URL (validators, content hash, document ids, recheck
        interval). Written by fetch tasks and the index task; read by fetch tasks. No expiry."""
        return f"{self.base}urlstate:{url_id}"

    def document_urls(self, document_id: str) -> str:
        """Set of the URLs whose last indexed fetch made this document (several addresses of one
        canonical page), so a 404 on one of them deletes it only once none serves it. Written by
        the index task with the crawl state (workers/index/serving.py); removed when it empties.
        One member per URL and document; no expiry, like the URL's state."""
        return f"{self.base}docurls:{document_id}"

    @property
    def due(self) -> str:
        """Sorted set of URLs by next recheck time, written with each url_state, read by discovery."""
        return f"{self.base}due"

    def crawl(self, crawl_id: str) -> str:
        """Hash URL -> progress state of one crawl. Written by `crawl` and the tasks; read by the
        progress display and `status`. Expires CRAWL_TTL (7 days) after the crawl started."""
        return f"{self.base}crawl:{crawl_id}"

    def crawl_options(self, crawl_id: str) -> str:
        """The options a crawl was started with (JSON: source, networks, force). Written once by
        `crawl`, read by its tasks and `retry-failed`. Expires with the crawl's progress."""
        return f"{self.base}crawl:{crawl_id}:options"

    def robots(self, origin: str) -> str:
        """Hash: one origin's robots.txt (status, body, fetched_at). Written by the first worker
        that needs it; expires ROBOTS_TTL later (ROBOTS_ERROR_TTL when it could not be fetched)."""
        return f"{self.base}robots:{origin}"

    def host(self, host: str, what: str) -> str:
        """Per host: `rate` (hash: next free slot, backoff), `leases` (sorted set of requests in
        flight), `line` (sorted set of requests waiting for their slot). Written by the Lua scripts
        of workers/crawl/host_limits.py; each expires shortly after its last use."""
        return f"{self.base}host:{host.lower()}:{what}"

    @property
    def timings(self) -> str:
        """Hash stage -> cumulative seconds and items, written by every task, read by `status`."""
        return f"{self.base}timings"

    @property
    def redbeat(self) -> str:
        """Prefix of RedBeat's schedule and lock keys (celery-redbeat owns them)."""
        return f"{self.base}redbeat:"

    # --- delivery -------------------------------------------------------------------

    def deliveries(self, task_id: str, retries: int) -> str:
        """Counter of deliveries of one task attempt (poison detection). Written by the task at
        start; expires after the broker could no longer deliver it again."""
        return f"{self.base}deliveries:{task_id}:{retries}"

    def page_deliveries(self, crawl_id: str | None, url: str) -> str:
        """Counter of one crawl page's deliveries that have not finished, whichever message carried
        them (poison detection for fetch_page). Incremented by the task at start, decremented when
        its outcome is staged or it lets the page go (a deferral, a retry); expires like the above."""
        return f"{self.base}deliveries:page:{crawl_id or '-'}:{doc_id(url)}"

    @property
    def parked(self) -> str:
        """Sorted set of fetch tasks (JSON) by the time they may run again: pages whose host asked
        for a wait longer than a broker countdown should hold. Written by fetch tasks; housekeeping
        re-enqueues due ones. No expiry."""
        return f"{self.base}parked"

    def consumer(self, node: str) -> str:
        """Set of broker delivery tags a live worker holds (running, reserved, or waiting for a
        countdown). Rewritten by that worker's housekeeping every interval; expires after
        ORPHAN_GRACE, so a dead worker's tags become orphans another worker requeues."""
        return f"{self.base}consumer:{node}"

    @property
    def consumers(self) -> str:
        """Sorted set of worker node names by last heartbeat, to find their `consumer` sets."""
        return f"{self.base}consumers"

    @property
    def housekeeping(self) -> str:
        """Lock (string: the sweeper's token) held for one housekeeping sweep from start to end, and
        one round more, so workers sweep one at a time. Renewed before each step; expires by itself."""
        return f"{self.base}housekeeping"

    @property
    def reconcile(self) -> str:
        """String: the time from which a reconciliation of crawls against the broker's messages is
        due (workers/crawl/reconcile.py). Set by housekeeping when a worker reconnected to the
        broker or died; claimed and removed by the housekeeping sweep that runs it."""
        return f"{self.base}reconcile"

    # --- the rebuild (workers/rebuild/) ---------------------------------------------

    @property
    def rebuild_lock(self) -> str:
        """Lock (string: the run's owner token) held while a rebuild runs; one at a time.
        Renewed by the heartbeat of the process driving the run, or, while a task-run rebuild's
        chunks run, by each chunk before every write; expires the lock TTL after renewals stop."""
        return f"{self.base}reindex:lock"

    @property
    def rebuild_run(self) -> str:
        """The unfinished rebuild's RunState (JSON), written by the coordinator, read by its chunks
        and by `--resume`. Expires RUN_KEY_TTL after the last write; deleted when the run ends."""
        return f"{self.base}reindex:run"

    @property
    def rebuild_shadow(self) -> str:
        """The index a running rebuild fills: the index task writes new documents there too.
        Set with the lock's TTL and renewed with the lock (the same script), so a dead rebuild's
        dual writes stop by themselves; cleared when the run ends or is discarded."""
        return f"{self.base}reindex:shadow"

    def rebuild_of(self, run_id: str, what: str) -> str:
        """One run's bookkeeping (`done`, `errors`, `read`, `ids`, `failures`, `recovered`,
        `dropped`, `stats`): written by its chunks and catch-up, read by the coordinator.
        Expire RUN_KEY_TTL after the last write; deleted when the run ends."""
        return f"{self.base}reindex:{run_id}:{what}"

    def rebuild_run_keys(self, run_id: str) -> list[str]:
        return [self.rebuild_of(run_id, what)
                for what in ("done", "errors", "read", "ids", "failures", "recovered", "dropped", "stats")]
