"""Every Celery task's name, queue and time limit, in one place.

Messages on the queues carry these names, so they never change: a renamed task
would leave the messages already queued with no task to run them. The crawl's
tasks keep the `workers.tasks.` prefix of the old layout, the rebuild's
`workers.reindex.` (routed to their own queue by prefix). Stages send each
other's tasks by these names, so none imports another's task module.
"""

from __future__ import annotations

FETCH_QUEUE = "fetch"
INDEX_QUEUE = "index"
# Rebuilds run on their own workers, so a long reindex never delays the crawl.
REINDEX_QUEUE = "reindex"

FETCH_PAGE = "workers.tasks.fetch_page"
FETCH_PAGES = "workers.tasks.fetch_pages"
INDEX_PENDING = "workers.tasks.index_pending"
DISCOVER_SOURCE = "workers.tasks.discover_source"
# The index task hands written reports to the watches (workers/watches/tasks.py) by this name.
RAISE_ALERTS = "workers.tasks.raise_alerts"
DELIVER_ALERT = "workers.tasks.deliver_alert"
# Housekeeping sends this one now and then: alerts whose delivery was lost are sent again.
REDELIVER_ALERTS = "workers.tasks.redeliver_alerts"
REINDEX_PREFIX = "workers.reindex."
REINDEX_CHUNK = REINDEX_PREFIX + "reindex_chunk"
REBUILD_INDEX = REINDEX_PREFIX + "rebuild_index"
FINISH_REBUILD = REINDEX_PREFIX + "finish_rebuild"

ROUTES = {
    FETCH_PAGE: {"queue": FETCH_QUEUE},
    FETCH_PAGES: {"queue": FETCH_QUEUE},
    INDEX_PENDING: {"queue": INDEX_QUEUE},
    DISCOVER_SOURCE: {"queue": FETCH_QUEUE},
    REINDEX_PREFIX + "*": {"queue": REINDEX_QUEUE},
}

INDEX_TIME_LIMIT = 600
# Discovery walks listing pages and sitemaps at the host's polite rate: minutes, not seconds.
DISCOVER_TIME_LIMIT = 1800
# Rebuild chunks (workers/rebuild/tasks.py) run up to this long.
CHUNK_TIME_LIMIT = 1800
