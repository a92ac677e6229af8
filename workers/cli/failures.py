"""`report-ingest failures` and `retry-failed`: the failures index, read and crawled again."""

from __future__ import annotations

import json
import sys

import click

from workers.cli.context import es_and_names
from workers.index.failures import recent_failures


@click.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def failures(limit: int, as_json: bool) -> None:
    """Show the most recent failures."""
    rows = recent_failures(*es_and_names(), limit)
    if as_json:
        click.echo(json.dumps([row.to_source() for row in rows], indent=2))
        return
    for row in rows:
        click.echo(f"{row.failed_at}  {row.stage:6} {row.reason:18} {row.url}\n    {row.detail}")
    if not rows:
        click.echo("no failures")


@click.command("retry-failed")
@click.option("--wait/--no-wait", default=True)
@click.option("--timeout", type=float, default=None)
def retry_failed(wait: bool, timeout: float | None) -> None:
    """Crawl every recorded failure again, refetched and reparsed even if unchanged, each under its
    own source's policy; successes clear their failure record."""
    from workers.cli.crawl import follow_crawl
    from workers.cli.errors import fail
    from workers.crawl.sources import SourcesError
    from workers.retry_failed import retry_failures
    from workers.settings import get_settings

    settings = get_settings()
    try:
        retry = retry_failures(settings, *es_and_names())
    except SourcesError as exc:
        fail(f"cannot retry failures of configured sources: {exc}")
    for source, count in retry.unknown_sources.items():
        click.echo(f"error: {count} failures of source {source!r} not retried: no such source in "
                   f"{settings.sources_file}", err=True)
    if retry.redacted:
        click.echo(f"{retry.redacted} failures of signed URLs not retried: their credentials are not kept; "
                   "crawl them again from a fresh link", err=True)
    if not retry.plans and not retry.unknown_sources and not retry.redacted:
        click.echo("no failures to retry")
    for plan in retry.plans:
        click.echo(f"crawl {plan.crawl_id}: queued {plan.queued} failed URLs again", err=True)
        if wait and plan.queued:
            follow_crawl(plan.crawl_id, timeout)
    if retry.unknown_sources:
        sys.exit(1)
