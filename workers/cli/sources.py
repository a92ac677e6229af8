"""`report-ingest sources list|validate|run`: the configured sources."""

from __future__ import annotations

import click

from workers.cli.errors import fail
from workers.crawl.sources import Source, SourcesError, load_sources
from workers.settings import get_settings


@click.group()
def sources() -> None:
    """Configured sources (deploy/sources.yaml, or SOURCES_FILE)."""


def _load_sources() -> dict[str, Source]:
    try:
        return load_sources(get_settings().sources_file)
    except (SourcesError, OSError) as exc:
        fail(str(exc))


@sources.command("list")
def sources_list() -> None:
    """Show every source with its schedule and politeness settings."""
    for source in _load_sources().values():
        click.echo(f"{source.name:14} {source.schedule:16} parser={source.parser:9} rate={source.rate}/s "
                   f"concurrency={source.concurrency} hosts={','.join(source.allowed_hosts)}")
        for url in [*source.seeds, *source.sitemaps]:
            click.echo(f"{'':14} {url}")


@sources.command("validate")
def sources_validate() -> None:
    """Check the sources file; errors name the line and the field."""
    found = _load_sources()
    click.echo(f"{get_settings().sources_file}: {len(found)} sources OK ({', '.join(found)})")


@sources.command("run")
@click.argument("name")
@click.option("--wait/--no-wait", default=True)
@click.option("--timeout", type=float, default=None)
@click.option("--force", is_flag=True, help="Crawl every discovered URL, due or not, and index again.")
def sources_run(name: str, wait: bool, timeout: float | None, force: bool) -> None:
    """Discover and crawl one source now."""
    from workers.cli.crawl import follow_crawl
    from workers.crawl.discover import run_source

    if name not in _load_sources():
        fail(f"no source named {name!r}; see `report-ingest sources list`")
    found, plan = run_source(get_settings(), name, force=force, echo=lambda m: click.echo(m, err=True))
    for error in found.errors:
        click.echo(f"  {error}", err=True)
    click.echo(f"{name}: {len(found.urls)} report URLs from {found.listing_pages} listing pages and "
               f"{found.sitemaps} sitemaps; {plan.queued} new or due", err=True)
    if wait and plan.queued:
        follow_crawl(plan.crawl_id, timeout)
