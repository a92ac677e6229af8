"""`report-ingest status`: one look at the whole pipeline, each number from the module that owns it."""

from __future__ import annotations

import click

from workers.cli.context import reader_and_names
from workers.clients import get_redis
from workers.crawl.parked import Parked
from workers.heartbeats import live_workers
from workers.index.failures import recent_failures
from workers.index.indices import document_counts
from workers.index.staging import Staging
from workers.queues import queue_depths
from workers.settings import get_settings
from workers.timings import StageTimings


@click.command()
def status() -> None:
    """Queue depths, staged entries, parked pages, live workers, documents per index, time per stage
    and recent failures."""
    settings, redis = get_settings(), get_redis()
    es, names = reader_and_names()
    # Everything is read before anything is printed: a service that is down gives one line, not half a report.
    queues = queue_depths(redis)
    staged = Staging(redis, settings.index_prefix).size()
    parked = Parked(redis, settings.index_prefix).size()
    workers = live_workers(redis, settings.orphan_grace)
    documents = document_counts(es, names)
    stages = StageTimings(redis, settings.index_prefix).summary()
    recent = recent_failures(es, names, 5)

    lines = ["queues:"]
    lines += [f"  {queue:10} {depth}" for queue, depth in queues.items()]
    lines.append(f"  {'staged':10} {staged}")
    lines.append(f"  {'parked':10} {parked}")
    lines.append(f"live workers: {len(workers)}")
    lines.append("indices:")
    lines += [f"  {alias:20} {'missing' if count is None else count}" for alias, count in documents.items()]
    if stages:
        lines.append("time per stage (all workers, since the counters were reset):")
        for stage, stats in sorted(stages.items()):
            lines.append(f"  {stage:10} {stats.get('items', 0):8.0f} items  {stats['ms_per_item']:8.2f} ms/item")
    lines.append("recent failures:" if recent else "recent failures: none")
    lines += [f"  {row.failed_at} {row.reason:16} {row.url}" for row in recent]
    click.echo("\n".join(lines))
