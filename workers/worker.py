"""What a worker process adds to the Celery app: housekeeping, the watchdog, a frozen heap, timings.

Celery imports this module as the app's first include (workers/app.py) when a worker
starts, before it builds its blueprints; nothing else imports it. It sits on top of the
stages (housekeeping reads the crawl's and the index's Redis state), so the app and the
stages never import it back.
"""

from __future__ import annotations

from celery.signals import worker_process_shutdown, worker_shutdown

import workers.heap  # noqa: F401 - connects its signals
from workers.app import app
from workers.housekeeping import Housekeeping
from workers.timings import flush_timings
from workers.watchdog import Watchdog

app.steps["consumer"].add(Housekeeping)
app.steps["worker"].add(Watchdog)
# A prefork pool process leaves through os._exit, past atexit; both kinds of worker say so first.
worker_process_shutdown.connect(flush_timings, weak=False)
worker_shutdown.connect(flush_timings, weak=False)
