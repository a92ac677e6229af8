"""The Celery application: Redis broker, JSON only, at-least-once delivery."""

from __future__ import annotations

from celery import Celery

from workers.settings import Settings, get_settings

FETCH_QUEUE = "fetch"
INDEX_QUEUE = "index"
# Rebuilds run on their own workers, so a long reindex never delays the crawl.
REINDEX_QUEUE = "reindex"

# Longest task (the index task's hard limit) plus the longest retry countdown
# (fetch backoff ceiling), with room to spare: a message still unacknowledged
# after this long is redelivered, so anything shorter runs tasks twice.
FETCH_TIME_LIMIT = 120
INDEX_TIME_LIMIT = 600
# Discovery walks listing pages and sitemaps at the host's polite rate: minutes, not seconds.
DISCOVER_TIME_LIMIT = 1800
VISIBILITY_TIMEOUT = 3600
# Beat wakes at least this often (seconds), so second-level test schedules fire on time;
# its Redis lock outlives a few missed wake-ups before another beat may take over.
BEAT_MAX_LOOP = 1
BEAT_LOCK_TIMEOUT = 30


def make_app() -> Celery:
    settings = get_settings()
    if max(INDEX_TIME_LIMIT, DISCOVER_TIME_LIMIT) + settings.fetch_backoff_max >= VISIBILITY_TIMEOUT:
        raise ValueError("FETCH_BACKOFF_MAX is too long for the broker's visibility timeout")
    app = Celery("report_ingest", broker=settings.redis_url, include=["workers.tasks", "workers.reindex"])
    app.conf.update(
        # JSON only: a pickle payload on a shared broker is remote code execution.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Progress lives in Redis counters, so no result backend to fill up.
        task_ignore_result=True,
        # Acknowledge after the task ran, so a crash mid-task redelivers it ...
        task_acks_late=True,
        # ... including when the worker process itself was killed (OOM, segfault).
        task_reject_on_worker_lost=True,
        # Fetches are long and uneven: take one at a time so no page waits behind a slow one.
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        # Celery reads this one too when scheduling countdown retries on Redis.
        visibility_timeout=VISIBILITY_TIMEOUT,
        # With late acks, a task that runs on after the broker connection is lost is
        # redelivered anyway; cancel it instead of doing the work twice.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # On SIGTERM, give running tasks this long to finish before they are requeued.
        worker_soft_shutdown_timeout=30.0,
        # A hung task must not hold a worker slot forever.
        task_soft_time_limit=FETCH_TIME_LIMIT - 15,
        task_time_limit=FETCH_TIME_LIMIT,
        # Fetching and indexing scale separately: run workers per queue.
        task_routes={
            "workers.tasks.fetch_page": {"queue": FETCH_QUEUE},
            "workers.tasks.index_pending": {"queue": INDEX_QUEUE},
            "workers.tasks.discover_source": {"queue": FETCH_QUEUE},
            "workers.reindex.*": {"queue": REINDEX_QUEUE},
        },
        task_default_queue=FETCH_QUEUE,
        # Keep retrying the broker at start-up rather than exiting while Redis boots.
        broker_connection_retry_on_startup=True,
        # Recycle processes now and then, so a leak in a parser library stays bounded.
        worker_max_tasks_per_child=1000,
        timezone="UTC",
        beat_schedule=beat_schedule(settings),
        # The schedule lives in Redis and a lock lets only one beat fire, so running
        # two beat processes (failover) never crawls a source twice.
        beat_scheduler="redbeat.RedBeatScheduler",
        redbeat_redis_url=settings.redis_url,
        redbeat_key_prefix=f"ri:{settings.index_prefix}redbeat:",
        redbeat_lock_timeout=BEAT_LOCK_TIMEOUT,
        beat_max_loop_interval=BEAT_MAX_LOOP,
    )
    return app


def beat_schedule(settings: Settings) -> dict:
    """One discovery run per configured source on its schedule, plus the staging safety net."""
    schedule = {
        # Safety net: index whatever is staged even if a trigger was lost.
        "index-pending": {"task": "workers.tasks.index_pending", "schedule": 60.0},
    }
    if settings.sources_file.exists():
        from workers.sources import load_sources

        for name, source in load_sources(settings.sources_file).items():
            if not source.enabled:
                continue
            schedule[f"discover-{name}"] = {
                "task": "workers.tasks.discover_source", "schedule": source.celery_schedule(), "args": (name,),
            }
    return schedule


app = make_app()
