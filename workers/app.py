"""The Celery application: Redis broker, JSON only, at-least-once delivery.

Importing this module opens no connection and reads nothing: the configuration
is built from the settings when Celery first needs it, and the beat schedule
from the sources file by beat alone (workers/schedule.py), so a broken sources
file can never stop a worker.

The stages' task modules register with this app, so it imports none of them, nor
anything above them: what a worker process adds (housekeeping, the watchdog, the
heap) is wired in by workers/worker.py, which Celery imports as the first include.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from workers.fixes.celery_results import App, Task
from workers.keys import Keys
from workers.redaction import redact_logs
from workers.sentinel import celery_options as celery_sentinel_options
from workers.settings import Settings, get_settings
from workers.task_names import (CHUNK_TIME_LIMIT, DISCOVER_TIME_LIMIT, FETCH_QUEUE, INDEX_QUEUE, INDEX_TIME_LIMIT,
                                ROUTES)

# A fetch's time beyond its network deadlines: parsing a page, staging it, bookkeeping.
FETCH_MARGIN = 15.0
# Beat wakes at least this often (seconds), so second-level test schedules fire on time;
# its Redis lock outlives a few missed wake-ups before another beat may take over.
BEAT_MAX_LOOP = 1
BEAT_LOCK_TIMEOUT = 30


def fetch_time_limits(settings: Settings) -> tuple[float, float]:
    """A fetch task's (soft, hard) time limits: room for the slowest fetch the settings allow.

    robots.txt, then up to MAX_REDIRECTS hops and the last one, each after waiting up to
    HOST_MAX_INLINE_WAIT for its host's slot; the last hop a PDF, which adds PDF_READ_TIMEOUT
    to its deadline and PDF_PARSE_SECONDS to read its text. A soft limit shorter than that
    ends a slow large PDF as `time_limit` every time (it was 105 s for a 145 s PDF hop).
    """
    s = settings
    hop = s.host_max_inline_wait + s.connect_timeout + s.read_timeout
    soft = hop * (s.max_redirects + 2) + s.pdf_read_timeout + s.pdf_parse_seconds + FETCH_MARGIN
    return soft, soft + FETCH_MARGIN


def longest_hold(settings: Settings) -> float:
    """The longest a worker may hold a message unacknowledged: a task's hard limit, or a countdown."""
    longest_task = max(fetch_time_limits(settings)[1], INDEX_TIME_LIMIT, DISCOVER_TIME_LIMIT, CHUNK_TIME_LIMIT)
    return longest_task + max(settings.fetch_backoff_max, settings.max_countdown)


def celery_config(settings: Settings) -> dict:
    """Every Celery setting, from our settings; raises if the two would not hold together."""
    if longest_hold(settings) >= settings.visibility_timeout:
        raise ValueError(
            f"VISIBILITY_TIMEOUT ({settings.visibility_timeout}s) must exceed the longest task plus the "
            f"longest countdown ({longest_hold(settings):.0f}s), or running tasks would be delivered twice"
        )
    config = dict(
        broker_url=settings.redis_url,
        # Redis, with a fix that keeps a worker alive when Redis goes mid-reconnect.
        broker_transport="workers.fixes.kombu_redis:Transport",
        # JSON only: a pickle payload on a shared broker is remote code execution.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Progress lives in Redis counters, so no task stores its result; the backend serves only
        # the rebuild's chord (workers/rebuild/tasks.py), whose keys expire with their results.
        task_ignore_result=True,
        result_backend=settings.redis_url,
        result_backend_transport_options={"global_keyprefix": f"ri:{settings.index_prefix}celery:"},
        # Acknowledge after the task ran, so a crash mid-task redelivers it ...
        task_acks_late=True,
        # ... including when the worker process itself was killed (OOM, segfault) ...
        task_reject_on_worker_lost=True,
        # ... or stopped by the hard time limit: requeued and counted per delivery, so a page
        # that always overruns ends as a `poison` failure record instead of vanishing.
        task_acks_on_timeout=False,
        # Fetches are long and uneven: take one at a time so no page waits behind a slow one.
        worker_prefetch_multiplier=1,
        # A message not acknowledged within this long is delivered again. Workers also hand back
        # the messages of a dead worker much sooner (workers/housekeeping.py).
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        # Celery reads this one too when scheduling countdown retries on Redis.
        visibility_timeout=settings.visibility_timeout,
        # With late acks, a task that runs on after the broker connection is lost is
        # redelivered anyway; cancel it instead of doing the work twice.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # On SIGTERM, give running tasks this long to finish before they are requeued.
        worker_soft_shutdown_timeout=30.0,
        # A hung task must not hold a worker slot forever (in a threads pool: workers/watchdog.py).
        task_soft_time_limit=fetch_time_limits(settings)[0],
        task_time_limit=fetch_time_limits(settings)[1],
        # Fetching and indexing scale separately: run workers per queue.
        task_routes=ROUTES,
        task_default_queue=FETCH_QUEUE,
        # Keep retrying the broker at start-up rather than exiting while Redis boots.
        broker_connection_retry_on_startup=True,
        # Recycle processes now and then, so a leak in a parser library stays bounded.
        worker_max_tasks_per_child=1000,
        timezone="UTC",
        # The schedule lives in Redis and a lock lets only one beat fire, so running
        # two beat processes (failover) never crawls a source twice.
        beat_scheduler="workers.schedule:SourceScheduler",
        redbeat_redis_url=settings.redis_url,
        redbeat_redis_options={},
        redbeat_key_prefix=Keys(settings.index_prefix).redbeat,
        redbeat_lock_timeout=BEAT_LOCK_TIMEOUT,
        beat_max_loop_interval=BEAT_MAX_LOOP,
    )
    # REDIS_URL naming Sentinels: their transports and options, merged into the ones above.
    for key, value in celery_sentinel_options(settings).items():
        config[key] = {**config[key], **value} if isinstance(config.get(key), dict) else value
    return config




def _redact_logs(logger, **_kwargs) -> None:
    redact_logs(logger)  # a signed URL's token in a retry's reason, a task's error, urllib3's warnings


def make_app(settings: Settings | None = None) -> Celery:
    # workers.worker first: a worker (and beat) imports the includes before it builds its
    # blueprints, and that module adds the worker's own steps (housekeeping, the watchdog).
    app = App("report_ingest", task_cls=Task, include=[
        "workers.worker", "workers.crawl.tasks", "workers.index.tasks", "workers.schedule",
        "workers.rebuild.tasks", "workers.watches.tasks"])
    # A promise: Celery builds the configuration on first use, not at import.
    app.add_defaults(lambda: celery_config(settings or get_settings()))
    after_setup_logger.connect(_redact_logs, weak=False)
    after_setup_task_logger.connect(_redact_logs, weak=False)
    return app


app = make_app()
