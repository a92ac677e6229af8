"""What beat runs: one discovery per configured source on its schedule, plus an index sweep.

Only beat reads the sources file for its schedule, when it starts; a file that
does not validate stops beat with the file's own errors, never a worker.
"""

from __future__ import annotations

from redbeat import RedBeatScheduler

from workers.settings import Settings, get_settings
from workers.sources import load_sources


def beat_schedule(settings: Settings) -> dict:
    schedule = {
        # Workers re-trigger indexing themselves (workers/housekeeping.py); this is a
        # second net for a deployment whose index workers run without fetch workers.
        "index-pending": {"task": "workers.tasks.index_pending", "schedule": 60.0},
    }
    if settings.sources_file.exists():
        for name, source in load_sources(settings.sources_file).items():
            if not source.enabled:
                continue
            schedule[f"discover-{name}"] = {
                "task": "workers.tasks.discover_source", "schedule": source.celery_schedule(), "args": (name,),
            }
    return schedule


class SourceScheduler(RedBeatScheduler):
    """RedBeat, with the schedule built from the sources file when beat starts."""

    def setup_schedule(self) -> None:
        self.app.conf.beat_schedule = beat_schedule(get_settings())
        super().setup_schedule()
