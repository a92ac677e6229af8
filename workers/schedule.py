"""What beat runs: one discovery per configured source on its schedule, plus an index sweep.

Only beat reads the sources file for its schedule, when it starts; a file that
does not validate stops beat with the file's own errors, never a worker.
"""

from __future__ import annotations

import logging

from workers.app import app
from workers.crawl.sources import load_sources
from workers.crawl.discover import run_source
from workers.fixes.redbeat import FailoverScheduler
from workers.settings import Settings, get_settings
from workers.task_names import DISCOVER_SOURCE, DISCOVER_TIME_LIMIT, INDEX_PENDING

log = logging.getLogger(__name__)


def beat_schedule(settings: Settings) -> dict:
    schedule = {
        # Workers re-trigger indexing themselves (workers/housekeeping.py); this is a
        # second net for a deployment whose index workers run without fetch workers.
        "index-pending": {"task": INDEX_PENDING, "schedule": 60.0},
    }
    if settings.sources_file.exists():
        for name, source in load_sources(settings.sources_file).items():
            if not source.enabled:
                continue
            schedule[f"discover-{name}"] = {
                "task": DISCOVER_SOURCE, "schedule": source.celery_schedule(), "args": (name,),
            }
    return schedule


class SourceScheduler(FailoverScheduler):
    """RedBeat, following a Redis failover, with the schedule built from the sources file when beat starts."""

    def setup_schedule(self) -> None:
        self.app.conf.beat_schedule = beat_schedule(get_settings())
        super().setup_schedule()


@app.task(name=DISCOVER_SOURCE, soft_time_limit=DISCOVER_TIME_LIMIT - 60,
          time_limit=DISCOVER_TIME_LIMIT)
def discover_source(name: str) -> dict:
    """Scheduled by beat per source: find its report URLs and enqueue the new or due ones."""
    found, plan = run_source(get_settings(), name)
    for error in found.errors:
        log.warning("%s: %s", name, error)
    return {"source": name, "found": len(found.urls), "queued": plan.queued, "crawl_id": plan.crawl_id,
            "errors": len(found.errors)}
