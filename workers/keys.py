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
    def staged_meta(self) -> str:
        """Hash doc-id -> its staged entry's version and the IDs of the crawls waiting for it
        ("VERSION CRAWL..."), one field per entry of `staged`, written and removed with it; index
        runs list entries from it without reading them, and remove an entry only at the version
        they wrote. No expiry: it leaves with its entry."""
        return f"{self.base}staged:meta"

    @property
    def staged_bytes(self) -> str:
        """Integer: the bytes of every entry of `staged`, kept by the scripts that stage and remove
        entries; fetches wait while it is over STAGING_MAX_BYTES. No expiry: a counter of one key."""
        return f"{self.base}staged:bytes"

    @property
    def index_trigger(self) -> str:
        """String, set while an index run is queued or running, so one is enqueued, not one per page.
        Set by whoever stages first; refreshed by the running index task; expires after
        TRIGGER_TTL (workers/index/staging.py) if that task is lost, and housekeeping then enqueues a new one."""
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
        """String: what the crawler knows of one URL (validators, content hash, document ids, recheck
        interval, next due time), packed (workers/tracking/state.py). Written by fetch tasks and the
        index task; read by fetch tasks and discovery. Expires URL_STATE_TTL (at least three
        recheck intervals) after its last write: a URL nothing crawls any more is forgotten."""
        return f"{self.base}url:{url_id}"

    def legacy_url_state(self, url_id: str) -> str:
        """Hash: a URL's state as stored before the packed layout; moved to `url_state` when
        written again or by housekeeping, then deleted."""
        return f"{self.base}urlstate:{url_id}"

    def document_urls(self, document_id: str) -> str:
        """Set of the URLs whose last indexed fetch made this document (several addresses of one
        canonical page), so a 404 on one of them deletes it only once none serves it. Written by
        the index task with the crawl state (workers/index/serving.py); removed when it empties.
        One member per URL and document; no expiry, like the URL's state."""
        return f"{self.base}docurls:{document_id}"

    @property
    def legacy_due(self) -> str:
        """Sorted set of URLs by next recheck time, of the layout before the packed one: the URLs
        whose `legacy_url_state` is still to move. Emptied by housekeeping."""
        return f"{self.base}due"

    def crawl(self, crawl_id: str) -> str:
        """Hash URL -> progress state of one crawl. Written by `crawl` and the tasks; read, a page at
        a time, by the reconciliation. No expiry while any of its URLs is open; CRAWL_TTL (7 days)
        after the last one finished, with the crawl's options and counts."""
        return f"{self.base}crawl:{crawl_id}"

    def crawl_options(self, crawl_id: str) -> str:
        """The options a crawl was started with (JSON: source, networks, force). Written once by
        `crawl`, read by its tasks and `retry-failed`. Expires with the crawl's progress."""
        return f"{self.base}crawl:{crawl_id}:options"

    @property
    def crawl_starts(self) -> str:
        """Sorted set of the IDs of crawls being started, by the time their start's lease runs out
        (workers/crawl/start.py). Written by the start at each step and removed when it finishes;
        housekeeping removes a start whose lease ran out and asks for a reconciliation."""
        return f"{self.base}crawls:starting"

    def crawl_counts(self, crawl_id: str) -> str:
        """Hash state -> number of the crawl's URLs in it, plus `open` (queued or fetched), kept by
        the same scripts that set a URL's state (workers/tracking/progress.py), so progress reads a
        handful of fields, never the crawl. Expires with the crawl's progress."""
        return f"{self.base}crawl:{crawl_id}:counts"

    @property
    def open_crawls(self) -> str:
        """Set of the IDs of crawls that have URLs not finished. Added to when a crawl gains URLs,
        removed from by the script that finishes its last one; read by the reconciliation. Its
        members live as long as their crawls are open."""
        return f"{self.base}crawls:open"

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

    def page_deliveries(self, crawl_id: str | None, page_key: str) -> str:
        """Counter of one crawl page's deliveries that have not finished, whichever message carried
        them (poison detection for fetch_page), by the page's hash (workers/urls.py `PageURL.key`).
        Incremented by the task at start, decremented when its outcome is staged or it lets the page
        go (a deferral, a retry); expires like the above."""
        return f"{self.base}deliveries:page:{crawl_id or '-'}:{page_key}"

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
    def alerts_sweep(self) -> str:
        """String, set (NX) by the housekeeping sweep that sends the look for alerts whose delivery
        was lost (workers/watches/tasks.py); expires after ALERTS_SWEEP_INTERVAL, so the look is
        sent at most that often across all workers."""
        return f"{self.base}alerts-sweep"

    @property
    def reconcile(self) -> str:
        """String: the time from which a reconciliation of crawls against the broker's messages is
        due (workers/crawl/reconcile.py). Set by housekeeping when a worker reconnected to the
        broker or died, or a crawl start stopped half way; moved to `reconcile_claimed` by the
        worker that claims it."""
        return f"{self.base}reconcile"

    @property
    def reconcile_claimed(self) -> str:
        """String: the request a reconciliation is running for, moved here from `reconcile` when a
        worker claims it, deleted when the run ends. No expiry: a run whose worker died (its lease
        expired) is started again from here by another worker."""
        return f"{self.base}reconcile:claimed"

    @property
    def reconcile_lease(self) -> str:
        """Lock (string: node name) of the worker running a reconciliation, renewed by every step;
        expires RECONCILE_LEASE after the last one."""
        return f"{self.base}reconcile:lease"

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
